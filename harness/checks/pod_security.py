"""``podSecurity``: the API server's Pod Security admission admits every pod the release
renders, at ``level`` (``restricted`` or ``baseline``) and ``version`` (default
``latest``).

The level is set before the install: the harness creates the app's namespace with the
labels ``pod-security.kubernetes.io/enforce=<level>`` and ``...enforce-version=<version>``
(:func:`namespace_labels`, read by :mod:`harness.deploy.deployer`), so the server rejects
such pods at creation, as it would in a namespace labelled so in production. The check
then asks the server itself: a server-side dry-run create (nothing is made) of each pod
spec the release renders (Pods and the pod templates of workloads, hooks included, as
:mod:`harness.checks.security` finds them). It fails with each rejected pod spec and the
rules the server says it violates; it passes when none was rejected. A namespace the
harness did not create (the app's own ``namespace``) is not relabelled: the check fails
unless it already enforces the level.

It may run ahead of its item: a dry run changes nothing, and it looks at the app's own
objects only."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from harness.checks.context import AppContext
from harness.checks.security import POD_SPEC_PATHS
from harness.errors import CheckFailed, KubeApiError
from harness.kube.client import call
from harness.kube.wait import Obj
from harness.suite.model import Check

KIND = "podSecurity"
ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
DEFAULT_VERSION = "latest"


def namespace_labels(checks: tuple[Check, ...] | None) -> dict[str, str]:
    """The namespace labels that make the server enforce an app's ``podSecurity`` level
    (none when the app has no such check)."""
    for check in checks or ():
        if check.kind == KIND:
            version = str(check.spec.get("version") or DEFAULT_VERSION)
            return {ENFORCE: str(check.spec["level"]), ENFORCE_VERSION: version}
    return {}


def run(ctx: AppContext, check: Check) -> None:
    wanted = namespace_labels((check,))
    level = f"{wanted[ENFORCE]}:{wanted[ENFORCE_VERSION]}"
    namespace = call(client.CoreV1Api(ctx.api).read_namespace, ctx.namespace, what="namespace")
    labels = (namespace.metadata.labels if namespace.metadata else None) or {}
    if any(labels.get(key) != value for key, value in wanted.items()):
        raise CheckFailed(
            f"namespace {ctx.namespace} to enforce Pod Security {level!r}",
            f"its labels say {ENFORCE}={labels.get(ENFORCE, '(unset)')}, "
            f"{ENFORCE_VERSION}={labels.get(ENFORCE_VERSION, '(unset)')} (the harness labels "
            "only the namespaces it creates; label this one yourself)",
        )
    rejected = [
        f"  {label}: {reason}"
        for label, pod in pod_specs(ctx)
        if (reason := _rejection(ctx, pod)) is not None
    ]
    if rejected:
        count = len(rejected)
        raise CheckFailed(
            f"Pod Security admission ({level}) to admit every pod spec of the release",
            f"{count} pod spec{'s' if count != 1 else ''} rejected",
            details="\n".join(rejected),
        )


def pod_specs(ctx: AppContext) -> list[tuple[str, Obj]]:
    """Each rendered pod spec as a Pod to dry-run: ``(Kind/name, pod)``."""
    found = []
    for objects, suffix in ((ctx.manifest, ""), (ctx.hooks, " (hook)")):
        for obj in objects:
            path = POD_SPEC_PATHS.get(str(obj.get("kind")))
            if path is None:
                continue
            template: Any = obj
            for step in path[:-1]:  # the template: its metadata beside its spec
                template = (template or {}).get(step)
            meta = (template or {}).get("metadata") or {}
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": "pod-security-check-",
                    "labels": meta.get("labels") or {},
                    "annotations": meta.get("annotations") or {},
                },
                "spec": (template or {}).get("spec") or {},
            }
            found.append((f"{obj['kind']}/{(obj.get('metadata') or {}).get('name')}{suffix}", pod))
    return found


def _rejection(ctx: AppContext, pod: Obj) -> str | None:
    """What the API server says against creating ``pod`` (a dry run), or None."""
    try:
        call(
            client.CoreV1Api(ctx.api).create_namespaced_pod,
            ctx.namespace,
            pod,
            dry_run="All",
            _preload_content=False,
            what="dry-run pod",
        )
    except KubeApiError as exc:
        if exc.status not in (400, 403, 422):
            raise
        message = exc.message or str(exc)
        _, found, rest = message.partition("violates PodSecurity")
        return f"violates PodSecurity{rest}" if found else message
    return None
