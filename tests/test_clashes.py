"""Apps rendering the same cluster-scoped object are refused before anything is installed,
naming both apps (the collision would otherwise depend on which app ran first)."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_chart

ROLE = (
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
    "metadata: {name: {{ .Values.roleName }}}\n"
    "rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n"
)


def test_two_apps_rendering_one_cluster_role_are_a_usage_error(pytester: pytest.Pytester) -> None:
    chart = tiny_chart(pytester.path, "reader", ROLE)
    (chart / "values.yaml").write_text("roleName: pod-reader\n")
    for suite, app in (("a", "first"), ("b", "second")):
        (pytester.path / f"{suite}.suite.yaml").write_text(
            "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
            f"  - {{name: {app}, chart: {chart}}}\n"
        )
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "a.suite.yaml::first and b.suite.yaml::second both render the cluster-scoped" in err
    assert "ClusterRole/pod-reader" in err


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
