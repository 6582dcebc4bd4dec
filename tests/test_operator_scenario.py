"""The widget operator fixture on the session's kwok cluster, run on the host (kwok runs no
container): ``fixture-app operator`` reconciles the Widgets of one namespace, the ones the
chart's CRD admits, into phase Ready or Rejected (reason TooLarge) with an event each, and
suites wait for that status."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.clusters.base import ClusterInfo
from tests.conftest import FIXTURE_CHARTS, REPO
from tests.operator import go_binary, host_operator

GROUP, VERSION, PLURAL = "fixtures.helm-harness.io", "v1", "widgets"


@pytest.fixture(scope="module", autouse=True)
def _needs_go() -> None:
    go_binary()


def widget(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
    }


def status_when(
    objects: client.CustomObjectsApi, namespace: str, name: str, phase: str, timeout: float = 20
) -> dict[str, Any]:
    """The Widget's status once its phase is ``phase`` (AssertionError with the last status
    after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        obj: Any = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        status = obj.get("status") or {}
        if status.get("phase") == phase:
            return status
        time.sleep(0.3)
    raise AssertionError(f"widget {name} never reached phase {phase}; last status {status}")


def test_host_operator_reconciles_widgets_and_rejects_large_ones(
    install_app: Any, harness_cluster: ClusterInfo, k8s: client.ApiClient, tmp_path: Path
) -> None:
    ctx = install_app("widget-operator")  # the CRD, on kwok a simulated operator pod
    ns = ctx.namespace
    objects = client.CustomObjectsApi(k8s)
    objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, widget("small", 3))
    objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, widget("big", 50))
    with host_operator(
        harness_cluster.kubeconfig, ns, tmp_path, context=harness_cluster.context
    ) as operator:
        small = status_when(objects, ns, "small", "Ready")
        assert small["observedSize"] == 3
        assert small["observedGeneration"] == 1
        [ready] = small["conditions"]
        assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Reconciled")
        big = status_when(objects, ns, "big", "Rejected")
        [rejected] = big["conditions"]
        assert (rejected["status"], rejected["reason"]) == ("False", "TooLarge")
        assert "size 50 is above the operator's limit of 10" in rejected["message"]

        # A spec change is a new generation: the operator follows it.
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "big", {"spec": {"size": 7}}
        )
        fixed = status_when(objects, ns, "big", "Ready")
        assert (fixed["observedSize"], fixed["observedGeneration"]) == (7, 2)

        events = client.CoreV1Api(k8s).list_namespaced_event(
            ns, field_selector="involvedObject.kind=Widget"
        )
        seen = {(e.involved_object.name, e.type, e.reason) for e in events.items}
        assert {("small", "Normal", "Reconciled"), ("big", "Warning", "TooLarge")} <= seen
        logs = operator.logs()
    assert f"operator watching Widgets in namespace {ns}" in logs
    assert (
        f"reconciled widget {ns}/big: phase Rejected (size 50, generation 1, reason TooLarge)"
        in logs
    )
    assert f"reconciled widget {ns}/big: phase Ready (size 7, generation 2" in logs
    assert operator.process.returncode is not None  # stopped with the block


def test_host_operator_leaves_other_namespaces_alone(
    install_app: Any, harness_cluster: ClusterInfo, k8s: client.ApiClient, tmp_path: Path
) -> None:
    watched = install_app("widget-operator", name="watched").namespace
    other = install_app("widget-operator", name="other").namespace
    objects = client.CustomObjectsApi(k8s)
    objects.create_namespaced_custom_object(GROUP, VERSION, other, PLURAL, widget("w", 2))
    objects.create_namespaced_custom_object(GROUP, VERSION, watched, PLURAL, widget("w", 2))
    with host_operator(
        harness_cluster.kubeconfig, watched, tmp_path, context=harness_cluster.context
    ):
        status_when(objects, watched, "w", "Ready")
        time.sleep(1.5)  # more than one pass of the operator
        obj: Any = objects.get_namespaced_custom_object(GROUP, VERSION, other, PLURAL, "w")
    assert "status" not in obj or not obj["status"]


SCENARIO = REPO / "suites" / "operator" / "operator.suite.yaml"
CRD = FIXTURE_CHARTS / "widget-operator" / "crds" / "widgets.fixtures.helm-harness.io.yaml"


