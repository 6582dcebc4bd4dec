"""The disrupt check on real API servers: pods deleted and a rollout restarted on the
session's kwok cluster and the app back within the budget (the time recorded), a node
drained on a two-node kwok cluster of its own (also under a PodDisruptionBudget that lets
one pod go at a time, and one that lets none: "could not drain" within the check's own
timeout, naming the budget and its status), and the failures: a selector that matches
nothing, an app whose new pods cannot be created, a bare pod that nothing recreates, a
drain on a single-node cluster. And the suite file's validation of the check."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.checks import run_check
from harness.checks.context import AppContext
from harness.clusters.base import ClusterSpec
from harness.clusters.kwok import KwokProvider
from harness.errors import CheckFailed
from harness.kube.client import api_client
from harness.kube.wait import all_have_condition, wait_for
from harness.suite.model import App, ChartRef, Check, Suite, load_suite
from tests.checks.conftest import LABELS, READY, suite_error, suite_with
from tests.conftest import tiny_chart

WEB = "app.kubernetes.io/name=web"


def disrupt(action: str, timeout: float | None = None, **options: Any) -> Check:
    return Check(kind="disrupt", spec={action: options}, timeout=timeout)


def pods_of(ctx: AppContext, selector: str = WEB) -> dict[str, Any]:
    listed = client.CoreV1Api(ctx.api).list_namespaced_pod(ctx.namespace, label_selector=selector)
    return {pod.metadata.uid: pod for pod in listed.items}


def test_deleted_pods_come_back_and_the_recovery_time_is_recorded(install_app: Any) -> None:
    ctx = install_app("web", values={"replicaCount": 2})
    run_check(ctx, READY)
    before = set(pods_of(ctx))
    check = disrupt("deletePods", selector=WEB, all=True)
    run_check(ctx, check)
    after = pods_of(ctx)
    assert len(after) == 2 and not before & set(after)  # both replaced
    assert all(p.metadata.labels.items() >= LABELS.items() for p in after.values())
    recovery = ctx.recoveries["disrupt[deletePods]"]
    assert recovery["recovered"] is True and 0 < recovery["seconds"] < 60
    assert recovery["disruption"].startswith("2 pods deleted (Pod/web-web-")


def test_one_pod_deleted_by_default(install_app: Any) -> None:
    ctx = install_app("web", values={"replicaCount": 2})
    run_check(ctx, READY)
    before = set(pods_of(ctx))
    run_check(ctx, disrupt("deletePods"))
    assert len(before & set(pods_of(ctx))) == 1  # one kept, one new


def test_a_rollout_restart_recovers(install_app: Any) -> None:
    ctx = install_app("web")
    run_check(ctx, READY)
    run_check(ctx, disrupt("restart", resource="deployment/web-web"))
    deployment = client.AppsV1Api(ctx.api).read_namespaced_deployment("web-web", ctx.namespace)
    assert "kubectl.kubernetes.io/restartedAt" in deployment.spec.template.metadata.annotations
    assert deployment.status.updated_replicas == 1
    recovery = ctx.recoveries["disrupt[restart]"]
    assert recovery["recovered"] and recovery["disruption"] == "restart of Deployment/web-web"


def test_a_selector_matching_nothing_fails(install_app: Any) -> None:
    ctx = install_app("web")
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, disrupt("deletePods", selector="app=nothing-here"))
    assert str(info.value) == (
        f"expected pods matching 'app=nothing-here' in namespace {ctx.namespace} to disrupt; "
        "observed none: the selector matches no pod"
    )
    assert ctx.recoveries == {}


def test_restarting_what_the_release_lacks_fails(install_app: Any) -> None:
    ctx = install_app("web")
    with pytest.raises(CheckFailed, match=r"not there \(the release has: Deployment/web-web\)"):
        run_check(ctx, disrupt("restart", resource="statefulset/db"))


QUOTA = """\
apiVersion: v1
kind: ResourceQuota
metadata: {name: one-pod}
spec: {hard: {pods: "1"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tight}
spec:
  selector: {matchLabels: {app: tight}}
  template:
    metadata: {labels: {app: tight}}
    spec:
      containers: [{name: c, image: helm-harness/fixture-app:1}]
"""


def test_an_app_whose_new_pods_cannot_be_created_does_not_recover(
    install_app: Any, tmp_path: Path
) -> None:
    """A quota of one pod: the restart's surge pod is refused, the rollout never ends."""
    ctx = install_app(tiny_chart(tmp_path, "tight", QUOTA))
    run_check(ctx, READY)
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, disrupt("restart", timeout=3))
    text = str(info.value)
    assert text.startswith(
        "expected the app to recover from the restart of Deployment/tight within 3s; "
        "observed not recovered: Deployment/tight: "
    ), text
    assert "latest warning: FailedCreate on ReplicaSet/tight-" in text
    assert "exceeded quota: one-pod" in text
    assert ctx.recoveries["disrupt[restart]"] == {
        "disruption": "restart of Deployment/tight",
        "budget_s": 3.0,
        "recovered": False,
        "seconds": None,
    }


