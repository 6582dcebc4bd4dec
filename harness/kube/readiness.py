"""When an object counts as ready, judged from the JSON the API server returns. Each
predicate returns True (ready), False (not yet), or raises :class:`Unrecoverable` when the
object can no longer become ready (a Failed Job or Pod), so waits stop at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.kube.wait import Obj, condition_is


class Unrecoverable(Exception):
    """The object has failed for good; waiting longer will not help."""


def _spec(obj: Obj) -> dict[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> dict[str, Any]:
    return obj.get("status") or {}


def _observed(obj: Obj) -> bool:
    generation = (obj.get("metadata") or {}).get("generation", 1)
    return bool(_status(obj).get("observedGeneration", 0) >= generation)


def deployment_ready(obj: Obj) -> bool:
    """Rolled out like ``kubectl rollout status``: the controller saw the latest spec, every
    replica is updated and available, no old replicas linger, and Available is True."""
    status = _status(obj)
    wanted = _spec(obj).get("replicas", 1)
    return (
        _observed(obj)
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and condition_is(obj, "Available")
    )


def statefulset_ready(obj: Obj) -> bool:
    status = _status(obj)
    wanted = _spec(obj).get("replicas", 1)
    rolling = (_spec(obj).get("updateStrategy") or {}).get(
        "type", "RollingUpdate"
    ) == "RollingUpdate"
    return (
        _observed(obj)
        and status.get("readyReplicas", 0) == wanted
        and status.get("availableReplicas", wanted) == wanted
        and (
            not rolling
            or (
                status.get("updatedReplicas", 0) == wanted
                and status.get("currentRevision") == status.get("updateRevision")
            )
        )
    )


def daemonset_ready(obj: Obj) -> bool:
    status = _status(obj)
    desired = status.get("desiredNumberScheduled", 0)
    return (
        _observed(obj)
        and status.get("numberReady", 0) == desired
        and status.get("updatedNumberScheduled", 0) == desired
        and status.get("numberAvailable", 0) == desired
    )


def replicaset_ready(obj: Obj) -> bool:
    wanted = _spec(obj).get("replicas", 1)
    return _observed(obj) and _status(obj).get("readyReplicas", 0) == wanted


def job_ready(obj: Obj) -> bool:
    if condition_is(obj, "Failed"):
        reason = next(
            (
                f"{c.get('reason')}: {c.get('message')}"
                for c in _status(obj).get("conditions") or []
                if c.get("type") == "Failed"
            ),
            "Failed",
        )
        raise Unrecoverable(f"Job/{obj['metadata']['name']} failed ({reason})")
    return condition_is(obj, "Complete")


def cronjob_ready(obj: Obj, *, allow_suspended: bool = False) -> bool:
    if _spec(obj).get("suspend") and not allow_suspended:
        raise Unrecoverable(f"CronJob/{obj['metadata']['name']} is suspended")
    return True


def pod_ready(obj: Obj) -> bool:
    phase = _status(obj).get("phase")
    if phase == "Failed":
        raise Unrecoverable(f"Pod/{obj['metadata']['name']} failed: {container_states(obj)}")
    return phase == "Succeeded" or condition_is(obj, "Ready")


def pvc_ready(obj: Obj) -> bool:
    return _status(obj).get("phase") == "Bound"


def crd_ready(obj: Obj) -> bool:
    return condition_is(obj, "Established")


def service_needs_endpoints(obj: Obj) -> bool:
    spec = _spec(obj)
    return bool(
        spec.get("selector")
        and spec.get("type") != "ExternalName"
        and spec.get("clusterIP") != "None"
    )


def slices_have_ready_endpoint(slices: list[Obj]) -> bool:
    return any(
        (endpoint.get("conditions") or {}).get("ready", True)
        for item in slices
        for endpoint in item.get("endpoints") or []
    )


def container_states(pod: Obj) -> str:
    """``name: waiting CrashLoopBackOff (restarts 3)`` for each container of a pod."""
    parts = []
    for status in (_status(pod).get("initContainerStatuses") or []) + (
        _status(pod).get("containerStatuses") or []
    ):
        state = status.get("state") or {}
        (what, detail), *_ = state.items() or [("unknown", {})]
        reason = (detail or {}).get("reason") or ""
        code = (detail or {}).get("exitCode")
        exit_text = f" exit {code}" if code is not None else ""
        restarts = status.get("restartCount", 0)
        message = _short((detail or {}).get("message")) if what == "waiting" else ""
        said = f": {message}" if message else ""
        parts.append(
            f"{status.get('name')}: {what} {reason}{exit_text} (restarts {restarts}){said}"
        )
    if parts:
        return "; ".join(parts)
    # No container has a state yet: why, as Kubernetes says it (e.g. the scheduler's
    # "0/1 nodes are available: 1 Insufficient ephemeral-storage").
    text = f"phase {_status(pod).get('phase', 'unknown')}"
    for condition in _status(pod).get("conditions") or []:
        if condition.get("status") != "True" and condition.get("reason"):
            text += (
                f"; {condition.get('type')}={condition.get('status')} "
                f"({condition['reason']}: {_short(condition.get('message'))})"
            )
    return text


def _short(text: object, limit: int = 240) -> str:
    shown = " ".join(str(text or "").split())
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


PREDICATES: dict[str, Callable[[Obj], bool]] = {
    "Deployment": deployment_ready,
    "StatefulSet": statefulset_ready,
    "DaemonSet": daemonset_ready,
    "ReplicaSet": replicaset_ready,
    "Job": job_ready,
    "CronJob": cronjob_ready,
    "Pod": pod_ready,
    "PersistentVolumeClaim": pvc_ready,
    "CustomResourceDefinition": crd_ready,
}
