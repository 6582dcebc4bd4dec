"""Metric snapshots and the ``metrics`` check.

The cluster tests run on the session's kwok cluster, which runs metrics-server: kwok's
simulated kubelet reports the usage a pod's ``ResourceUsage`` (per container) or its
``kwok.x-k8s.io/usage-cpu``/``-memory`` annotations (per pod, each container) set, and the
snapshot must read those figures back through metrics.k8s.io. metrics-server shows a pod
after its second scrape of it (10-20 s; longer just after the cluster started), so those
tests wait up to COLD_WAIT seconds for figures. A snapshot returns as soon as every pod has
figures measured after it started: the tests of that measure how long it waited."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import harness.report.snapshots
from harness import tools
from harness.checks import metrics as metrics_check
from harness.checks import run_check
from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError
from harness.kube.resource_metrics import Sample
from harness.kube.resource_metrics import parse as parse_resource_metrics
from harness.kube.wait import all_have_condition, wait_for
from harness.report.snapshots import (
    METRICS_WAIT,
    compare,
    cpu_millicores,
    format_cpu,
    format_memory,
    memory_bytes,
    snapshot_ready,
    summary,
    take_snapshot,
)
from harness.report.snapshots import _container_figures as container_figures
from harness.report.snapshots import _not_before as not_before
from harness.suite.model import Check
from tests.conftest import REPO, tiny_chart

COLD_WAIT = 45.0  # metrics-server's first figures come ~26 s after the cluster starts
MI = 1 << 20
SECRET = "s3cr3t-token-value"

CHART = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: counted}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: counted}}}}
  template:
    metadata: {{labels: {{app: counted}}}}
    spec:
      initContainers: [{{name: setup, image: registry.example.invalid/setup}}]
      containers:
        - {{name: app, image: registry.example.invalid/app}}
        - {{name: sidecar, image: registry.example.invalid/sidecar}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: annotated}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: annotated}}}}
  template:
    metadata:
      labels: {{app: annotated}}
      annotations: {{kwok.x-k8s.io/usage-cpu: 300m, kwok.x-k8s.io/usage-memory: 200Mi}}
    spec:
      containers:
        - name: web
          image: registry.example.invalid/web
          env: [{{name: API_TOKEN, value: {SECRET}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: crashing}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: crashing}}}}
  template:
    metadata:
      labels: {{app: crashing}}
      annotations: {{helm-harness.io/simulate: crashloop}}
    spec:
      containers: [{{name: loop, image: registry.example.invalid/loop}}]
"""

ANNOTATED_ONLY = CHART.split("---\n")[1]

STATEFUL = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata:
      labels: {app: db}
      annotations: {kwok.x-k8s.io/usage-cpu: 100m, kwok.x-k8s.io/usage-memory: 50Mi}
    spec:
      containers: [{name: db, image: registry.example.invalid/db}]
"""


def metrics(timeout: float = COLD_WAIT, **spec: Any) -> Check:
    return Check(kind="metrics", spec=spec, timeout=timeout)


def pods_by_app(ctx: AppContext, app: str) -> list[dict[str, Any]]:
    return [pod for pod in ctx.release_pods() if pod["metadata"]["labels"].get("app") == app]


def set_usage(
    k8s: client.ApiClient, pod: dict[str, Any], usage: dict[str, tuple[str, str]]
) -> None:
    """A kwok ResourceUsage for ``pod``: container name -> (cpu, memory)."""
    meta = pod["metadata"]
    body = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ResourceUsage",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {
            "usages": [
                {"containers": [name], "usage": {"cpu": {"value": cpu}, "memory": {"value": mem}}}
                for name, (cpu, mem) in usage.items()
            ]
        },
    }
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", meta["namespace"], "resourceusages", body
    )


def install_ready(
    install_app: Any, chart: Path, k8s: client.ApiClient, pods: int, source: str = "metrics-api"
) -> AppContext:
    """The chart installed, its pods Ready; snapshots of it read ``source``
    (``--metrics-source``): metrics-server's API unless a test says otherwise."""
    ctx: AppContext = install_app(chart)
    ctx.metrics_source = source
    wait_for(
        client.CoreV1Api(k8s).list_namespaced_pod,
        all_have_condition("Ready", at_least=pods),
        expected=f"{pods} pods Ready",
        timeout=60,
        namespace=ctx.namespace,
        label_selector="app in (counted, annotated)",
    )
    return ctx


# -- on the cluster ------------------------------------------------------------------------