def test_a_deleted_bare_pod_never_comes_back(install_app: Any, tmp_path: Path) -> None:
    chart = tiny_chart(
        tmp_path,
        "bare",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: lonely, labels: {app: lonely}}\n"
        "spec:\n  containers: [{name: c, image: x}]\n",
    )
    ctx = install_app(chart)
    run_check(ctx, READY)
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, disrupt("deletePods", timeout=2, selector="app=lonely"))
    text = str(info.value)
    assert "expected the app to recover from the 1 pod deleted (Pod/lonely) within 2s" in text
    assert "0 of 1 pods ready again" in text
    assert "no controller recreates Pod/lonely: a bare pod is gone for good" in text


def test_drain_on_a_single_node_cluster_is_skipped_and_leaves_the_node(
    install_app: Any, k8s: client.ApiClient
) -> None:
    ctx = install_app("web")
    run_check(ctx, READY)
    with pytest.raises(pytest.skip.Exception, match="drain needs another schedulable node"):
        run_check(ctx, disrupt("drain"))
    assert not any(node.spec.unschedulable for node in client.CoreV1Api(k8s).list_node().items)


DRAINED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: mover}
spec:
  replicas: 2
  selector: {matchLabels: {app: mover}}
  template:
    metadata: {labels: {app: mover}}
    spec:
      containers: [{name: c, image: x}]
