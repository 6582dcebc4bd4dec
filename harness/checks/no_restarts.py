"""``noRestarts``: no container of the release's pods has restarted more than ``max`` times
(default 0).

The release's pods are those a workload the release renders owns, directly (StatefulSet,
DaemonSet, ReplicaSet, Job, a bare Pod) or one level down (a Deployment's ReplicaSet, a
CronJob's Job), found through the pods' controller ``ownerReferences``. Helm hook and test
pods are not the release's (their owners live in ``ctx.hooks``), and neither are other pods
that share the namespace. Init and sidecar containers count. The check reads the restart
counts once; it does not wait."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError
from harness.kube.resources import ResourceType
from harness.kube.wait import Obj
from harness.suite.model import Check

PODS = ResourceType("", "v1", "Pod", "pods", namespaced=True)
REPLICASETS = ResourceType("apps", "v1", "ReplicaSet", "replicasets", namespaced=True)
JOBS = ResourceType("batch", "v1", "Job", "jobs", namespaced=True)
# Kinds whose objects own pods, directly or through a ReplicaSet or Job they create.
POD_OWNERS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
# Kinds in between a workload and its pods, listed to follow a pod up to the workload.
INTERMEDIATES = {"ReplicaSet": REPLICASETS, "Job": JOBS}

Owner = tuple[str, str]  # (kind, name)


def run(ctx: AppContext, check: Check) -> None:
    limit = _max_restarts(check.spec)
    offenders = [line for pod in release_pods(ctx) for line in _over_limit(pod, limit)]
    if offenders:
        raise CheckFailed(
            f"at most {limit} restart{'s' if limit != 1 else ''} per container "
            "of the release's pods",
            f"{len(offenders)} container{'s' if len(offenders) != 1 else ''} over the limit",
            details="\n".join(f"  {line}" for line in offenders),
        )


def _max_restarts(spec: dict[str, Any]) -> int:
    unknown = set(spec) - {"max"}
    if unknown:
        raise UsageError(f"noRestarts: unknown key(s) {', '.join(sorted(unknown))} (allowed: max)")
    limit = spec.get("max", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise UsageError(f"noRestarts.max must be a whole number >= 0, not {limit!r}")
    return limit


def release_pods(ctx: AppContext) -> list[Obj]:
    """The pods owned by the workloads the release renders (see the module docstring)."""
    wanted: dict[str, set[Owner]] = defaultdict(set)
    for obj in ctx.objects_of(*POD_OWNERS):
        wanted[ctx.namespace_of(obj)].add((obj["kind"], obj["metadata"]["name"]))
    pods: list[Obj] = []
    for namespace, owners in wanted.items():
        listed = ctx.lister_for(PODS)(namespace=namespace)["items"]
        parents = _parents(ctx, namespace, listed)
        for pod in listed:
            name = pod["metadata"]["name"]
            chain = [("Pod", name)]
            owner = _controller(pod)
            if owner is not None:
                chain.append(owner)
                grandparent = parents.get(owner)
                if grandparent is not None:
                    chain.append(grandparent)
            if owners.intersection(chain):
                pods.append(pod)
    return pods


def _parents(ctx: AppContext, namespace: str, pods: list[Obj]) -> dict[Owner, Owner]:
    """The controllers of the ReplicaSets and Jobs that own some of ``pods``."""
    kinds = {owner[0] for pod in pods if (owner := _controller(pod)) is not None}
    parents: dict[Owner, Owner] = {}
    for kind, rtype in INTERMEDIATES.items():
        if kind not in kinds:
            continue
        for obj in ctx.lister_for(rtype)(namespace=namespace)["items"]:
            owner = _controller(obj)
            if owner is not None:
                parents[(kind, obj["metadata"]["name"])] = owner
    return parents


def _controller(obj: Obj) -> Owner | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return (str(ref["kind"]), str(ref["name"])) if ref else None


def _over_limit(pod: Obj, limit: int) -> list[str]:
    status = pod.get("status") or {}
    lines = []
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        restarts = int(container.get("restartCount") or 0)
        if restarts > limit:
            lines.append(
                f"pod/{pod['metadata']['name']} container {container.get('name')}: "
                f"restartCount {restarts}{_last_termination(container)}"
            )
    return lines


def _last_termination(container: dict[str, Any]) -> str:
    """``; last terminated: Error (exit 1); now waiting: CrashLoopBackOff``, as far as known."""
    parts = []
    last = (container.get("lastState") or {}).get("terminated")
    if last:
        reason = last.get("reason") or "terminated"
        code = last.get("exitCode")
        message = (last.get("message") or "").strip()
        parts.append(
            f"last terminated: {reason}"
            + (f" (exit {code})" if code is not None else "")
            + (f": {message}" if message else "")
        )
    waiting = (container.get("state") or {}).get("waiting")
    if waiting and waiting.get("reason"):
        parts.append(f"now waiting: {waiting['reason']}")
    return "; " + "; ".join(parts) if parts else "; last termination reason unknown"
