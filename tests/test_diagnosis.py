"""The reading of pods that cannot become ready, on objects shaped as the API server sends
them (the checks' tests show the same on a real API server: tests/checks/test_ready.py)."""

from __future__ import annotations

from typing import Any

from harness.kube.diagnosis import hopeless

NODE = {
    "metadata": {"name": "n1", "labels": {"kubernetes.io/os": "linux", "zone": "a"}},
    "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
    "status": {"allocatable": {"cpu": "4", "memory": "8Gi"}},
}
UNSCHEDULABLE = {
    "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no"}
    ]
}


def pod(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": spec, "status": status or UNSCHEDULABLE}


def test_a_taint_every_node_has_and_the_pod_does_not_tolerate() -> None:
    assert "taint it does not tolerate (dedicated:NoSchedule)" in str(
        hopeless([pod({"containers": [{"name": "c"}]})], [NODE])
    )
    tolerated = {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}
    assert hopeless([pod({**tolerated, "containers": [{"name": "c"}]})], [NODE]) is None


def test_required_node_affinity_is_read_like_the_scheduler() -> None:
    tolerant = {"tolerations": [{"operator": "Exists"}], "containers": [{"name": "c"}]}

    def affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
        terms = [{"matchExpressions": list(expressions)}]
        rule = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
        return {**tolerant, "affinity": {"nodeAffinity": rule}}

    zone_b = affinity({"key": "zone", "operator": "In", "values": ["b"]})
    assert "no node matches its node affinity" in str(hopeless([pod(zone_b)], [NODE]))
    linux = affinity({"key": "kubernetes.io/os", "operator": "Exists"})
    assert hopeless([pod(linux)], [NODE]) is None


def test_what_may_pass_is_not_judged() -> None:
    """A pull error before the kubelet's back-off, a pod not yet turned down by the
    scheduler, a request that fits a node, and a pod that is going away."""
    first_pull = {
        "containerStatuses": [
            {"name": "c", "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}
        ]
    }
    fits = {
        "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "3500m"}}}],
    }
    assert hopeless([pod({"containers": []}, first_pull)], [NODE]) is None
    assert hopeless([pod({"containers": []}, {"conditions": []})], [NODE]) is None
    assert hopeless([pod(fits)], [NODE]) is None
    going = {**pod({"containers": []}), "metadata": {"name": "p", "deletionTimestamp": "x"}}
    assert hopeless([going], [NODE]) is None
