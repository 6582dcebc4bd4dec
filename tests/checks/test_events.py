"""The events check on the session's kwok cluster (``tests/charts/guarded``): it passes with
no Warning events, fails naming the ones it finds, and lets allowed reasons through."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from kubernetes import client

from harness.checks import run_check
from harness.checks.context import AppContext
from harness.errors import UsageError
from tests.checks.conftest import GUARDED, READY, check, failure


def _warning(ctx: AppContext, reason: str, message: str, count: int = 1) -> None:
    now = datetime.now(timezone.utc)
    deployment = ctx.objects_of("Deployment")[0]["metadata"]["name"]
    client.CoreV1Api(ctx.api).create_namespaced_event(
        ctx.namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{deployment}.{uuid.uuid4().hex[:12]}"),
            involved_object=client.V1ObjectReference(
                kind="Deployment", name=deployment, namespace=ctx.namespace
            ),
            reason=reason,
            message=message,
            type="Warning",
            count=count,
            first_timestamp=now,
            last_timestamp=now,
            source=client.V1EventSource(component="helm-harness-tests"),
        ),
    )


@pytest.mark.cluster
def test_events(install_app: Any) -> None:
    ctx = install_app(GUARDED, name="noisy")
    run_check(ctx, READY)
    run_check(ctx, check("events", noWarnings=True))

    _warning(ctx, "FailedMount", 'MountVolume.SetUp failed for volume "config"', count=4)
    message = failure(ctx, "events", noWarnings=True)
    assert f"expected no Warning events in namespace {ctx.namespace}" in message
    assert "observed 1 Warning event (FailedMount)" in message
    assert (
        'FailedMount Deployment/noisy-guarded (x4): MountVolume.SetUp failed for volume "config"'
    ) in message
    run_check(ctx, check("events", noWarnings=True, allow=["FailedMount"]))
    run_check(ctx, check("events", noWarnings=False))

    for i in range(11):
        _warning(ctx, "BackOff", f"Back-off restarting failed container {i}")
    message = failure(ctx, "events", allow=["FailedMount"])
    assert "observed 11 Warning events (BackOff)" in message
    assert "other than FailedMount" in message
    assert "+1 more" in message
    assert "FailedMount Deployment" not in message
    with pytest.raises(UsageError, match="events.allow must be a list"):
        run_check(ctx, check("events", allow="BackOff"))
