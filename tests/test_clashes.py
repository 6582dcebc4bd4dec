"""Apps rendering the same cluster-scoped object run one after another (Helm lets one
release own it): in one process, under xdist on one worker, and across two runs on one
reused cluster, where the second install waits for the first's hold. Only apps joined by
dependsOn cannot, which is a usage error naming both."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.clusters.base import ClusterInfo
from harness.deploy.deployer import LABEL_RUN
from tests.conftest import tiny_chart
from tests.test_interrupts import Run

ROLE = (
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
    "metadata: {name: {{ .Values.roleName }}}\n"
    "rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n"
)


def two_suites_rendering_one_role(
    pytester: pytest.Pytester, role: str = "pod-reader", checks: str = "[{ready: {}}]"
) -> None:
    """a.suite.yaml::first and b.suite.yaml::second, both rendering ClusterRole ``role``."""
    chart = tiny_chart(pytester.path, "reader", ROLE)
    (chart / "values.yaml").write_text(f"roleName: {role}\n")
    for suite, app in (("a", "first"), ("b", "second")):
        (pytester.path / f"{suite}.suite.yaml").write_text(
            "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
            f"  - {{name: {app}, chart: {chart}, checks: {checks}}}\n"
        )


def unique_role(pytester: pytest.Pytester) -> str:
    """A ClusterRole name no other test of the session cluster uses."""
    return f"reader-{uuid.uuid4().hex[:8]}"


def results(pytester: pytest.Pytester) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (pytester.path / "harness-report" / "results.json").read_text()
    )
    return loaded


def test_two_apps_rendering_one_cluster_role_run_one_after_another(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    role = unique_role(pytester)
    two_suites_rendering_one_role(pytester, role)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4)
    assert (
        f"a.suite.yaml::first and b.suite.yaml::second both render the cluster-scoped "
        f"ClusterRole/{role}: they run one after another" in result.stdout.str()
    )
    apps = {app["app"]: app for app in results(pytester)["apps"]}
    assert apps["first"]["serialised_with"] == [f"b.suite.yaml::second (ClusterRole/{role})"]
    assert apps["second"]["serialised_with"] == [f"a.suite.yaml::first (ClusterRole/{role})"]


def test_under_xdist_clashing_apps_run_one_after_another_on_one_worker(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    role = unique_role(pytester)
    two_suites_rendering_one_role(pytester, role)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-n", "2", "-v"
    )
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert "INTERNALERROR" not in out + result.stderr.str()
    workers = set(re.findall(r"\[(gw\d)\] \[ *\d+%\] PASSED [ab]\.suite\.yaml::", out))
    assert len(workers) == 1, out  # the pair ran on one worker, in turn
    assert out.count(f"ClusterRole/{role}: they run one after another") == 1


def pair_joined_by_depends_on(pytester: pytest.Pytester) -> None:
    """pair.suite.yaml: second dependsOn first, both rendering ClusterRole/pod-reader."""
    chart = tiny_chart(pytester.path, "reader", ROLE)
    (chart / "values.yaml").write_text("roleName: pod-reader\n")
    (pytester.path / "pair.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - {{name: first, chart: {chart}}}\n"
        f"  - {{name: second, chart: {chart}, dependsOn: [first]}}\n"
    )


def test_clashing_apps_joined_by_depends_on_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pair_joined_by_depends_on(pytester)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "pair.suite.yaml::first and pair.suite.yaml::second both render" in err
    assert "ClusterRole/pod-reader, and dependsOn joins them" in err


def test_two_files_sharing_suite_and_app_names_are_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    chart = tiny_chart(pytester.path, "reader", ROLE)
    for suite in ("a", "b"):
        (pytester.path / f"{suite}.suite.yaml").write_text(
            "apiVersion: helm-harness/v1\nkind: Suite\nmetadata: {name: shop}\napps:\n"
            f"  - {{name: web, chart: {chart}, values: {{roleName: role-{suite}}}}}\n"
        )
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert (
        "a.suite.yaml and " in err and "b.suite.yaml both have suite 'shop' with app 'web'" in err
    )
    assert "Traceback" not in err


def test_distinct_names_do_not_clash(pytester: pytest.Pytester) -> None:
    chart = tiny_chart(pytester.path, "reader", ROLE)
    (chart / "values.yaml").write_text("roleName: pod-reader\n")
    (pytester.path / "a.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - {{name: first, chart: {chart}}}\n"
        f"  - {{name: second, chart: {chart}, values: {{roleName: other-reader}}}}\n"
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK


# A CRD as widely used monitoring operators ship it: an enum holding the plain scalar "=",
# which PyYAML's safe loader cannot construct (YAML 1.1's "value" tag), and a date.
OPERATOR_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: matchers.fixtures.helm-harness.io
  annotations: {fixtures.helm-harness.io/released: 2026-11-30}
spec:
  group: fixtures.helm-harness.io
  names: {kind: Matcher, plural: matchers, singular: matcher}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                matchType:
                  type: string
                  enum:
                    - =
                    - "!="
                    - =~
                    - "!~"
"""


