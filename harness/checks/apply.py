"""``apply``: server-side apply of manifests into the app's namespace, in order with the
app's other checks (a scenario step: apply a custom resource, then ``assert`` its status).

``manifest`` is YAML text (one or more documents), or ``file`` a YAML file relative to the
suite file, read when the suite loads; ``{{ .Release.Name }}`` and
``{{ .Release.Namespace }}`` are put in first (:mod:`harness.suite.templating`). Each
object is applied with field manager ``helm-harness``; a namespaced object without
``metadata.namespace`` goes into the app's namespace. What is applied goes with the app:
the app's namespace takes its own objects along, and the teardown deletes the rest
(:func:`remove_applied`)."""

from __future__ import annotations

import logging
from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, KubeApiError, UsageError
from harness.kube import apply as kube_apply
from harness.kube import manifests
from harness.suite.model import Check
from harness.suite.templating import render

log = logging.getLogger("harness.checks")


def documents(ctx: AppContext, text: str) -> list[dict[str, Any]]:
    """The objects of manifest ``text``, templated for the app (empty documents dropped)."""
    rendered = render(text, ctx.release, ctx.namespace)
    return [doc for doc in manifests.load_all(rendered) if doc is not None]


def apply_objects(ctx: AppContext, objects: list[dict[str, Any]]) -> list[str]:
    """Apply each object in turn and note it for the app's teardown; ``Kind/name`` of each.
    Raises CheckFailed naming the object the API server refused (or whose kind it does not
    serve), with the server's reason and message."""
    done = []
    for obj in objects:
        name = kube_apply.object_name(obj)
        try:
            rtype, stored = kube_apply.apply(ctx.api, ctx.resolver, obj, ctx.namespace)
        except UsageError as exc:
            version = f" ({obj.get('apiVersion')})" if obj.get("apiVersion") else ""
            raise CheckFailed(
                f"{name} applied", f"the cluster serves no kind {obj.get('kind')!r}{version}"
            ) from exc
        except kube_apply.ApplyRefused as exc:
            raise CheckFailed(
                f"{name} applied", f"{exc.what}: {exc.reason}: {exc.message}".rstrip(": ")
            ) from exc
        meta = stored.get("metadata") or {}
        ref = {
            "apiVersion": rtype.api_version,
            "kind": rtype.kind,
            "name": str(meta.get("name", "")),
            "namespace": str(meta.get("namespace", "")),
        }
        if ref not in ctx.applied:
            ctx.applied.append(ref)
        done.append(name)
    return done


def run(ctx: AppContext, check: Check) -> None:
    apply_objects(ctx, documents(ctx, str(check.spec["manifest"])))


def remove_applied(ctx: AppContext, *, namespace_goes: bool) -> None:
    """Delete what apply checks applied, newest first, without waiting; with
    ``namespace_goes`` (the app's namespace is being deleted) not what is in it. A failure
    is logged: the teardown goes on."""
    for ref in reversed(ctx.applied):
        if namespace_goes and ref["namespace"] == ctx.namespace:
            continue
        try:
            rtype = ctx.resolver.by_kind(ref["kind"], ref["apiVersion"])
            kube_apply.delete(ctx.api, rtype, ref["name"], ref["namespace"] or None)
        except (UsageError, KubeApiError) as exc:
            log.warning(
                "could not delete %s/%s applied by a check: %s", ref["kind"], ref["name"], exc
            )
    ctx.applied.clear()


__all__ = ["apply_objects", "documents", "remove_applied", "run"]