def test_kwok_cluster_runs_metrics_server(harness_cluster: Any) -> None:
    if harness_cluster.provider != "kwok":
        pytest.skip("the session cluster is not a kwok cluster")
    assert harness_cluster.details["metrics"] == "metrics-server (metrics.k8s.io)"


def test_snapshot_reads_back_the_usage_kwok_reports(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    chart = tiny_chart(tmp_path, "usage", CHART)
    ctx = install_ready(install_app, chart, k8s, pods=3)
    (counted,) = pods_by_app(ctx, "counted")
    set_usage(k8s, counted, {"app": ("150m", "64Mi"), "sidecar": ("40m", "10Mi")})
    wait_for(
        client.CoreV1Api(k8s).list_namespaced_pod,
        lambda pods: bool(pods) and pods[0]["status"]["containerStatuses"][0]["restartCount"] == 3,
        expected="the crashing pod restarted 3 times",
        timeout=30,
        namespace=ctx.namespace,
        label_selector="app=crashing",
    )

    result = take_snapshot(ctx, tmp_path / "report", timings={"install": 0.41234}, wait=COLD_WAIT)

    assert result["source"] == "metrics.k8s.io" and result["reason"] is None, result
    assert result["file"] == "metrics/t/usage.json"
    assert result["pods"] == 4
    assert result["cpu_millicores"] == pytest.approx(150 + 40 + 2 * 300, abs=2)
    assert result["restarts"] == 3
    assert 0 <= result["time_to_ready_s"] <= 30
    document = json.loads((tmp_path / "report" / result["file"]).read_text())
    assert document["timings"] == {"install": 0.412}
    assert document == ctx.metrics
    by_pod = {pod["name"]: pod for pod in document["pods"]}
    containers = {c["name"]: c for c in by_pod[counted["metadata"]["name"]]["containers"]}
    assert containers["app"]["cpu_millicores"] == pytest.approx(150, abs=1)
    assert containers["app"]["memory_bytes"] == 64 * MI
    assert containers["sidecar"]["cpu_millicores"] == pytest.approx(40, abs=1)
    assert containers["sidecar"]["memory_bytes"] == 10 * MI
    assert containers["setup"]["init"] and containers["setup"]["cpu_millicores"] is None
    for pod in pods_by_app(ctx, "annotated"):
        (web,) = by_pod[pod["metadata"]["name"]]["containers"]
        assert web["cpu_millicores"] == pytest.approx(300, abs=1)
        assert web["memory_bytes"] == 200 * MI
        assert by_pod[pod["metadata"]["name"]]["time_to_ready_s"] is not None
    (crashing,) = pods_by_app(ctx, "crashing")
    assert by_pod[crashing["metadata"]["name"]]["time_to_ready_s"] is None
    assert by_pod[crashing["metadata"]["name"]]["containers"][0]["restarts"] == 3
    memory = 64 * MI + 10 * MI + 2 * 200 * MI
    assert result["memory_bytes"] - memory in (0, 1 * MI)  # the crashing pod: kwok's 1Mi
    assert SECRET not in json.dumps(document)

    # The same figures as `kubectl top pods --containers` reads them.
    raw: Any = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", ctx.namespace, "pods", counted["metadata"]["name"]
    )
    assert {c["name"]: c["usage"]["memory"] for c in raw["containers"]} == {
        "app": "64Mi",
        "sidecar": "10Mi",
    }

    # The kubelet's resource metrics, read through the node proxy, give the same figures
    # (kwok applies the ResourceUsage by now: metrics-server's figures show it).
    ctx.metrics_source = "kubelet"
    direct = take_snapshot(ctx, tmp_path / "direct", timings={}, wait=COLD_WAIT)
    assert direct["source"] == "kubelet" and direct["reason"] is None, direct
    assert ctx.metrics is not None
    by_pod = {pod["name"]: pod for pod in ctx.metrics["pods"]}
    figures = {
        c["name"]: (c["cpu_millicores"], c["memory_bytes"])
        for c in by_pod[counted["metadata"]["name"]]["containers"]
    }
    assert figures["app"][0] == pytest.approx(150, abs=1) and figures["app"][1] == 64 * MI
    assert figures["sidecar"][0] == pytest.approx(40, abs=1)
    assert figures["sidecar"][1] == 10 * MI
    assert figures["setup"] == (None, None)
    assert direct["memory_bytes"] - memory in (0, 1 * MI)
    assert direct["cpu_millicores"] == pytest.approx(result["cpu_millicores"], abs=3)