"""


@pytest.fixture(scope="module")
def two_nodes() -> Any:
    """A kwok cluster of its own with two simulated nodes (the session's has one), shared by
    this module's drain tests (each in a namespace of its own)."""
    provider = KwokProvider()
    name = f"hh-drain-{uuid.uuid4().hex[:6]}"
    try:
        info = provider.create(ClusterSpec(name=name, nodes=2))
        with api_client(info.kubeconfig) as api:
            wait_for(
                client.CoreV1Api(api).list_node,
                all_have_condition("Ready", at_least=2),
                expected="2 nodes Ready",
                timeout=60,
            )
            yield api
    finally:
        provider.delete(name)


def mover(
    api: client.ApiClient,
    helm: Any,
    budget: dict[str, Any] | None = None,
    *,
    one_node: bool = False,
) -> AppContext:
    """The two-pod ``mover`` Deployment (and a PodDisruptionBudget of ``budget``'s spec
    over its pods) in a new namespace of the two-node cluster, ready; with ``one_node``
    both pods on the first node (the second is cordoned while they are scheduled)."""
    import yaml

    namespace = f"drain-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    deployment = yaml.safe_load(DRAINED)
    spare = sorted(node.metadata.name for node in core.list_node().items)[1]
    if one_node:
        core.patch_node(spare, {"spec": {"unschedulable": True}})
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    if budget is not None:
        pdb = {
            "metadata": {"name": "mover"},
            "spec": {"selector": {"matchLabels": {"app": "mover"}}, **budget},
        }
        client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(namespace, pdb)
    app = App(name="mover", source=ChartRef(chart="-"), release="mover", namespace=namespace)
    ctx = AppContext(
        suite=Suite(path=Path("t.suite.yaml"), name="t", apps=(app,)),
        app=app,
        namespace=namespace,
        api=api,
        helm=helm,
        manifest=[deployment],
        deadline=0,
    )
    try:
        run_check(ctx, Check(kind="ready", spec={}, timeout=60))
    finally:
        if one_node:
            core.patch_node(spare, {"spec": {"unschedulable": False}})
    if budget is not None:  # the disruption controller has counted the pods
        wait_for(
            client.PolicyV1Api(api).list_namespaced_pod_disruption_budget,
            lambda pdbs: [(p.get("status") or {}).get("currentHealthy") for p in pdbs] == [2],
            expected="the budget counting 2 healthy pods",
            timeout=30,
            namespace=namespace,
        )
    return ctx


def first_node(ctx: AppContext) -> str:
    pods = client.CoreV1Api(ctx.api).list_namespaced_pod(ctx.namespace).items
    return str(sorted(pods, key=lambda pod: pod.metadata.name)[0].spec.node_name)


def test_drain_moves_the_pods_to_the_other_node_and_uncordons(
    two_nodes: client.ApiClient, helm: Any
) -> None:
    ctx = mover(two_nodes, helm)
    node = first_node(ctx)
    run_check(ctx, disrupt("drain", selector="app=mover"))
    core = client.CoreV1Api(two_nodes)
    now = core.list_namespaced_pod(ctx.namespace, label_selector="app=mover").items
    assert len(now) == 2 and all(pod.spec.node_name != node for pod in now)
    assert not core.read_node(node).spec.unschedulable  # the cordon is undone
    recovery = ctx.recoveries["disrupt[drain]"]
    assert recovery["recovered"] and recovery["disruption"].startswith(f"drain of node {node}: ")


def test_a_budget_allowing_one_pod_at_a_time_lets_the_drain_finish_within_the_deadline(
    two_nodes: client.ApiClient, helm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """minAvailable 1 of 2 pods on one node: the second eviction is refused (429) until
    the first pod's replacement is ready on the other node, and is tried again until then."""
    ctx = mover(two_nodes, helm, {"minAvailable": 1}, one_node=True)
    node = first_node(ctx)
    core = client.CoreV1Api(two_nodes)
    assert {p.spec.node_name for p in core.list_namespaced_pod(ctx.namespace).items} == {node}
    answers: list[int] = []  # the API server's answer to each eviction request
    evict = client.CoreV1Api.create_namespaced_pod_eviction

    def counted(self: client.CoreV1Api, *args: Any, **kwargs: Any) -> Any:
        try:
            result = evict(self, *args, **kwargs)
        except ApiException as exc:
            answers.append(int(exc.status or 0))
            raise
        answers.append(201)
        return result

    monkeypatch.setattr(client.CoreV1Api, "create_namespaced_pod_eviction", counted)
    run_check(ctx, disrupt("drain", timeout=40, selector="app=mover"))
    # The first evicted at once; the second refused by the budget, then evicted.
    assert answers[0] == 201 and answers[-1] == 201 and set(answers[1:-1]) == {429}, answers
    now = core.list_namespaced_pod(ctx.namespace, label_selector="app=mover").items
    assert len(now) == 2 and all(pod.spec.node_name != node for pod in now)
    recovery = ctx.recoveries["disrupt[drain]"]
    assert recovery["recovered"] is True and recovery["disruption"].startswith(
        f"drain of node {node}: 2 pods evicted (Pod/mover-"
    )
    assert 0 < recovery["seconds"] < 40


def test_a_budget_that_allows_no_disruption_fails_the_drain_within_the_checks_own_timeout(
    two_nodes: client.ApiClient, helm: Any
) -> None:
    """minAvailable 2 of 2: every eviction is refused. The check fails when its own 4 s
    are up (not after the API client's 30 s of retries), naming the budget and its status,
    and the cordon is undone."""
    ctx = mover(two_nodes, helm, {"minAvailable": 2})
    node = first_node(ctx)
    started = time.monotonic()
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, disrupt("drain", timeout=4, selector="app=mover"))
    took = time.monotonic() - started
    assert 4 <= took < 10, took
    text = str(info.value)
    assert text.startswith(
        f"expected the app to recover from the drain of node {node} within 4s; observed could "
        "not drain: the eviction of Pod/mover-"
    ), text
    assert (
        " was refused until the deadline (429 TooManyRequests: Cannot evict pod as it would "
        "violate the pod's disruption budget.); PodDisruptionBudget/mover (minAvailable 2): "
        "disruptionsAllowed 0, currentHealthy 2, desiredHealthy 2, expectedPods 2"
    ) in text, text
    assert "The disruption budget mover needs 2 healthy pods and has 2 currently" in text
    assert f"before that: drain of node {node}: no pod evicted" in text
    core = client.CoreV1Api(two_nodes)
    assert len(core.list_namespaced_pod(ctx.namespace).items) == 2  # none evicted
    assert not core.read_node(node).spec.unschedulable
    assert ctx.recoveries["disrupt[drain]"] == {
        "disruption": f"drain of node {node}: no pod evicted",
        "budget_s": 4.0,
        "recovered": False,
        "seconds": None,
    }


# -- the suite file ----------------------------------------------------------------------------


def test_disrupt_checks_load_with_an_id_per_action(tmp_path: Path) -> None:
    suite = load_suite(
        suite_with(
            tmp_path,
            """\
            - disrupt: {deletePods: {selector: app=web, all: true}}
              timeout: 30s
            - disrupt: {restart: {resource: deployment/web-web}}
            - disrupt: {drain: null}
            """,
        )
    )
    checks = suite.apps[0].checks or ()
    assert [c.id for c in checks] == ["disrupt[deletePods]", "disrupt[restart]", "disrupt[drain]"]
    assert checks[0].timeout == 30 and checks[0].spec["deletePods"]["all"] is True


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (
            "- disrupt: {deletePods: {}, restart: {}}\n",
            ":7: apps[0].checks[0].disrupt: a disrupt check does one of deletePods, restart or "
            "drain: give exactly one",
        ),
        (
            "- disrupt: {deletePods: {count: 2}}\n",
            ":7: apps[0].checks[0].disrupt.deletePods.count: unknown key 'count'; allowed "
            "here: selector, all",
        ),
        (
            "- disrupt: {restart: {resource: service/web}}\n",
            ":7: apps[0].checks[0].disrupt.restart.resource: write the resource as KIND/NAME "
            "with KIND deployment, statefulset or daemonset, e.g. deployment/web; got the text "
            "'service/web'",
        ),
    ],
)
def test_a_malformed_disrupt_check_is_one_line_with_file_line_and_key(
    tmp_path: Path, checks: str, message: str
) -> None:
    assert suite_error(tmp_path, checks) == message