def ensure_crd(k8s: client.ApiClient) -> None:
    """The Widget CRD, so the host operator's first list succeeds before the install."""
    try:
        client.ApiextensionsV1Api(k8s).create_custom_resource_definition(
            yaml.safe_load(CRD.read_text())
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


def scenario_in(pytester: pytest.Pytester, namespace: str, assert_timeout: str | None) -> Path:
    """suites/operator/operator.suite.yaml with the chart's absolute path and the app in
    ``namespace`` (the one the host operator watches; the harness creates and deletes it),
    its asserts' timeouts ``assert_timeout`` if given."""
    suite = yaml.safe_load(SCENARIO.read_text())
    [app] = suite["apps"]
    app["chart"] = str(FIXTURE_CHARTS / "widget-operator")
    app["namespace"] = namespace
    for check in app["checks"]:
        if "assert" in check and assert_timeout:
            check["timeout"] = assert_timeout
    path = pytester.path / "operator.suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def run_scenario(
    pytester: pytest.Pytester,
    cluster: ClusterInfo,
    k8s: client.ApiClient,
    max_size: int,
    assert_timeout: str | None = None,
) -> tuple[pytest.RunResult, dict[str, dict[str, Any]], str]:
    """The scenario with the host operator (MAX_SIZE ``max_size``) watching its namespace:
    the run, its items by name from results.json, and the operator's log."""
    ensure_crd(k8s)
    namespace = f"t-op-{uuid.uuid4().hex[:8]}"
    scenario_in(pytester, namespace, assert_timeout)
    folder = pytester.path / "host-operator"
    with host_operator(
        cluster.kubeconfig, namespace, folder, context=cluster.context, max_size=max_size
    ) as operator:
        result = pytester.runpytest_subprocess(
            f"--kubeconfig={cluster.kubeconfig}",
            "-p",
            "no:cacheprovider",
            "-v",
            "--report-dir=out",
        )
    results = json.loads((pytester.path / "out" / "results.json").read_text())
    items = {item["name"]: item for app in results["apps"] for item in app["items"]}
    return result, items, operator.logs()


def test_the_operator_scenario_passes_on_kwok_with_the_host_operator(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    result, items, logs = run_scenario(pytester, harness_cluster, k8s, max_size=10)
    result.stdout.fnmatch_lines(
        [
            "operator.suite.yaml::widgets::install PASSED*",
            "operator.suite.yaml::widgets::ready PASSED*",
            "operator.suite.yaml::widgets::create-small PASSED*",
            "operator.suite.yaml::widgets::assert?Widget/small? PASSED*",
            "operator.suite.yaml::widgets::create-big PASSED*",
            "operator.suite.yaml::widgets::assert?Widget/big? PASSED*",
            "operator.suite.yaml::widgets::error?Widget? PASSED*",
        ],
        consecutive=False,
    )
    assert result.ret == 0, result.stdout.str()
    assert all(item["outcome"] == "passed" for item in items.values()), items
    assert "reconciled widget" in logs and "widgets-small: phase Ready (size 3" in logs, logs
    assert "widgets-big: phase Rejected (size 50, generation 1, reason TooLarge)" in logs, logs


def test_a_failing_assert_shows_expected_and_observed_with_the_first_difference(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    # The operator's limit is 2: the size-3 Widget is Rejected, not Ready (a shorter wait).
    result, items, logs = run_scenario(
        pytester, harness_cluster, k8s, max_size=2, assert_timeout="12s"
    )
    assert result.ret == 1, result.stdout.str()
    failed = {name for name, item in items.items() if item["outcome"] == "failed"}
    assert failed == {"assert[Widget/small]"}, items
    details = items["assert[Widget/small]"]["details"]
    result.stdout.fnmatch_lines(
        [
            "widgets::assert[[]Widget/small[]]: expected Widget/widgets-small in namespace t-op-*"
            " to match within 12s; observed Widget/widgets-small: first difference at"
            ' status.phase: expected "Ready", observed "Rejected"'
        ]
    )
    assert "Widget/widgets-small" in details, details
    assert 'first difference at status.phase: expected "Ready", observed "Rejected"' in details, (
        details
    )
    assert "expected (partial object):" in details and "last observed:" in details, details
    expected, observed = details.split("last observed:", 1)
    assert "phase: Ready" in expected and "phase: Rejected" in observed, details
    assert "reason: TooLarge" in observed and "observedSize: 3" in observed, details
    assert "widgets-small: phase Rejected (size 3, generation 1, reason TooLarge)" in logs
    # catch: the Widget's events (the operator's Warning) and the Widget itself, in the bundle
    bundles = pytester.path / "out" / "bundles"
    caught = sorted(p for p in bundles.rglob("*") if p.is_file() and "catch" in p.parts)
    evidence = "".join(p.read_text() for p in caught)
    assert "TooLarge" in evidence and "size 3 is above the operator's limit of 2" in evidence, [
        str(p.relative_to(bundles)) for p in caught
    ]