def test_budgets_below_the_usage_fail_and_above_it_pass(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    chart = tiny_chart(tmp_path, "budget", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2, source="auto")  # 2 x (300m, 200Mi)

    run_check(ctx, metrics(memory="<= 512Mi", cpu="<= 700m"))
    assert ctx.metrics is not None and ctx.metrics["totals"]["pods"] == 2
    run_check(ctx, metrics(memory="< 256Mi", cpu="0.5", perContainer=True))
    run_check(ctx, metrics(cpu=">= 500m"))

    with pytest.raises(CheckFailed) as info:
        run_check(ctx, metrics(memory="<= 256Mi", cpu="<= 500m"))
    message = str(info.value)
    assert message.startswith(
        "expected cpu <= 500m and memory <= 256Mi for the app's pods together; observed "
    )
    # kwok reports CPU as a rate over the scrape window: 600m may read 599.986m
    found = re.search(r"cpu (\d+(?:\.\d+)?)m in total over 2 pods", message)
    assert found and abs(float(found.group(1)) - 600) < 1, message
    assert "memory 400Mi in total over 2 pods" in message
    assert re.search(
        r"memory \(biggest consumers\):\n  pod/annotated-\S+ container web: 200Mi", message
    )

    with pytest.raises(CheckFailed) as info:
        run_check(ctx, metrics(memory="< 200Mi", perContainer=True))
    message = str(info.value)
    assert "expected memory < 200Mi per container" in message
    assert "memory outside the budget in 2 containers (highest 200Mi, pod/annotated-" in message


def test_unavailable_metrics_are_recorded_and_fail_the_check(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = tiny_chart(tmp_path, "nometrics", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2)
    real_lookup = ctx.resolver.by_name

    def without_metrics(name: str) -> Any:  # as discovery answers without metrics-server
        if name == "pods.metrics.k8s.io":
            raise UsageError(f"unknown resource type {name!r} (not served by this cluster)")
        return real_lookup(name)

    monkeypatch.setattr(ctx.resolver, "by_name", without_metrics)
    # ... and without its APIService registered either.
    monkeypatch.setattr(harness.report.snapshots, "_apiservice_state", lambda ctx: None)

    result = take_snapshot(ctx, tmp_path, timings={})
    reason = "metrics unavailable: the cluster does not serve metrics.k8s.io (no metrics-server)"
    assert result == {
        "cpu_millicores": None,
        "memory_bytes": None,
        "restarts": 0,
        "time_to_ready_s": result["time_to_ready_s"],
        "pods": 2,
        "source": "unavailable",
        "reason": reason,
        "file": "metrics/t/nometrics.json",
    }
    assert result["time_to_ready_s"] is not None
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, metrics(memory="<= 1Gi"))
    assert str(info.value) == (
        f"expected memory <= 1Gi for the app's pods together; observed {reason}"
    )


def test_a_registered_metrics_server_not_yet_available_is_waited_for(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a cluster that has just started: metrics-server's APIService exists (the real
    one of the session cluster), but discovery does not list metrics.k8s.io for the first
    seconds. The snapshot waits for it within its wait instead of giving up."""
    chart = tiny_chart(tmp_path, "latemetrics", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2)
    real_lookup = ctx.resolver.by_name
    until = time.monotonic() + 2

    def late_metrics(name: str) -> Any:
        if name == "pods.metrics.k8s.io" and time.monotonic() < until:
            raise UsageError(f"unknown resource type {name!r} (not served by this cluster)")
        return real_lookup(name)

    monkeypatch.setattr(ctx.resolver, "by_name", late_metrics)
    result = take_snapshot(ctx, tmp_path, timings={}, wait=60)
    assert result["source"] == "metrics.k8s.io", result
    assert time.monotonic() >= until


def until_ready(ctx: AppContext, timeout: float = COLD_WAIT) -> float:
    """Seconds until snapshot_ready(ctx) says a snapshot would not wait."""
    started = time.monotonic()
    while not snapshot_ready(ctx):
        assert time.monotonic() - started < timeout, "no fresh figures for the app's pods"
        time.sleep(0.5)
    return time.monotonic() - started


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pod_start(pod: dict[str, Any]) -> datetime:
    """The latest start of the pod's running containers (whole seconds, as the API says)."""
    return max(
        stamp(c["state"]["running"]["startedAt"]) for c in pod["status"]["containerStatuses"]
    )


def assert_measured_after_start(ctx: AppContext, document: dict[str, Any]) -> None:
    pods = {pod["metadata"]["name"]: pod for pod in ctx.release_pods()}
    for record in document["pods"]:
        assert stamp(record["metrics_timestamp"]) > pod_start(pods[record["name"]]), record


def test_a_snapshot_of_pods_measured_since_they_started_does_not_wait(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    chart = tiny_chart(tmp_path, "settled", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2)
    until_ready(ctx)  # metrics-server's second scrape of the pods

    started = time.monotonic()
    result = take_snapshot(ctx, tmp_path / "report", timings={}, wait=METRICS_WAIT)
    elapsed = time.monotonic() - started

    assert result["source"] == "metrics.k8s.io" and result["reason"] is None, result
    assert elapsed < 5, elapsed  # one look: no wait for the next scrape
    assert ctx.metrics is not None and 0 <= ctx.metrics["waited_s"] <= elapsed
    assert result["cpu_millicores"] == pytest.approx(2 * 300, abs=2)
    assert result["memory_bytes"] == 2 * 200 * MI
    assert_measured_after_start(ctx, ctx.metrics)

    # wait=0 takes them too: they are there.
    started = time.monotonic()
    again = take_snapshot(ctx, tmp_path / "report", timings={}, wait=0)
    assert time.monotonic() - started < 5
    assert again["reason"] is None and again["memory_bytes"] == 2 * 200 * MI


def test_a_snapshot_right_after_install_waits_for_the_first_fresh_figures_only(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    chart = tiny_chart(tmp_path, "fresh", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2)
    assert not snapshot_ready(ctx)  # the pods' first figures come with the second scrape

    result = take_snapshot(ctx, tmp_path / "report", timings={}, wait=COLD_WAIT)
    returned = datetime.now(timezone.utc)

    document = ctx.metrics
    assert document is not None
    assert result["reason"] is None, result
    assert 0 < document["waited_s"] < COLD_WAIT
    assert result["cpu_millicores"] == pytest.approx(2 * 300, abs=2)
    assert result["memory_bytes"] == 2 * 200 * MI
    assert_measured_after_start(ctx, document)
    # It returned with the scrape that brought the figures, not at a fixed time: within the
    # whole second the timestamp drops, a poll (1 s at most) and the API's latency.
    newest = max(stamp(pod["metrics_timestamp"]) for pod in document["pods"])
    assert (returned - newest).total_seconds() < 5, (returned, newest)


def test_wait_0_takes_what_is_there_at_once(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    chart = tiny_chart(tmp_path, "nowait", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2)

    started = time.monotonic()
    result = take_snapshot(ctx, tmp_path, timings={}, wait=0)
    elapsed = time.monotonic() - started

    assert elapsed < 5, elapsed
    assert ctx.metrics is not None and ctx.metrics["waited_s"] <= elapsed
    assert result["pods"] == 2
    if result["source"] == "metrics.k8s.io":  # else metrics-server was not Available yet
        names = sorted(pod["metadata"]["name"] for pod in ctx.release_pods())
        assert result["reason"] == (
            f"no figures within 0s for pod(s) {', '.join(names)} "
            "(metrics-server shows a pod after its second scrape of it)"
        )
        for pod in ctx.metrics["pods"]:
            assert pod["containers"][0]["memory_bytes"] is None


def test_the_figures_of_a_pod_replaced_under_the_same_name_are_waited_for(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    """A StatefulSet's pod replaced by a rolling update keeps its name, and metrics-server
    goes on serving the old pod's last figures until its next scrape: the snapshot waits
    for figures measured after the new pod started."""
    ctx: AppContext = install_app(tiny_chart(tmp_path, "stateful", STATEFUL))
    ctx.metrics_source = "metrics-api"
    core, custom = client.CoreV1Api(k8s), client.CustomObjectsApi(k8s)
    ns = ctx.namespace

    def db_pod() -> Any:
        return core.read_namespaced_pod("db-0", ns)

    def served() -> dict[str, Any]:  # what `kubectl top pod db-0` reads
        for _ in range(20):  # 404 while metrics-server's pod informer has no db-0
            try:
                item: Any = custom.get_namespaced_custom_object(
                    "metrics.k8s.io", "v1beta1", ns, "pods", "db-0"
                )
                return dict(item)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                time.sleep(0.1)
        raise AssertionError("metrics-server serves no figures for db-0")

    wait_for(
        core.list_namespaced_pod,
        all_have_condition("Ready", at_least=1),
        expected="db-0 Ready",
        timeout=60,
        namespace=ns,
    )
    until_ready(ctx)
    # Right after a scrape, so that the old pod's figures are still served while it is
    # replaced.
    first = served()["timestamp"]
    deadline = time.monotonic() + 30
    while served()["timestamp"] == first:
        assert time.monotonic() < deadline, "metrics-server did not scrape again"
        time.sleep(0.2)
    old_uid = db_pod().metadata.uid
    client.AppsV1Api(k8s).patch_namespaced_stateful_set(
        "db",
        ns,
        {
            "spec": {
                "template": {"metadata": {"annotations": {"kwok.x-k8s.io/usage-memory": "150Mi"}}}
            }
        },
    )
    wait_for(
        core.list_namespaced_pod,
        lambda pods: any(
            p["metadata"]["uid"] != old_uid
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions") or []
            )
            for p in pods
        ),
        expected="a new db-0 Ready",
        timeout=30,
        namespace=ns,
    )
    stale = served()
    assert {c["name"]: c["usage"]["memory"] for c in stale["containers"]} == {"db": "50Mi"}
    assert not snapshot_ready(ctx)

    result = take_snapshot(ctx, tmp_path, timings={}, wait=COLD_WAIT)

    assert result["reason"] is None, result
    assert result["memory_bytes"] == 150 * MI
    assert ctx.metrics is not None and 0 < ctx.metrics["waited_s"] < COLD_WAIT
    assert_measured_after_start(ctx, ctx.metrics)


# -- the kubelet's resource metrics --------------------------------------------------------


def test_a_kubelet_snapshot_right_after_install_does_not_wait_for_metrics_server(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    chart = tiny_chart(tmp_path, "atonce", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2, source="auto")
    assert not snapshot_ready(ctx)  # metrics-server has no figures of the new pods yet

    # One look (wait 0): kwok's kubelet gives no start time, so the memory, no CPU yet.
    look = take_snapshot(ctx, tmp_path, timings={}, wait=0)
    assert look["source"] == "kubelet" and look["memory_bytes"] == 2 * 200 * MI, look
    assert look["reason"] is not None and look["reason"].startswith(
        "no kubelet figures within 0s for pod(s) "
    )
    assert look["reason"].count("(web: no CPU yet)") == 2, look["reason"]
    assert ctx.metrics is not None
    assert all(pod["containers"][0]["cpu_millicores"] is None for pod in ctx.metrics["pods"])

    result = take_snapshot(ctx, tmp_path, timings={}, wait=COLD_WAIT)

    document = ctx.metrics
    assert document is not None
    assert result["source"] == "kubelet" and result["reason"] is None, result
    assert document["kubelet_unused"] is None
    # metrics-server's first figures of a pod come 10 s or more after it started
    assert document["waited_s"] < 10, document["waited_s"]
    assert result["cpu_millicores"] == pytest.approx(2 * 300, abs=2)
    assert result["memory_bytes"] == 2 * 200 * MI
    for pod in document["pods"]:
        assert pod["metrics_window_s"] >= 1.0, pod  # kwok gives no start time: two reads
    assert_measured_after_start(ctx, document)


LIMITED_ROLE = "hh-test-metrics-no-node-proxy"
# What a CI account may often do: everything a run needs, but not use the node proxy.
READ_ONLY = [
    {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]},
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["list"]},
]
RUN_RULES = [
    {
        "apiGroups": [""],
        "resources": [
            *("pods", "pods/log", "services", "endpoints", "configmaps", "secrets"),
            *("serviceaccounts", "namespaces", "events", "persistentvolumeclaims", "nodes"),
        ],
        "verbs": ["*"],
    },
    {
        "apiGroups": [
            *("apps", "batch", "policy", "events.k8s.io", "metrics.k8s.io"),
            *("storage.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io"),
        ],
        "resources": ["*"],
        "verbs": ["*"],
    },
]


def limited_account(k8s: client.ApiClient, namespace: str, rules: list[Any]) -> str:
    """A token of a ServiceAccount bound to a ClusterRole of ``rules`` (named
    LIMITED_ROLE: the caller deletes it and its binding)."""
    core, rbac = client.CoreV1Api(k8s), client.RbacAuthorizationV1Api(k8s)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_cluster_role({"metadata": {"name": LIMITED_ROLE}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": LIMITED_ROLE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": LIMITED_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        }
    )
    return str(
        core.create_namespaced_service_account_token(
            "reader", namespace, {"spec": {"expirationSeconds": 900}}
        ).status.token
    )


def limited_client(k8s: client.ApiClient, namespace: str) -> client.ApiClient:
    """A client that may read pods, nodes and PodMetrics but not use the node proxy
    (``nodes/proxy``)."""
    token = limited_account(k8s, namespace, READ_ONLY)
    own = k8s.configuration
    configuration = client.Configuration()
    configuration.host = own.host
    configuration.ssl_ca_cert = own.ssl_ca_cert
    configuration.verify_ssl = own.verify_ssl
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def drop_limited_role(k8s: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(k8s)
    rbac.delete_cluster_role_binding(LIMITED_ROLE)
    rbac.delete_cluster_role(LIMITED_ROLE)


def test_without_the_node_proxy_auto_uses_metrics_server_and_says_why(
    install_app: Any, k8s: client.ApiClient, tmp_path: Path
) -> None:
    chart = tiny_chart(tmp_path, "noproxy", ANNOTATED_ONLY)
    ctx = install_ready(install_app, chart, k8s, pods=2, source="auto")
    try:
        with limited_client(k8s, ctx.namespace) as limited:
            reader = replace(ctx, api=limited)

            result = take_snapshot(reader, tmp_path, timings={}, wait=COLD_WAIT)

            assert result["source"] == "metrics.k8s.io" and result["reason"] is None, result
            assert result["memory_bytes"] == 2 * 200 * MI
            assert reader.metrics is not None
            unused = reader.metrics["kubelet_unused"]
            (node,) = {pod["spec"]["nodeName"] for pod in ctx.release_pods()}
            assert unused.startswith(
                f"node {node}'s resource metrics (/metrics/nodes/{node}/metrics/resource "
                "through the node proxy): 403 "
            ), unused
            assert 'cannot get resource "nodes/proxy"' in unused

            # Told to read the kubelet only, it records why it could not.
            only = replace(ctx, api=limited, metrics_source="kubelet", metrics=None)
            result = take_snapshot(only, tmp_path, timings={}, wait=COLD_WAIT)
            assert result["source"] == "unavailable" and result["memory_bytes"] is None
            assert result["reason"] == f"metrics unavailable: {unused}"
    finally:
        drop_limited_role(k8s)


def test_a_run_without_the_node_proxy_says_once_that_snapshots_wait_for_metrics_server(
    pytester: pytest.Pytester, k8s: client.ApiClient, namespace: str, harness_cluster: Any
) -> None:
    """A whole run under an account that may do all a run does but use the node proxy:
    its apps' snapshots come from metrics.k8s.io, and its notes say why, once."""
    token = limited_account(k8s, namespace, RUN_RULES)
    try:
        source = yaml.safe_load(Path(harness_cluster.kubeconfig).read_text())
        cluster = source["clusters"][0]
        kubeconfig = pytester.path / "ci.kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [cluster],
                    "users": [{"name": "ci", "user": {"token": token}}],
                    "contexts": [
                        {"name": "ci", "context": {"cluster": cluster["name"], "user": "ci"}}
                    ],
                    "current-context": "ci",
                }
            )
        )
        kubeconfig.chmod(0o600)
        chart = tiny_chart(pytester.path, "limited", ANNOTATED_ONLY)
        apps = "".join(
            f"  - {{name: {name}, chart: {chart}, checks: [{{ready: {{}}}}]}}\n"
            for name in ("one", "two")
        )
        (pytester.path / "ci.suite.yaml").write_text(
            f"apiVersion: helm-harness/v1\nkind: Suite\napps:\n{apps}"
        )
        result = pytester.runpytest_subprocess(
            f"--kubeconfig={kubeconfig}",
            "--metrics-wait=45s",
            f"--report-dir={pytester.path / 'report'}",
            "-p",
            "no:cacheprovider",
        )
        output = result.stdout.str() + result.stderr.str()
        result.assert_outcomes(passed=4)
        results = json.loads((pytester.path / "report" / "results.json").read_text())
        for app in results["apps"]:
            assert app["metrics"]["source"] == "metrics.k8s.io", app["metrics"]
            assert app["metrics"]["memory_bytes"] == 2 * 200 * MI
        note = "metric snapshots read metrics.k8s.io, not the kubelet: node "
        assert output.count(note) == 1, output
        assert 'cannot get resource "nodes/proxy"' in output
    finally:
        drop_limited_role(k8s)


# -- without a cluster ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "millicores"),
    [
        ("500m", 500.0),
        ("0.5", 500.0),
        ("1", 1000.0),
        (2, 2000.0),
        ("150004386n", 150.004386),
        ("250u", 0.25),
        ("1e-1", 100.0),
    ],
)
def test_cpu_quantities(text: str | int, millicores: float) -> None:
    assert cpu_millicores(text) == pytest.approx(millicores)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("256Mi", 256 * MI),
        ("1Gi", 1 << 30),
        ("100Ki", 102400),
        ("1k", 1000),
        ("2M", 2_000_000),
        ("1G", 10**9),
        ("1048576", MI),
        (512, 512),
        ("1500m", 2),
    ],
)
def test_memory_quantities(text: str | int, count: int) -> None:
    assert memory_bytes(text) == count


