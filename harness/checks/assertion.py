"""``assert``: a partial object that must come to match an object of the cluster within
the check's timeout (default 60s), in the shape chainsaw and kuttl asserts have.

``object`` gives ``kind`` (and ``apiVersion``; any kind the cluster serves, custom
resources included) and the fields that must match (:mod:`harness.kube.match`: mappings
key by key, lists as subsets, ``{JSONPath}`` keys). The object is found by
``metadata.name``, else by ``selector`` or ``metadata.labels`` (then any object of the kind
with those labels may match), in the app's namespace unless ``metadata.namespace`` says
otherwise (cluster-scoped kinds: cluster-wide). The ``error`` check
(:mod:`harness.checks.error`) is the same search, passing once nothing matches."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError, WaitTimeout
from harness.kube import match
from harness.kube.resources import ResourceType
from harness.kube.wait import Obj, wait_for
from harness.suite.model import Check
from harness.suite.templating import render_data


@dataclass(frozen=True)
class Target:
    """What an assert or error check looks at."""

    rtype: ResourceType
    expected: dict[str, Any]  # templated
    namespace: str | None
    name: str | None
    selector: str | None

    def __str__(self) -> str:
        what = (
            f"{self.rtype.kind}/{self.name}"
            if self.name
            else self.rtype.kind + (f" with labels {self.selector}" if self.selector else "")
        )
        return what + (f" in namespace {self.namespace}" if self.namespace else "")

    def list_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.namespace:
            kwargs["namespace"] = self.namespace
        if self.name:
            kwargs["field_selector"] = f"metadata.name={self.name}"
        if self.selector:
            kwargs["label_selector"] = self.selector
        return kwargs


def target_of(ctx: AppContext, check: Check) -> Target:
    expected: dict[str, Any] = render_data(check.spec["object"], ctx.release, ctx.namespace)
    kind = str(expected.get("kind", ""))
    api_version = expected.get("apiVersion")
    try:
        rtype = ctx.resolver.by_kind(kind, str(api_version) if api_version else None)
    except UsageError as exc:
        version = f" ({api_version})" if api_version else ""
        raise CheckFailed(
            f"{kind} objects to look at", f"the cluster serves no kind {kind!r}{version}"
        ) from exc
    meta = expected.get("metadata") or {}
    labels = meta.get("labels") or {}
    selectors = [str(check.spec["selector"])] if check.spec.get("selector") else []
    selectors += [
        f"{key}={_label(value)}" for key, value in labels.items() if not match.is_expression(key)
    ]
    name = meta.get("name")
    return Target(
        rtype=rtype,
        expected=expected,
        namespace=str(meta.get("namespace") or ctx.namespace) if rtype.namespaced else None,
        name=str(name) if name and not match.is_expression(name) else None,
        selector=",".join(selectors) or None,
    )


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def follow(
    ctx: AppContext, check: Check, target: Target, until: Callable[[list[Obj]], bool]
) -> list[Obj] | None:
    """Watch the target's objects until ``until`` holds (those objects) or the timeout
    passes (None). Returns at once when it already holds."""
    last: list[list[Obj]] = [[]]

    def seen(objects: list[Obj]) -> bool:
        for obj in objects:  # a list's items come without them
            obj.setdefault("apiVersion", target.rtype.api_version)
            obj.setdefault("kind", target.rtype.kind)
        last[0] = objects
        return until(objects)

    try:
        wait_for(
            ctx.lister_for(target.rtype),
            seen,
            expected=str(target),
            timeout=ctx.timeout_for(check),
            kind=target.rtype.kind,
            **target.list_kwargs(),
        )
    except WaitTimeout:
        return last[0]
    return None


def shown(title: str, obj: Any) -> str:
    text = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return f"{title}:\n{textwrap.indent(text.rstrip(), '  ')}"


def observed_object(target: Target, obj: Obj) -> Obj:
    """An object as a failure shows it: apiVersion and kind first, no managedFields."""
    return {"apiVersion": target.rtype.api_version, "kind": target.rtype.kind, **match.trimmed(obj)}


def object_name(obj: Obj) -> str:
    return f"{obj.get('kind', '')}/{(obj.get('metadata') or {}).get('name', '')}"


def run(ctx: AppContext, check: Check) -> None:
    target = target_of(ctx, check)
    expected = target.expected
    timeout = ctx.timeout_for(check)
    left = follow(ctx, check, target, lambda objs: any(match.matches(expected, o) for o in objs))
    if left is None:
        return
    wanted = f"{target} to match within {timeout:g}s"
    if not left:
        raise CheckFailed(
            wanted, f"no such object (no {target})", details=shown("expected", expected)
        )
    best = match.closest(expected, left)
    difference = match.first_difference(expected, best)
    found = f"{len(left)} found, none matches; the closest, " if len(left) > 1 else ""
    raise CheckFailed(
        wanted,
        f"{found}{object_name(best)}: {difference}",
        details=shown("expected (partial object)", expected)
        + "\n"
        + shown("last observed", observed_object(target, best)),
    )


__all__ = ["Target", "follow", "object_name", "observed_object", "run", "shown", "target_of"]
