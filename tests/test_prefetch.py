"""Apps are installed ahead of their items (--max-parallel), so their pods start while
earlier apps are checked; items keep their order and ids; --max-parallel 1 installs each
app only when its items run."""

from __future__ import annotations

import re
from pathlib import Path

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


def write_suite(path: Path, apps: str) -> None:
    """A suite file at ``path`` whose ``apps:`` list is ``apps`` (YAML lines)."""
    path.write_text("apiVersion: helm-harness/v1\nkind: Suite\napps:\n" + apps)


def suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ahead_checks=AHEAD)
    web = FIXTURE_CHARTS / "web"
    write_suite(
        pytester.path / "pair.suite.yaml",
        f"  - name: first\n    chart: {web}\n    checks:\n"
        "      - python: {call: 'ahead_checks:second_is_installed'}\n"
        f"  - name: second\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n"
        f"  - name: third\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n",
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
    write_suite(
        pytester.path / "mix.suite.yaml",
        f"  - name: good\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n"
        f"  - name: bad\n    chart: {broken}\n    checks: [{{ready: {{}}}}]\n"
        f"  - name: after\n    chart: {web}\n    checks: [{{ready: {{}}}}]\n",
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


# A python check of the first app that passes only if the second app's helm test pod has
# run to completion while the first app is being checked: the second app's checks ran
# ahead of their items.
TESTED = """
import time
from kubernetes import client


def second_was_tested(app):
    core = client.CoreV1Api(app.api)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for ns in core.list_namespace().items:
            if ns.metadata.name.endswith("-ahead-second"):
                for pod in core.list_namespaced_pod(ns.metadata.name).items:
                    hook = (pod.metadata.annotations or {}).get("helm.sh/hook")
                    if hook == "test" and pod.status.phase == "Succeeded":
                        return True
        time.sleep(0.2)
    return False
"""


def test_the_next_apps_checks_run_ahead_and_their_items_report_them(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    pytester.makepyfile(tested_checks=TESTED)
    web = FIXTURE_CHARTS / "web"
    write_suite(
        pytester.path / "ahead.suite.yaml",
        f"  - name: first\n    chart: {web}\n    checks:\n"
        "      - python: {call: 'tested_checks:second_was_tested'}\n"
        f"  - name: second\n    chart: {web}\n"  # the default checks: ready, helmTest
        f"  - name: third\n    chart: {web}\n    checks:\n"
        "      - wait: {resource: configmap/never-made, for: create, timeout: 2s}\n"
        "      - ready: {}\n",
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v",
        "--junitxml=junit.xml",
    )  # fmt: skip
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(  # the items' order, ids and outcomes are a serial run's
        [
            "*ahead.suite.yaml::first::install PASSED*",
            "*ahead.suite.yaml::first::python*second_was_tested* PASSED*",
            "*ahead.suite.yaml::second::install PASSED*",
            "*ahead.suite.yaml::second::ready PASSED*",
            "*ahead.suite.yaml::second::helmTest PASSED*",
            "*ahead.suite.yaml::third::install PASSED*",
            "*ahead.suite.yaml::third::wait*configmap/never-made* FAILED*",
            "*ahead.suite.yaml::third::ready PASSED*",
        ]
    )
    # the failure ahead reads as it would have in its item, with its evidence bundle
    result.stdout.fnmatch_lines(
        [
            "*third::wait*: expected configmap/never-made to meet create within 2s*",
            "evidence: *third*",
        ]
    )
    junit = (pytester.path / "junit.xml").read_text()
    ahead = re.findall(r'name="(\w+)" value="[^"]*"', junit)
    assert "ran_ahead" in ahead  # second's checks: their own time, beside the item's wait


def test_a_run_that_stops_early_stops_the_waits_ahead(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """With -x the run ends after the first failure: the next app's check, waiting ahead
    for something that takes minutes, stops within about a second, not at its timeout."""
    pytester.makepyfile(failing_checks="def no(app):\n    return False\n")
    web = FIXTURE_CHARTS / "web"
    write_suite(
        pytester.path / "stop.suite.yaml",
        f"  - name: first\n    chart: {web}\n    checks:\n"
        "      - ready: {}\n"
        "      - python: {call: 'failing_checks:no'}\n"
        f"  - name: second\n    chart: {web}\n    timeout: 10m\n    checks:\n"
        "      - wait: {resource: configmap/never-made, for: create, timeout: 5m}\n",
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v", "-x",
        timeout=120,
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=1)
    assert result.duration < 90, result.duration  # the wait ahead had 5 minutes left
    result.stdout.fnmatch_lines(["*stop.suite.yaml::first::python*no* FAILED*"])
    assert "second::wait" not in result.stdout.str()


def test_an_xdist_worker_installs_its_next_apps_while_the_first_is_checked(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """Under -n the scheduler keeps the worker supplied with its share of the apps, and the
    worker installs the next ones ahead: the first app's check sees the second installed
    (as it would not if the worker ran its apps one after another)."""
    suite(pytester)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v",
        "-n", "1", "--junitxml=junit.xml",
    )  # fmt: skip
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*PASSED*pair.suite.yaml::first::python*second_is_installed*"])
    junit = (pytester.path / "junit.xml").read_text()
    assert "ran_ahead" in junit  # the later apps' ready checks ran ahead, in the worker


# A python check of the first app that passes only if, while the first one is checked,
# the third app is installed ahead but the second, which renders the same ClusterRole as
# the first, is not.
APART = """
import time
from kubernetes import client


def only_third_ahead(app):
    core = client.CoreV1Api(app.api)
    third = False
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        for ns in core.list_namespace().items:
            if ns.metadata.name.endswith("-apart-second"):
                return False
            third = third or ns.metadata.name.endswith("-apart-third")
        time.sleep(0.2)
    return third
"""


def test_an_xdist_worker_never_installs_ahead_an_app_that_clashes(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """The controller's clash plan reaches the workers: of two apps rendering one
    ClusterRole, the second is not installed until the first is done, while an app that
    clashes with none is installed ahead."""
    pytester.makepyfile(apart_checks=APART)
    shared = tiny_chart(
        pytester.path,
        "shared",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: hh-test-apart-shared}\nrules: []\n",
    )
    write_suite(
        pytester.path / "apart.suite.yaml",
        f"  - name: first\n    chart: {shared}\n    checks:\n"
        "      - python: {call: 'apart_checks:only_third_ahead'}\n"
        f"  - name: second\n    chart: {shared}\n    checks: [{{ready: {{}}}}]\n"
        f"  - name: third\n    chart: {FIXTURE_CHARTS / 'web'}\n    checks: [{{ready: {{}}}}]\n",
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v",
        "-n", "1",
    )  # fmt: skip
    result.assert_outcomes(passed=6)
    assert "they run one after another" in result.stdout.str()
