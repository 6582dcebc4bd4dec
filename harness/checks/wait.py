"""``wait``: kubectl-wait grammar on any resource of the cluster.

``resource`` is ``KIND/NAME`` or ``KIND`` (with an optional ``selector``); ``for`` is
``condition=NAME[=VALUE]``, ``jsonpath={EXPR}[=VALUE]``, ``create`` or ``delete``. As with
kubectl, every matching object must meet the condition; ``create`` needs one to exist and
``delete`` none. The namespace is the app's unless ``namespace`` says otherwise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError, WaitTimeout
from harness.kube import jsonpath
from harness.kube.wait import Obj, describe, wait_for
from harness.suite.model import Check
from harness.units import parse_duration


@dataclass(frozen=True)
class Condition:
    text: str
    test: Callable[[list[Obj]], bool]
    # What the failure message says was observed (default: the objects' status).
    observe: Callable[[list[Obj]], str] | None = None


def parse_for(text: str) -> Condition:
    """A kubectl ``--for`` expression as a test over the matching objects."""
    raw = text.strip()
    if raw == "create":
        return Condition(raw, lambda objs: len(objs) > 0)
    if raw == "delete":
        return Condition(raw, lambda objs: len(objs) == 0)
    if raw.startswith("condition="):
        name, _, value = raw.removeprefix("condition=").partition("=")
        if not name:
            raise UsageError(f"wait.for {text!r}: condition needs a name")
        wanted = value or "True"

        def has_condition(obj: Obj) -> bool:
            return any(
                c.get("type") == name and str(c.get("status", "")).lower() == wanted.lower()
                for c in (obj.get("status") or {}).get("conditions") or []
            )

        return Condition(raw, lambda objs: bool(objs) and all(has_condition(o) for o in objs))
    if raw.startswith("jsonpath="):
        body = raw.removeprefix("jsonpath=")
        close = body.find("}")
        if not body.startswith("{") or close < 0:
            raise UsageError(f"wait.for {text!r}: write jsonpath={{.path}}=VALUE")
        steps = jsonpath.parse(body[: close + 1])
        rest = body[close + 1 :]
        if rest and not rest.startswith("="):
            raise UsageError(f"wait.for {text!r}: expected '=' after the path")
        wanted_value = rest[1:] if rest else None

        def matches(obj: Obj) -> bool:
            found = jsonpath.evaluate(steps, obj)
            if wanted_value is None:
                return bool(found)
            return bool(found) and all(jsonpath.text_of(v) == wanted_value for v in found)

        expression = body[: close + 1]

        def observed(objs: list[Obj]) -> str:
            """The value the expression had on each object, not just "no status"."""
            if not objs:
                return "no matching objects"
            shown = []
            for obj in objs[:5]:
                found = [jsonpath.text_of(v) for v in jsonpath.evaluate(steps, obj)]
                value = " ".join(repr(v) for v in found) if found else "nothing (no such field)"
                shown.append(
                    f"{obj.get('kind', '')}/{obj['metadata'].get('name')}: {expression} = {value}"
                )
            more = f" (+{len(objs) - 5} more)" if len(objs) > 5 else ""
            return "; ".join(shown) + more

        return Condition(raw, lambda objs: bool(objs) and all(matches(o) for o in objs), observed)
    raise UsageError(
        f"wait.for {text!r}: use condition=NAME[=VALUE], jsonpath={{EXPR}}=VALUE, create or delete"
    )


def run(ctx: AppContext, check: Check) -> None:
    spec = check.spec
    resource = str(spec.get("resource", ""))
    kind, _, name = resource.partition("/")
    if not kind:
        raise UsageError("wait: 'resource' is required (KIND/NAME or KIND with a selector)")
    condition = parse_for(str(spec.get("for", "create")))
    timeout = ctx.timeout_for(check)
    if spec.get("timeout") is not None:
        timeout = parse_duration(spec["timeout"])
    rtype = ctx.resolver.by_name(kind)
    kwargs: dict[str, Any] = {}
    if rtype.namespaced:
        kwargs["namespace"] = str(spec.get("namespace") or ctx.namespace)
    if name:
        kwargs["field_selector"] = f"metadata.name={name}"
    if spec.get("selector"):
        kwargs["label_selector"] = str(spec["selector"])
    target = resource + (f" ({spec['selector']})" if spec.get("selector") else "")
    try:
        wait_for(
            ctx.lister_for(rtype),
            condition.test,
            expected=f"{target} {condition.text}",
            timeout=timeout,
            kind=rtype.kind,
            observe=condition.observe or describe,
            **kwargs,
        )
    except WaitTimeout as exc:
        raise CheckFailed(
            f"{target} to meet {condition.text} within {timeout:g}s", exc.observed
        ) from exc


__all__ = ["Condition", "describe", "parse_for", "run"]
