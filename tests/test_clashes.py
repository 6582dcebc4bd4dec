"""Apps rendering the same cluster-scoped object are refused before anything is installed,
naming both apps (the collision would otherwise depend on which app ran first)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clusters.base import ClusterInfo
from tests.conftest import tiny_chart

ROLE = (
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
    "metadata: {name: {{ .Values.roleName }}}\n"
    "rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n"
)


def two_suites_rendering_one_role(pytester: pytest.Pytester) -> None:
    """a.suite.yaml::first and b.suite.yaml::second, both rendering ClusterRole/pod-reader."""
    chart = tiny_chart(pytester.path, "reader", ROLE)
    (chart / "values.yaml").write_text("roleName: pod-reader\n")
    for suite, app in (("a", "first"), ("b", "second")):
        (pytester.path / f"{suite}.suite.yaml").write_text(
            "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
            f"  - {{name: {app}, chart: {chart}}}\n"
        )


def test_two_apps_rendering_one_cluster_role_are_a_usage_error(pytester: pytest.Pytester) -> None:
    two_suites_rendering_one_role(pytester)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "a.suite.yaml::first and b.suite.yaml::second both render the cluster-scoped" in err
    assert "ClusterRole/pod-reader" in err


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
    two_suites_rendering_one_role(pytester)
    result = pytester.runpytest_subprocess("-n", "2", "--cluster=kwok", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out
    assert out.count("both render the cluster-scoped ClusterRole/pod-reader") == 1
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
