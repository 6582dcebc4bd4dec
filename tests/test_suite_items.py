"""Suite files run as pytest items, in a pytester sandbox, against the session's real kwok
cluster (passed in as an existing cluster so no extra cluster is started)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from kubernetes import client

from harness.clusters.base import ClusterInfo
from tests.conftest import FIXTURE_CHARTS

WEB = FIXTURE_CHARTS / "web"
READY_ONLY = f"""apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: web
    chart: {WEB}
    checks: [{{ready: {{}}}}]
"""


def write_suite(pytester: pytest.Pytester, name: str, body: str) -> Path:
    path = pytester.path / f"{name}.suite.yaml"
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def run(pytester: pytest.Pytester, cluster: ClusterInfo, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--kubeconfig={cluster.kubeconfig}", "-p", "no:cacheprovider", *(args or ("-v",))
    )


def test_items_have_stable_ids_and_pass(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "shop",
        f"""
        apiVersion: helm-harness/v1
        kind: Suite
        apps:
          - name: web
            chart: {WEB}
            values: {{replicaCount: 2}}
            checks:
              - ready: {{}}
              - wait: {{resource: deployment/web-web, for: condition=Available}}
              - helmTest: {{}}
        """,
    )
    result = run(pytester, harness_cluster)
    result.stdout.fnmatch_lines(
        [
            "shop.suite.yaml::web::install PASSED*",
            "shop.suite.yaml::web::ready PASSED*",
            "shop.suite.yaml::web::wait[[]deployment/web-web[]] PASSED*",
            "shop.suite.yaml::web::helmTest PASSED*",
        ]
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*removed web and namespace h-*-web*"])


def test_default_checks_are_ready_and_helm_test(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "d",
        f"apiVersion: helm-harness/v1\nkind: Suite\napps:\n  - {{name: web, chart: {WEB}}}\n",
    )
    result = run(pytester, harness_cluster, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["d.suite.yaml::web::install", "d.suite.yaml::web::ready", "d.suite.yaml::web::helmTest"]
    )


def test_install_failure_fails_install_and_skips_checks(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "bad",
        f"""
        apiVersion: helm-harness/v1
        kind: Suite
        apps:
          - name: web
            chart: {WEB}
            set: {{replicaCount: not-a-number}}
            runbook: https://runbooks.example.org/web
            checks: [{{ready: {{}}}}, {{noRestarts: {{}}}}]
        """,
    )
    result = run(pytester, harness_cluster, "--report-dir", "out", "-rs")
    result.assert_outcomes(failed=1, skipped=2)
    out = result.stdout.str()
    assert "web::install: helm install of" in out
    assert "runbook: https://runbooks.example.org/web" in out
    assert "evidence: " in out and "Traceback" not in out
    result.stdout.fnmatch_lines(["*SKIPPED*web did not install*"])
    bundle = pytester.path / "out" / "bundles" / "bad" / "web"
    assert (bundle / "failure.txt").read_text().startswith("bad.suite.yaml::web::install")


def test_a_failing_check_writes_its_evidence_bundle(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    write_suite(
        pytester,
        "crash",
        f"""
        apiVersion: helm-harness/v1
        kind: Suite
        apps:
          - name: web
            chart: {WEB}
            set: {{simulate.pods: crashloop}}
            checks:
              - ready: {{}}
                timeout: 3s
                runbook: https://runbooks.example.org/web#not-ready
        """,
    )
    result = run(pytester, harness_cluster, "--report-dir", "out", "--keep-on-failure")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "expected Deployment web-web ready within 3s" in out
    assert "CrashLoopBackOff" in out
    assert "runbook: https://runbooks.example.org/web#not-ready" in out
    bundle = pytester.path / "out" / "bundles" / "crash" / "web"
    for name in (
        "failure.txt",
        "events.yaml",
        "resources.yaml",
        "pods.yaml",
        "helm-status.json",
        "helm-history.json",
    ):
        assert (bundle / name).is_file(), name
    assert json.loads((bundle / "helm-status.json").read_text())["info"]["status"] == "deployed"
    assert "kind: Deployment" in (bundle / "resources.yaml").read_text()
    result.stdout.fnmatch_lines(["*kept namespace h-*-web of web for inspection*"])
    kept = [
        ns.metadata.name
        for ns in client.CoreV1Api(k8s)
        .list_namespace(label_selector="helm-harness.io/app=web")
        .items
        if ns.metadata.name.startswith("h-") and ns.status.phase == "Active"
    ]
    assert kept, "--keep-on-failure should keep the failed app's namespace"
    for name in kept:
        client.CoreV1Api(k8s).delete_namespace(name)


def test_depends_on_installs_in_order_and_groups_for_xdist(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "pair",
        f"""
        apiVersion: helm-harness/v1
        kind: Suite
        apps:
          - name: front
            chart: {WEB}
            dependsOn: [back]
            checks: [{{ready: {{}}}}]
          - name: back
            chart: {WEB}
            checks: [{{ready: {{}}}}]
          - name: alone
            chart: {WEB}
            checks: [{{ready: {{}}}}]
        """,
    )
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            for item in items:
                marks = [m.kwargs["name"] for m in item.iter_markers("xdist_group")]
                print("GROUP", item.nodeid, marks)
        """
    )
    result = run(pytester, harness_cluster, "-s", "-v")
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    expected = [
        "GROUP pair.suite.yaml::back::install ['pair::back']",
        "GROUP pair.suite.yaml::back::ready ['pair::back']",
        "GROUP pair.suite.yaml::front::install ['pair::back']",
        "GROUP pair.suite.yaml::front::ready ['pair::back']",
        "GROUP pair.suite.yaml::alone::install ['pair::alone']",
    ]
    positions = [out.index(line) for line in expected]
    assert positions == sorted(positions), "dependencies must come before their dependents"
    assert out.index("removed front") < out.index("removed back"), "dependents are removed first"