@pytest.mark.parametrize("text", ["lots", "1Mb", "", "-1Mi", "Mi"])
def test_bad_quantities_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="quantity"):
        memory_bytes(text)


@pytest.mark.parametrize(
    ("figure", "text", "op", "limit"),
    [
        ("cpu", "<= 500m", "<=", 500.0),
        ("cpu", "<0.25", "<", 250.0),
        ("cpu", ">= 1", ">=", 1000.0),
        ("cpu", "== 100m", "==", 100.0),
        ("cpu", "500m", "<=", 500.0),
        ("cpu", 0.5, "<=", 500.0),
        ("memory", "<= 256Mi", "<=", 256.0 * MI),
        ("memory", "> 1G", ">", 1e9),
        ("memory", "  <  64Ki ", "<", 65536.0),
        ("memory", 1024, "<=", 1024.0),
    ],
)
def test_budgets_parse(figure: str, text: str | float, op: str, limit: float) -> None:
    budget = metrics_check.parse_budget(figure, text)
    assert (budget.figure, budget.op) == (figure, op)
    assert budget.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"memory": "<= lots"}, r"^metrics\.memory: not a quantity: 'lots'"),
        ({"memory": "=> 5Mi"}, r"^metrics\.memory: not a quantity: '=> 5Mi'"),
        ({"cpu": "<= -1"}, r"^metrics\.cpu: a quantity must not be negative"),
        ({"cpu": True}, r"^metrics\.cpu: write a budget such as \"<= 500m\", not True"),
        ({"memory": ["256Mi"]}, r"^metrics\.memory: write a budget such as"),
        ({"memory": "<= 1Gi", "disk": "1Gi"}, r"^metrics: unknown key\(s\) disk"),
        ({"memory": "<= 1Gi", "perContainer": "yes"}, r"^metrics\.perContainer must be true"),
        ({"perContainer": True}, r"^metrics: give a cpu and/or memory budget"),
        ({}, r"^metrics: give a cpu and/or memory budget"),
    ],
)
def test_malformed_budgets_are_usage_errors_naming_the_key(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        metrics_check.parse(spec)


def test_figures_read_as_people_write_them() -> None:
    assert format_cpu(600.0) == "600m"
    assert format_cpu(149.9876) == "149.988m"
    assert format_memory(256 * MI) == "256Mi"
    assert format_memory(1.5 * (1 << 30)) == "1.5Gi"
    assert format_memory(100) == "100B"


def test_compare_gives_deltas_and_ratios_per_figure() -> None:
    before = {
        "cpu_millicores": 200.0,
        "memory_bytes": 100 * MI,
        "restarts": 0,
        "time_to_ready_s": 4.0,
        "pods": 2,
        "source": "metrics.k8s.io",
        "reason": None,
        "file": "metrics/s/web.json",
    }
    after_document = {
        "source": "metrics.k8s.io",
        "reason": None,
        "totals": {
            "cpu_millicores": 300.0,
            "memory_bytes": 150 * MI,
            "restarts": 2,
            "time_to_ready_s": 3.0,
            "pods": 2,
        },
    }
    assert compare(before, after_document) == {
        "cpu_millicores": {"before": 200.0, "after": 300.0, "delta": 100.0, "ratio": 1.5},
        "memory_bytes": {"before": 100 * MI, "after": 150 * MI, "delta": 50 * MI, "ratio": 1.5},
        "restarts": {"before": 0, "after": 2, "delta": 2, "ratio": None},
        "time_to_ready_s": {"before": 4.0, "after": 3.0, "delta": -1.0, "ratio": 0.75},
        "pods": {"before": 2, "after": 2, "delta": 0, "ratio": 1.0},
    }
    assert summary(after_document)["cpu_millicores"] == 300.0


def test_compare_with_figures_missing_on_one_side() -> None:
    unavailable = {"cpu_millicores": None, "memory_bytes": None, "restarts": 1, "pods": 1}
    result = compare({"cpu_millicores": 10.0, "memory_bytes": MI, "restarts": 1}, unavailable)
    assert result["cpu_millicores"] == {"before": 10.0, "after": None, "delta": None, "ratio": None}
    assert result["restarts"] == {"before": 1, "after": 1, "delta": 0, "ratio": 1.0}
    assert result["time_to_ready_s"] == {
        "before": None,
        "after": None,
        "delta": None,
        "ratio": None,
    }


def test_installer_builds_metrics_server_by_default_at_the_pinned_version() -> None:
    text = (REPO / "clusters" / "kwok" / "install.sh").read_text()
    version = re.escape(tools.METRICS_SERVER_VERSION)
    assert re.search(
        rf"^METRICS_SERVER_VERSION=\$\{{METRICS_SERVER_VERSION:-{version}\}}$", text, re.M
    )
    assert '"${INSTALL_METRICS_SERVER:-1}" == 1' in text
    assert "metrics-server" in tools.KWOK_OPTIONAL_BINARIES
    assert "metrics-server" not in tools.KWOK_BINARIES


# The kubelet's /metrics/resource as a real kubelet writes it: lines stamped with the stats'
# time in milliseconds, start times since the epoch (figures made up for the test).
KUBELET_TEXT = """\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="web",namespace="s",pod="w"} 1.5 1764622810000
container_cpu_usage_seconds_total{container="old",namespace="s",pod="w"} 9 1764622810000
# HELP container_memory_working_set_bytes [STABLE] Current working set
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="web",namespace="s",pod="w"} 25165824 1764622810000
container_memory_working_set_bytes{container="old",namespace="s",pod="w"} 1024 1764622810000
# HELP container_start_time_seconds [STABLE] Start time since unix epoch
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="web",namespace="s",pod="w"} 1.7646228e+09 1764622810000
container_start_time_seconds{container="old",namespace="s",pod="w"} 1.7646227e+09 1764622810000
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.2e+09 1764622810000
scrape_error 0
"""


def test_kubelet_text_is_read_per_container_with_the_stats_time() -> None:
    samples = parse_resource_metrics(KUBELET_TEXT, read_at=1.0)
    web = samples[("s", "w", "web")]
    assert web == Sample(
        cpu_seconds=1.5, memory_bytes=25165824.0, start=1764622800.0, measured=1764622810.0
    )
    assert set(samples) == {("s", "w", "web"), ("s", "w", "old")}
    # kwok's simulated kubelet stamps nothing: the read's time stands in.
    kwok = 'container_cpu_usage_seconds_total{container="a",namespace="n",pod="p"} 0.25\n'
    assert parse_resource_metrics(kwok, read_at=42.0)[("n", "p", "a")].measured == 42.0
    with pytest.raises(ValueError):
        parse_resource_metrics("<html>no metrics here</html>", read_at=0.0)


def test_kubelet_cpu_is_the_average_since_the_start_or_a_rate_over_two_reads() -> None:
    samples = parse_resource_metrics(KUBELET_TEXT, read_at=1.0)
    web = samples[("s", "w", "web")]  # the kubelet's start: 1764622800 (21:00:00)
    # The API's start of the process may come seconds after the runtime created it.
    pod = {"metadata": {"creationTimestamp": "2025-12-01T20:59:50Z"}}
    status = {"state": {"running": {"startedAt": "2025-12-01T21:00:04Z"}}}
    usage, window, _ = container_figures(web, None, not_before(pod, status)) or ({}, None, None)
    assert (usage, window) == ({"memory": "25165824", "cpu": "150000000n"}, 10.0)  # 150m
    # A sample of the container's run before it restarted (it started before that run
    # ended): none.
    restarted = {
        "state": {"running": {"startedAt": "2025-12-01T21:00:04Z"}},
        "lastState": {"terminated": {"finishedAt": "2025-12-01T21:00:03Z"}},
    }
    assert container_figures(web, None, not_before(pod, restarted)) is None
    # ... or of a pod of the same name created before this one (a StatefulSet's).
    old = samples[("s", "w", "old")]  # started 1764622700 (20:58:20)
    assert container_figures(old, None, not_before(pod, status)) is None
    # A start that is an age (kwok): the rate between two reads a second or more apart.
    first = Sample(cpu_seconds=2.0, memory_bytes=1024.0, start=30.0, measured=100.0)
    later = Sample(cpu_seconds=2.6, memory_bytes=2048.0, start=32.0, measured=102.0)
    assert container_figures(later, first, None) == (
        {"memory": "2048", "cpu": "300000000n"},
        2.0,
        later,
    )
    # One read only, or two half a second apart: the memory, and no CPU yet.
    assert container_figures(first, None, None) == ({"memory": "1024"}, None, first)
    soon = Sample(cpu_seconds=2.1, memory_bytes=1024.0, start=30.5, measured=100.5)
    assert container_figures(soon, first, None) == ({"memory": "1024"}, None, soon)
