"""Pods that will not become ready however long one waits, and the cause as Kubernetes
states it: an image that cannot be pulled (after the kubelet's first retry), a crash loop
past the restart budget, a pod no node of the cluster can ever take (its requests exceed
every node's allocatable, its node selector or required affinity matches no node, or
every node has a taint it does not tolerate), or a claim whose StorageClass does not
exist. The ``ready`` check asks :func:`hopeless` while it waits and fails at once.

Nothing here guesses from a moment's state that may pass: an image pull error is final
only once the kubelet backs off (``ImagePullBackOff``), a crash loop only past the
budget, and scheduling only against what no node offers at all, never against what is
free right now (other apps' pods may go away)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

Obj = dict[str, Any]

IMAGE_FAILURES = ("ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
DEFAULT_MAX_RESTARTS = 5  # restarts in CrashLoopBackOff before the ready check gives up


def hopeless(
    pods: Iterable[Obj],
    nodes: list[Obj],
    *,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    storage_classes: set[str] | None = None,
    claims: Mapping[str, Obj] | None = None,
) -> str | None:
    """Why one of ``pods`` (or of ``claims``) can never become ready, or None while
    waiting may help."""
    for name, claim in (claims or {}).items():
        reason = _unbindable(claim, storage_classes)
        if reason:
            return f"persistentvolumeclaim/{name}: {reason}"
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue  # going away: a replacement will be judged on its own
        reason = _container_problem(pod, max_restarts) or _never_scheduled(pod, nodes)
        if reason:
            return f"pod/{pod['metadata']['name']}: {reason}"
    return None


def _container_problem(pod: Obj, max_restarts: int) -> str | None:
    status = pod.get("status") or {}
    for container in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        message = " ".join(str(waiting.get("message") or "").split())
        name = container.get("name")
        if reason in IMAGE_FAILURES:
            image = container.get("image")
            return f"container {name} cannot get image {image}: {reason}: {message}".rstrip(": ")
        restarts = int(container.get("restartCount") or 0)
        if reason == "CrashLoopBackOff" and restarts > max_restarts:
            return (
                f"container {name} is in CrashLoopBackOff after {restarts} restarts "
                f"(more than the ready check's maxRestarts, {max_restarts}): {message}"
            ).rstrip(": ")
    return None


def _never_scheduled(pod: Obj, nodes: list[Obj]) -> str | None:
    """Only for a pod the scheduler has turned down, and only a reason that holds for
    every node (the nodes of a test cluster do not change during a run)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    turned_down = next(
        (
            c
            for c in conditions
            if c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
        ),
        None,
    )
    if turned_down is None or not nodes:
        return None
    spec = pod.get("spec") or {}
    said = " ".join(str(turned_down.get("message") or "").split())
    for check in (_too_big, _no_node_matches, _untolerated):
        why = check(spec, nodes)
        if why:
            return f"no node can ever run it: {why} (the scheduler: {said})"
    return None


def _requests(spec: Obj) -> dict[str, Decimal]:
    """What the pod requests: its containers' sum, or an init container's, whichever is
    more, per resource (as the scheduler counts it)."""
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, Decimal(0)) + parse_quantity(value)
    for container in spec.get("initContainers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total.get(name, Decimal(0)), parse_quantity(value))
    return total


def _too_big(spec: Obj, nodes: list[Obj]) -> str | None:
    for resource, wanted in _requests(spec).items():
        offered = []
        for node in nodes:
            allocatable = (node.get("status") or {}).get("allocatable") or {}
            offered.append(parse_quantity(allocatable.get(resource, "0")))
        if offered and wanted > max(offered):
            return f"it requests {_quantity(wanted)} {resource}, and no node has more than " + (
                f"{_quantity(max(offered))} allocatable"
            )
    return None


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


def _labels(node: Obj) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("labels") or {})


def _expression_holds(expression: Obj, labels: Mapping[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = [str(v) for v in expression.get("values") or []]
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt") and key in labels and values:
        try:
            have, limit = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > limit if operator == "Gt" else have < limit
    return True  # an operator this reading does not know: assume it may match


def _node_fits(spec: Obj, node: Obj) -> bool:
    labels = _labels(node)
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(key) != str(value) for key, value in selector.items()):
        return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    if required:  # terms are ORed, expressions within a term ANDed
        return any(
            all(_expression_holds(e, labels) for e in term.get("matchExpressions") or [])
            for term in required
        )
    return True


def _no_node_matches(spec: Obj, nodes: list[Obj]) -> str | None:
    if any(_node_fits(spec, node) for node in nodes):
        return None
    selector = spec.get("nodeSelector") or {}
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "its node affinity"
    return f"no node matches {wanted}"


def _tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration.get("key") == taint.get("key"):
                return True
        elif toleration.get("key") == taint.get("key") and str(toleration.get("value", "")) == str(
            taint.get("value", "")
        ):
            return True
    return False


def _untolerated(spec: Obj, nodes: list[Obj]) -> str | None:
    tolerations = spec.get("tolerations") or []
    blocking = []
    for node in nodes:
        taints = [
            t
            for t in (node.get("spec") or {}).get("taints") or []
            if t.get("effect") in ("NoSchedule", "NoExecute")
        ]
        untolerated = [t for t in taints if not _tolerates(tolerations, t)]
        if not untolerated:
            return None
        blocking.append(f"{untolerated[0].get('key')}:{untolerated[0].get('effect')}")
    return f"every node has a taint it does not tolerate ({', '.join(sorted(set(blocking)))})"


def _unbindable(claim: Obj, storage_classes: set[str] | None) -> str | None:
    if storage_classes is None or (claim.get("status") or {}).get("phase") == "Bound":
        return None
    wanted = (claim.get("spec") or {}).get("storageClassName")
    if wanted and wanted not in storage_classes:
        return f"it asks for StorageClass {wanted}, which the cluster does not have"
    return None
