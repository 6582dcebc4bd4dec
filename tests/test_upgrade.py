"""Upgrade runs against the real kwok cluster: install the released version, check,
upgrade, check, roll back, check; Helm's refusals and CRD drift reported."""

from __future__ import annotations

import json
import textwrap
import time
from xml.etree import ElementTree

import pytest

from harness.clusters.base import ClusterInfo
from tests.conftest import FIXTURE_CHARTS

VERSIONS = FIXTURE_CHARTS / "versions"


def upgrade_suite(pytester: pytest.Pytester, name: str, old: str, new: str, checks: str) -> None:
    (pytester.path / f"{name}.suite.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: helm-harness/v1
            kind: Suite
            defaults: {{upgrade: true, timeout: 60s}}
            apps:
              - name: {name}
                chart: {VERSIONS / new}
                upgrade:
                  from: {{chart: {VERSIONS / old}}}
                checks: {checks}
            """
        )
    )


def run(pytester: pytest.Pytester, cluster: ClusterInfo, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--kubeconfig={cluster.kubeconfig}", "-p", "no:cacheprovider", "-v", "-rs", *args
    )


def test_a_clean_upgrade_passes_every_phase(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    checks = (
        "[{ready: {}}, {wait: {resource: configmap/shop-settings, for: create},"
        " name: settings, timeout: 2s}]"
    )
    upgrade_suite(pytester, "shop", "shop-0.1.0", "shop-0.2.0", checks)
    result = run(pytester, harness_cluster, "--report-dir", "out")
    result.stdout.fnmatch_lines(
        [
            "*shop::install?from? PASSED*",
            "*shop::ready@from PASSED*",
            "*shop::settings@from FAILED*",  # 0.1.0 has no settings ConfigMap: a real difference
            "*shop::upgrade PASSED*",
            "*shop::crd-drift PASSED*",
            "*shop::ready@to PASSED*",
            "*shop::settings@to PASSED*",
            "*shop::rollback PASSED*",
            "*shop::ready@rollback PASSED*",
            "*shop::settings@rollback FAILED*",  # rolled back to 0.1.0: gone again
        ]
    )
    # Every item reaches every report under its own id (ids were once cut at their last
    # "@", so the three phases of a check collapsed into one).
    expected = [
        "install[from]",
        "ready@from",
        "settings@from",
        "upgrade",
        "crd-drift",
        "ready@to",
        "settings@to",
        "rollback",
        "ready@rollback",
        "settings@rollback",
    ]
    record = json.loads((pytester.path / "out" / "results.json").read_text())
    ids = [item["id"] for app in record["apps"] for item in app["items"]]
    assert sorted(i.rsplit("::", 1)[1] for i in ids) == sorted(expected)
    assert record["outcomes"]["total"] == len(expected)
    junit = ElementTree.parse(pytester.path / "out" / "junit.xml")
    names = [case.get("name") for case in junit.iter("testcase")]
    assert len(names) == len(set(names)) == len(expected), names
    html = (pytester.path / "out" / "report.html").read_text()
    assert all(name in html for name in ("ready@from", "ready@to", "ready@rollback"))


def test_an_upgrade_helm_refuses_fails_with_helms_reason(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    upgrade_suite(pytester, "relabel", "relabel-0.1.0", "relabel-0.2.0", "[{ready: {}}]")
    result = run(pytester, harness_cluster)
    result.assert_outcomes(passed=4, failed=1, skipped=2)
    out = result.stdout.str()
    assert "relabel::upgrade" in out and "field is immutable" in out
    assert "the upgrade of relabel failed" in out  # checks @to and crd-drift skip with the reason
    result.stdout.fnmatch_lines(["*relabel::rollback PASSED*", "*relabel::ready@rollback PASSED*"])


def test_crd_drift_is_reported(pytester: pytest.Pytester, harness_cluster: ClusterInfo) -> None:
    upgrade_suite(pytester, "gizmo", "gizmo-1.0.0", "gizmo-1.1.0", "[{ready: {}}]")
    result = run(pytester, harness_cluster, "--report-dir", "out")
    result.stdout.fnmatch_lines(["*gizmo::upgrade PASSED*", "*gizmo::crd-drift FAILED*"])
    out = result.stdout.str()
    assert "Helm never upgrades them" in out
    assert (
        "CRD gizmos.fixtures.helm-harness.io v1: fields missing in the cluster: spec.color" in out
    )


def test_upgrade_option_needs_upgrade_from(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    (pytester.path / "plain.suite.yaml").write_text(
        f"apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - {{name: shop, chart: {VERSIONS / 'shop-0.2.0'}, checks: [{{ready: {{}}}}]}}\n"
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "--upgrade", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(
        ["plain.suite.yaml::shop::install", "plain.suite.yaml::shop::ready"]
    )


def test_junit_and_record_carry_the_upgrade(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    upgrade_suite(pytester, "shop", "shop-0.1.0", "shop-0.2.0", "[{ready: {}}]")
    pytester.makeconftest(
        """
        import json
        def pytest_runtest_logreport(report):
            for key, value in report.user_properties:
                if key == "helm-harness.app":
                    open("record.json", "w").write(value)
        """
    )
    result = run(pytester, harness_cluster)
    result.assert_outcomes(passed=7)
    record = json.loads((pytester.path / "record.json").read_text())
    upgrade = record["upgrade"]
    assert upgrade["phase_reached"] == "rollback" and upgrade["errors"] == {}
    assert upgrade["crd_drift"] == []
    # local charts: the versions are those Helm installed (their Chart.yaml's)
    assert upgrade["from"]["version"] == "0.1.0" and upgrade["to"]["version"] == "0.2.0"
    assert record["chart_version"] == "0.1.0"
    assert {"install", "upgrade", "rollback"} <= set(record["timings"])


def test_ready_after_an_upgrade_fails_at_once_on_a_crd_helm_did_not_install(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """2.0.0 adds a CRD to crds/, which Helm does not install on upgrade: crd-drift says
    so, and ready@to fails at once instead of waiting its timeout for the CRD."""
    upgrade_suite(pytester, "gizmo", "gizmo-1.0.0", "gizmo-2.0.0", "[{ready: {}, timeout: 120s}]")
    started = time.monotonic()
    result = run(pytester, harness_cluster, "--report-dir", "out")
    elapsed = time.monotonic() - started
    result.stdout.fnmatch_lines(["*gizmo::crd-drift FAILED*", "*gizmo::ready@to FAILED*"])
    out = result.stdout.str()
    assert "CRD doohickeys.fixtures.helm-harness.io: not in the cluster" in out
    assert "CustomResourceDefinition doohickeys.fixtures.helm-harness.io Established" in out
    assert "Helm installs a chart's crds/ on first install only" in out
    assert elapsed < 60, elapsed  # the ready timeout is 120s