def test_a_crd_with_yaml_1_1_scalars_installs_under_xdist(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """Once every xdist worker died with an INTERNALERROR while the clash check read this
    chart's rendered CRD ("could not determine a constructor for the tag
    'tag:yaml.org,2002:value'"), and 0 tests ran."""
    crd_chart = tiny_chart(pytester.path, "matchers", OPERATOR_CRD)
    other = tiny_chart(pytester.path, "reader", ROLE)
    (other / "values.yaml").write_text("roleName: yaml11-reader\n")
    (pytester.path / "ops.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - {{name: matchers, chart: {crd_chart}, checks: [{{ready: {{}}}}]}}\n"
        f"  - {{name: reader, chart: {other}, checks: [{{ready: {{}}}}]}}\n"
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-n", "2"
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=4)


PLAIN_SCALARS = [
    "=", "=~", "'!='", "~", "2026-11-30", "2026-11-30T10:00:00Z", "yes", "0755", "null",
    "'='", ".inf", "0x1F", "1e3", "12:30:00", "-", "a=b", "2026-11-30 10:00:00",
]  # fmt: skip
AS_WRITTEN = {"=", "=~", "2026-11-30", "2026-11-30T10:00:00Z", "a=b", "2026-11-30 10:00:00"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PLAIN_SCALARS), min_size=1, max_size=8))
def test_the_reader_takes_the_scalars_kubernetes_takes(scalars: list[str]) -> None:
    """Every plain scalar a chart may write (in an enum, an annotation) reads as a JSON-able
    value, YAML 1.1's "=" and timestamps as the strings Kubernetes sees."""
    import json

    from harness.kube import manifests

    doc = manifests.load("enum:\n" + "".join(f"  - {s}\n" for s in scalars))
    json.dumps(doc)  # raises on datetime and other values JSON cannot hold
    for raw, value in zip(scalars, doc["enum"], strict=True):
        if raw in AS_WRITTEN:
            assert value == raw


def test_under_xdist_a_clash_is_one_usage_error_from_the_controller(
    pytester: pytest.Pytester,
) -> None:
    """With -n 2 the clash check runs once, on the controller: exit code 4 with the
    message, no INTERNALERROR from a worker, and nothing installed."""
    pair_joined_by_depends_on(pytester)
    result = pytester.runpytest_subprocess("-n", "2", "--cluster=kwok", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out
    assert out.count("both render the cluster-scoped ClusterRole/pod-reader, and dependsOn") == 1
    assert "passed" not in result.stdout.str().splitlines()[-1]


def test_under_xdist_an_invalid_suite_stops_before_any_worker_starts(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "bad.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n  - {name: web, chartt: x}\n"
    )
    result = pytester.runpytest_subprocess("-n", "2", "--cluster=kwok", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "invalid suite file(s)" in err and "bad.suite.yaml" in err
    assert "INTERNALERROR" not in err + result.stdout.str()
    assert "workers" not in result.stdout.str()  # none was started


def test_a_second_run_on_one_cluster_waits_for_the_first_runs_hold(
    tmp_path: Path, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    """Two runs at once on one cluster, both rendering one ClusterRole: the second's
    install waits while the first run's app holds it, names that run, and installs once
    the first has removed its app; both pass."""
    role = f"reader-{uuid.uuid4().hex[:8]}"
    chart = tiny_chart(tmp_path, "reader", ROLE)
    (chart / "values.yaml").write_text(f"roleName: {role}\n")
    folders = {}
    for name, checks in (
        ("holder", "[{wait: {resource: configmap/go, for: create, timeout: 120s}}]"),
        ("waiter", "[{ready: {}}]"),
    ):
        folder = folders[name] = tmp_path / name
        folder.mkdir()
        (folder / "pytest.ini").write_text("[pytest]\n")
        (folder / f"{name}.suite.yaml").write_text(
            "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
            f"  - {{name: {name}, chart: {chart}, checks: {checks}}}\n"
        )
    live_logs = ("-o", "log_cli=true", "--log-cli-level=INFO")
    rbac, core = client.RbacAuthorizationV1Api(k8s), client.CoreV1Api(k8s)

    def held() -> bool:
        try:
            rbac.read_cluster_role(role)
        except ApiException:
            return False
        return True

    first = Run(folders["holder"], f"--kubeconfig={harness_cluster.kubeconfig}")
    second = None
    try:
        first_id = first.run_id()
        first.wait_until(f"the first run's ClusterRole/{role}", held)
        second = Run(folders["waiter"], f"--kubeconfig={harness_cluster.kubeconfig}", *live_logs)
        second.wait_until(
            "the second run waiting", lambda: f"waiting for ClusterRole/{role}" in second.output
        )
        assert f"held by release holder in namespace h-{first_id}-" in second.output
        assert f"(helm-harness run {first_id})" in second.output
        (namespace,) = [
            ns.metadata.name
            for ns in core.list_namespace(label_selector=f"{LABEL_RUN}={first_id}").items
        ]
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="go"))
        )
        codes = [first.finish(180), second.finish(180)]
        assert codes == [0, 0], first.output + "\n\n" + second.output
        report = json.loads((folders["waiter"] / "harness-report" / "results.json").read_text())
        (app,) = report["apps"]
        assert f"(helm-harness run {first_id})" in app["waited_for"]
        assert app["waited_s"] > 0
    finally:
        for run in (first, second):
            if run is not None:
                run.kill()
