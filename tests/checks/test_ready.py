"""The ready check against the real kwok API server: it passes on a healthy app and fails,
with what it expected and what it saw, on a broken one."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import run_check
from harness.errors import CheckFailed
from harness.suite.model import Check
from tests.conftest import tiny_chart


def ready(**spec: Any) -> Check:
    return Check(kind="ready", spec=spec)


def test_ready_passes_for_a_healthy_web_app(install_app: Any) -> None:
    ctx = install_app("web", values={"replicaCount": 2})
    run_check(ctx, ready())
    kinds = {obj["kind"] for obj in ctx.manifest}
    assert {"Deployment", "Service"} <= kinds


def test_ready_fails_for_a_deployment_that_never_becomes_ready(install_app: Any) -> None:
    ctx = install_app("web", set_values={"simulate.pods": "crashloop"})
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="ready", spec={}, timeout=3))
    message = str(info.value)
    assert "expected Deployment web-web ready within 3s" in message
    assert "MinimumReplicasUnavailable" in message
    assert "CrashLoopBackOff" in message  # the pods' own states are part of the evidence


def test_ready_stops_at_once_on_a_failed_pod(install_app: Any, tmp_path: Any) -> None:
    chart = tiny_chart(
        tmp_path,
        "pod",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: once\n"
        "  annotations: {helm-harness.io/simulate: fail}\n"
        "spec:\n  restartPolicy: Never\n  containers: [{name: c, image: x}]\n",
    )
    ctx = install_app(chart)
    with pytest.raises(CheckFailed, match=r"Pod/once failed: c: terminated Error exit 1"):
        run_check(ctx, Check(kind="ready", spec={}, timeout=30))


def test_an_unschedulable_pod_says_what_the_scheduler_said(install_app: Any, tmp_path: Any) -> None:
    """Once only "phase Pending": now the scheduler's reason and the latest warning."""
    chart = tiny_chart(
        tmp_path,
        "picky",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: picky}\nspec:\n"
        "  selector: {matchLabels: {app: picky}}\n  template:\n"
        "    metadata: {labels: {app: picky}}\n    spec:\n"
        "      nodeSelector: {helm-harness.io/no-such-node: 'true'}\n"
        "      containers: [{name: c, image: helm-harness/fixture-app:1}]\n",
    )
    ctx = install_app(chart, timeout=4)
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="ready", spec={}))
    text = str(info.value)
    assert "PodScheduled=False (Unschedulable: 0/1 nodes are available" in text, text
    assert "node affinity/selector" in text
    assert "latest warning: FailedScheduling on Pod/picky-" in text


def test_pods_requesting_ephemeral_storage_schedule_on_kwok(
    install_app: Any, tmp_path: Any
) -> None:
    """kwok nodes once advertised no ephemeral-storage, so every chart whose pods request
    it (many charts' resource presets) was Unschedulable on kwok and fine on kind."""
    chart = tiny_chart(
        tmp_path,
        "preset",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: preset}\nspec:\n"
        "  selector: {matchLabels: {app: preset}}\n  template:\n"
        "    metadata: {labels: {app: preset}}\n    spec:\n      containers:\n"
        "        - name: c\n          image: helm-harness/fixture-app:1\n"
        "          resources: {requests: {ephemeral-storage: 1Gi, cpu: 10m, memory: 16Mi}}\n",
    )
    ctx = install_app(chart, timeout=30)
    run_check(ctx, Check(kind="ready", spec={}))


def test_ready_fails_at_once_on_a_failed_job(install_app: Any, tmp_path: Any) -> None:
    chart = tiny_chart(
        tmp_path,
        "job",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: seed}\n"
        "spec:\n  backoffLimit: 0\n  template:\n"
        "    metadata: {annotations: {helm-harness.io/simulate: fail}}\n"
        "    spec: {restartPolicy: Never, containers: [{name: seed, image: x}]}\n",
    )
    ctx = install_app(chart)
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="ready", spec={}, timeout=60))
    assert "Job/seed failed (BackoffLimitExceeded" in str(info.value)
    assert "seed: terminated Error exit 1" in str(info.value)