def test_the_report_shows_each_recovery_in_the_app_section() -> None:
    from harness.report.html import render

    recoveries = {
        "disrupt[restart]": {
            "disruption": "restart of Deployment/web",
            "budget_s": 60.0,
            "recovered": True,
            "seconds": 2.5,
        },
        "disrupt[deletePods]": {
            "disruption": "1 pod deleted (Pod/web-1)",
            "budget_s": 3.0,
            "recovered": False,
            "seconds": None,
        },
    }
    page = render({"apps": [{"suite": "s", "app": "web", "recoveries": recoveries}]})
    assert (
        "recovery: disrupt[restart] 2.50 s (restart of Deployment/web) · disrupt[deletePods] "
        "not recovered within 3.00 s (1 pod deleted (Pod/web-1))"
    ) in page


def test_a_suite_run_records_recoveries_and_a_failure_links_the_runbook(
    pytester: pytest.Pytester, harness_cluster: Any
) -> None:
    web = Path(__file__).resolve().parents[2] / "fixtures" / "charts" / "web"
    (pytester.path / "d.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: web\n    chart: {web}\n    runbook: https://runbooks.example.org/web\n"
        "    checks:\n      - ready: {}\n      - disrupt: {deletePods: {}}\n"
        "      - disrupt: {deletePods: {selector: app=none}}\n        name: nothing\n"
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}",
        "-p",
        "no:cacheprovider",
        "--report-dir=out",
        "-v",
    )
    result.stdout.fnmatch_lines(
        [
            "d.suite.yaml::web::disrupt[[]deletePods[]] PASSED*",
            "d.suite.yaml::web::nothing FAILED*",
            "web::nothing: expected pods matching 'app=none' in namespace h-*-d-web to disrupt;"
            " observed none: the selector matches no pod",
            "runbook: https://runbooks.example.org/web",
        ]
    )
    results = json.loads((pytester.path / "out" / "results.json").read_text())
    recovery = results["apps"][0]["recoveries"]["disrupt[deletePods]"]
    assert recovery["recovered"] is True and recovery["seconds"] > 0
    assert "recovery: disrupt[deletePods] " in (pytester.path / "out" / "report.html").read_text()
    metrics = json.loads((pytester.path / "out" / "metrics" / "d" / "web.json").read_text())
    assert metrics["recoveries"]["disrupt[deletePods]"]["seconds"] == recovery["seconds"]