def test_selecting_one_check_still_installs_its_app(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "k",
        READY_ONLY,
    )
    result = run(pytester, harness_cluster, "-k", "ready")
    result.assert_outcomes(passed=1, deselected=1)


def test_xdist_keeps_each_dependency_group_on_one_worker(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    for index in range(3):
        write_suite(
            pytester,
            f"s{index}",
            f"""
            apiVersion: helm-harness/v1
            kind: Suite
            apps:
              - {{name: back, chart: {WEB}, checks: [{{ready: {{}}}}, {{noRestarts: {{}}}}]}}
              - name: front
                chart: {WEB}
                dependsOn: [back]
                checks: [{{ready: {{}}}}, {{noRestarts: {{}}}}, {{events: {{}}}}]
              - {{name: alone, chart: {WEB}, checks: [{{ready: {{}}}}, {{noRestarts: {{}}}}]}}
            """,
        )
    pytester.makeconftest(
        """
        import os
        def pytest_runtest_setup(item):
            with open(f"ran-{os.environ['PYTEST_XDIST_WORKER']}.txt", "a") as handle:
                handle.write(item.nodeid + "\\n")
        """
    )
    result = run(pytester, harness_cluster, "-n", "2")
    result.assert_outcomes(passed=3 * 10)
    worker_of: dict[str, set[str]] = {}
    for log in pytester.path.glob("ran-*.txt"):
        for nodeid in log.read_text().split():
            suite_file, app = nodeid.split("::")[:2]
            group = "alone" if app == "alone" else "back+front"
            worker_of.setdefault(f"{suite_file}:{group}", set()).add(log.stem)
    assert len(worker_of) == 6
    assert all(len(workers) == 1 for workers in worker_of.values()), worker_of
    assert len(set().union(*worker_of.values())) == 2  # both workers got work


def test_a_malformed_suite_is_a_usage_error_naming_file_line_key(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "typo",
        f"""
        apiVersion: helm-harness/v1
        kind: Suite
        apps:
          - name: web
            chart: {WEB}
            chekcs: []
        """,
    )
    result = run(pytester, harness_cluster)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "typo.suite.yaml:6" in err and "chekcs" in err
    assert "Traceback" not in err + result.stdout.str()
