"""When a workload counts as ready, judged from the object the API server returns."""

from __future__ import annotations

from harness.wait import Obj, condition_is


def deployment_ready(obj: Obj) -> bool:
    """Rolled out like ``kubectl rollout status``: the controller saw the latest spec, every
    replica is updated and available, no old replicas linger, and Available is True."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    wanted = spec.get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= meta.get("generation", 1)
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and condition_is(obj, "Available")
    )
