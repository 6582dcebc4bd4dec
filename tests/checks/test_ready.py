"""The ready check against the real kwok API server: it passes on a healthy app and fails,
with what it expected and what it saw, on a broken one."""

from __future__ import annotations

import time
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


# -- what cannot happen fails at once, with the cause -----------------------------------------


def deployment(name: str, pod_spec: str, annotations: str = "{}") -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n"
        f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n"
        f"    metadata: {{labels: {{app: {name}}}, annotations: {annotations}}}\n"
        f"    spec:\n{pod_spec}"
    )


CONTAINER = "      containers: [{name: c, image: helm-harness/fixture-app:1}]\n"


def fails_fast(ctx: Any, spec: dict[str, Any] | None = None) -> str:
    """The ready check's failure, which must come long before its 120 s timeout."""
    started = time.monotonic()
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="ready", spec=spec or {}, timeout=120))
    assert time.monotonic() - started < 30, "waited as if it could still become ready"
    return str(info.value)


def test_an_image_that_cannot_be_pulled_fails_at_once(install_app: Any, tmp_path: Any) -> None:
    chart = tiny_chart(
        tmp_path,
        "pull",
        deployment("pull", CONTAINER, "{helm-harness.io/simulate: image-pull-backoff}"),
    )
    text = fails_fast(install_app(chart))
    assert "expected Deployment pull ready" in text
    assert "container c cannot get image helm-harness/fixture-app:1: ImagePullBackOff" in text


def test_a_crash_loop_past_max_restarts_fails_at_once(install_app: Any) -> None:
    ctx = install_app("web", set_values={"simulate.pods": "crashloop"})  # 3 restarts
    text = fails_fast(ctx, {"maxRestarts": 1})
    assert "is in CrashLoopBackOff after 3 restarts" in text
    assert "(more than the ready check's maxRestarts, 1)" in text


def test_a_pod_no_node_can_take_fails_at_once_naming_why(install_app: Any, tmp_path: Any) -> None:
    selector = "      nodeSelector: {helm-harness.io/no-such-node: 'true'}\n" + CONTAINER
    text = fails_fast(install_app(tiny_chart(tmp_path, "picky", deployment("picky", selector))))
    assert "no node can ever run it: no node matches helm-harness.io/no-such-node=true" in text
    assert "the scheduler: 0/1 nodes are available" in text


def test_a_pod_bigger_than_every_node_fails_at_once(install_app: Any, tmp_path: Any) -> None:
    huge = (
        "      containers:\n        - name: c\n          image: helm-harness/fixture-app:1\n"
        "          resources: {requests: {cpu: '5000'}}\n"
    )
    text = fails_fast(install_app(tiny_chart(tmp_path, "huge", deployment("huge", huge))))
    assert "it requests 5000 cpu, and no node has more than" in text


def test_a_claim_of_a_missing_storage_class_fails_at_once(install_app: Any, tmp_path: Any) -> None:
    template = (
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n"
        "  storageClassName: helm-harness-no-such-class\n  accessModes: [ReadWriteOnce]\n"
        "  resources: {requests: {storage: 1Gi}}\n---\n"
        + deployment(
            "store",
            "      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]\n"
            "      containers: [{name: c, image: helm-harness/fixture-app:1,"
            " volumeMounts: [{name: data, mountPath: /data}]}]\n",
        )
    )
    text = fails_fast(install_app(tiny_chart(tmp_path, "store", template)))
    assert "persistentvolumeclaim/data: it asks for StorageClass helm-harness-no-such-class" in text


def test_a_crash_loop_within_the_budget_is_waited_for(install_app: Any) -> None:
    """The same loop under the default budget (5) is not judged: the check waits it out."""
    ctx = install_app("web", set_values={"simulate.pods": "crashloop"})
    with pytest.raises(CheckFailed, match="ready within 3s"):
        run_check(ctx, Check(kind="ready", spec={}, timeout=3))
