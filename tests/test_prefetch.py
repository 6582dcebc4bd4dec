"""Apps are installed ahead of their items (--max-parallel), so their pods start while
earlier apps are checked; items keep their order and ids; --max-parallel 1 installs each
app only when its items run."""

from __future__ import annotations

import re

import pytest
from kubernetes import client

from harness.clusters.base import ClusterInfo
from harness.deploy.deployer import LABEL_RUN
from tests.conftest import FIXTURE_CHARTS, tiny_chart

# A python check of the first app that passes only if the second app's release is
# already in the cluster (its Deployment exists) while the first app is being checked.
AHEAD = """
import time
from kubernetes import client


def second_is_installed(app):
    apps = client.AppsV1Api(app.api)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for ns in client.CoreV1Api(app.api).list_namespace().items:
            if ns.metadata.name.endswith("-pair-second") and not ns.metadata.deletion_timestamp:
                if apps.list_namespaced_deployment(ns.metadata.name).items:
                    return True
        time.sleep(0.2)
    return False
"""


def suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ahead_checks=AHEAD)
    web = FIXTURE_CHARTS / "web"
    (pytester.path / "pair.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: first\n    chart: {web}\n    checks:\n"
        "      - python: {call: 'ahead_checks:second_is_installed'}\n"
        f"  - name: second\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n"
        f"  - name: third\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n"
    )


def test_the_next_apps_are_installed_while_the_first_is_checked(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    suite(pytester)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v"
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(  # the items' order and ids are those of a serial run
        [
            "*pair.suite.yaml::first::install PASSED*",
            "*pair.suite.yaml::first::python*second_is_installed* PASSED*",
            "*pair.suite.yaml::second::install PASSED*",
            "*pair.suite.yaml::second::ready PASSED*",
            "*pair.suite.yaml::third::install PASSED*",
            "*pair.suite.yaml::third::ready PASSED*",
        ]
    )


def test_max_parallel_1_installs_each_app_when_its_items_run(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    suite(pytester)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v",
        "--max-parallel", "1",
    )  # fmt: skip
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*first::python*second_is_installed* FAILED*"])


def test_an_app_that_fails_to_install_ahead_fails_its_own_install_item(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    broken = tiny_chart(pytester.path, "refused", '{{ fail "this chart refuses to render" }}\n')
    web = FIXTURE_CHARTS / "web"
    (pytester.path / "mix.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: good\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n"
        f"  - name: bad\n    chart: {broken}\n    checks: [{{ready: {{}}}}]\n"
        f"  - name: after\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n"
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v"
    )
    result.stdout.fnmatch_lines(
        [
            "*mix.suite.yaml::good::ready PASSED*",
            "*mix.suite.yaml::bad::install FAILED*",
            "*mix.suite.yaml::after::ready PASSED*",
        ]
    )
    assert "this chart refuses to render" in result.stdout.str()


def test_on_a_cluster_that_stays_the_run_ends_when_its_namespaces_are_gone(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    """Removing an app never waits for its namespace (the next app does not wait), but
    the run itself ends only when every namespace it made is gone."""
    suite(pytester)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v"
    )
    result.assert_outcomes(passed=6)
    match = re.search(r"helm-harness: run (\w+),", result.stdout.str())
    assert match
    left = client.CoreV1Api(k8s).list_namespace(label_selector=f"{LABEL_RUN}={match[1]}").items
    assert [ns.metadata.name for ns in left] == []
    assert "still being deleted" not in result.stdout.str()
