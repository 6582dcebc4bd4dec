"""The noRestarts check on the session's kwok cluster (``tests/charts/guarded``): it passes
on a healthy release, ignores pods the release does not own, and fails on a crash loop."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from harness.checks import run_check
from harness.checks.no_restarts import PODS
from harness.errors import UsageError
from harness.kube.wait import Obj, wait_for
from tests.checks.conftest import GUARDED, READY, check, failure


def _with_restarts(pods: list[Obj]) -> bool:
    return bool(pods) and all(
        s.get("restartCount", 0) > 0
        for p in pods
        for s in (p.get("status") or {}).get("containerStatuses") or [{}]
    )


@pytest.mark.cluster
def test_no_restarts(install_app: Any) -> None:
    healthy = install_app(GUARDED, name="calm")
    run_check(healthy, READY)
    run_check(healthy, check("noRestarts"))
    run_check(healthy, check("noRestarts", max=0))

    # A crash-looping pod the release does not own does not count.
    stranger = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="stranger", annotations={"helm-harness.io/simulate": "crashloop"}
        ),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="c", image="registry.example.invalid/x:1")]
        ),
    )
    client.CoreV1Api(healthy.api).create_namespaced_pod(healthy.namespace, stranger)
    wait_for(
        healthy.lister_for(PODS),
        _with_restarts,
        expected="the stranger pod crash-looping",
        timeout=60,
        namespace=healthy.namespace,
        field_selector="metadata.name=stranger",
    )
    run_check(healthy, check("noRestarts"))


@pytest.mark.cluster
def test_no_restarts_fails_on_a_crash_loop(install_app: Any) -> None:
    ctx = install_app(GUARDED, name="loop", values={"simulate": {"pods": "crashloop"}})
    pods = wait_for(
        ctx.lister_for(PODS),
        _with_restarts,
        expected="crash-looping pods",
        timeout=60,
        namespace=ctx.namespace,
    )
    message = failure(ctx, "noRestarts", max=0)
    assert "expected at most 0 restarts per container of the release's pods" in message
    assert "observed 1 container over the limit" in message
    pod = pods[0]["metadata"]["name"]
    assert (
        f"pod/{pod} container app: restartCount 3; last terminated: Error (exit 1); "
        "now waiting: CrashLoopBackOff"
    ) in message
    run_check(ctx, check("noRestarts", max=3))
    with pytest.raises(UsageError, match="noRestarts.max must be a whole number"):
        run_check(ctx, check("noRestarts", max=-1))
