"""``lint`` (harness/deploy/lint.py): ``helm lint`` plus a server-side dry-run of every
rendered object against the session's real kwok API server, as pytest items
(``--lint``, ``--lint-only``) and as ``helm-harness lint``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest
from kubernetes import client

from harness.clusters.base import ClusterInfo
from harness.deploy.lint import json_schema, validate_against_crd
from harness.kube import manifests
from tests.conftest import REPO

CHARTS = REPO / "tests" / "charts"
GIZMO_CRD = CHARTS / "lint-crd" / "crds" / "gizmos.lint.helm-harness.io.yaml"


def write_suite(pytester: pytest.Pytester, name: str, apps: str) -> Path:
    path = pytester.path / f"{name}.suite.yaml"
    body = "apiVersion: helm-harness/v1\nkind: Suite\napps:\n" + textwrap.indent(
        textwrap.dedent(apps).strip() + "\n", "  "
    )
    path.write_text(body)
    return path


def run(pytester: pytest.Pytester, cluster: ClusterInfo, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--kubeconfig={cluster.kubeconfig}", "-p", "no:cacheprovider", "-rs", "-v", *args
    )


def junit_properties(pytester: pytest.Pytester, name: str, app: str) -> dict[str, str]:
    """The junit.xml properties of the item ``name`` of ``app``."""
    root = ElementTree.parse(pytester.path / "harness-report" / "junit.xml").getroot()
    for case in root.iter("testcase"):
        if case.get("name") == name and app in str(case.get("classname")):
            return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    raise AssertionError(f"no testcase {name} of {app} in junit.xml")


def test_a_good_chart_passes_and_installs_after_its_lint(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "good",
        f"""
        - name: app
          chart: {CHARTS / "lint-app"}
          checks: [{{ready: {{}}}}]
        """,
    )
    result = run(pytester, harness_cluster, "--lint")
    result.stdout.fnmatch_lines(
        [
            "good.suite.yaml::app::lint PASSED*",
            "good.suite.yaml::app::install PASSED*",
            "good.suite.yaml::app::ready PASSED*",
        ]
    )
    result.assert_outcomes(passed=3)


def test_a_schema_invalid_object_fails_lint_and_skips_the_install(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "typed",
        f"""
        - name: app
          chart: {CHARTS / "lint-app"}
          values: {{replicas: two}}
          checks: [{{ready: {{}}}}]
        """,
    )
    result = run(pytester, harness_cluster, "--lint")
    result.assert_outcomes(failed=1, skipped=2)
    out = result.stdout.str()
    assert "app::lint: lint found 1 problem(s)" in out
    result.stdout.fnmatch_lines(
        [
            "  Deployment/app-app (lint-app/templates/deployment.yaml): spec.replicas: "
            "expected numeric (int or float), got string"
        ]
    )
    result.stdout.fnmatch_lines(["*SKIPPED*lint failed: lint found 1 problem(s)*"])
    assert "Traceback" not in out
    # nothing of the app was installed
    assert "helm install" not in out


def test_an_unknown_field_fails_under_strict_validation(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "strict",
        f"""
        - name: app
          chart: {CHARTS / "lint-app"}
          set: {{unknownField: true}}
        """,
    )
    result = run(pytester, harness_cluster, "--lint-only")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  Deployment/app-app (lint-app/templates/deployment.yaml): spec.template.spec"
            '.containers[[]name="app"[]].colour: field not declared in schema'
        ]
    )


def test_a_helm_lint_error_names_the_chart_file(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(pytester, "broken", f"- {{name: app, chart: {CHARTS / 'lint-broken'}}}")
    result = run(pytester, harness_cluster, "--lint")
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines(
        ["*helm lint: templates/: *lint-broken/templates/configmap.yaml:4*"]
    )


def test_a_crd_and_its_resource_in_one_chart_do_not_fail_falsely(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester,
        "gizmos",
        f"""
        - name: good
          chart: {CHARTS / "lint-crd"}
        - name: bad
          chart: {CHARTS / "lint-crd"}
          set: {{size: 50}}
        """,
    )
    result = run(pytester, harness_cluster, "--lint-only")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "gizmos.suite.yaml::good::lint PASSED*",
            "gizmos.suite.yaml::bad::lint FAILED*",
            "  Gizmo/bad-gizmo (lint-crd/templates/gizmo.yaml): spec.size: 50 is greater than "
            "the maximum of 10",
        ]
    )
    props = junit_properties(pytester, "lint", "good")
    assert "Gizmo/good-gizmo: validated against its CRD's schema" in props["lint_notes"]
    assert props["lint_checked"] == "2"


def test_a_resource_of_a_crd_in_templates_fails_as_its_install_would(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """Helm applies a CRD in templates/ with the release: it cannot map the release's
    resources of that CRD first, so the install fails; lint says so before."""
    write_suite(pytester, "templated", f"- {{name: app, chart: {CHARTS / 'lint-templated-crd'}}}")
    result = run(pytester, harness_cluster, "--lint-only")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  Doohickey/app-doohickey (lint-templated-crd/templates/doohickey.yaml): its CRD "
            "doohickeys.lint.helm-harness.io is in the chart's templates*ensure CRDs are "
            "installed first*"
        ]
    )


def test_an_invalid_custom_resource_is_refused_by_the_api_server(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    """With the CRD installed (by the app the Gizmo's app depends on), the API server
    itself validates the Gizmo."""
    write_suite(
        pytester,
        "served",
        f"""
        - name: crd
          chart: {CHARTS / "lint-crd"}
          checks: []
        - name: cr
          chart: {CHARTS / "lint-cr"}
          dependsOn: [crd]
          set: {{size: 50}}
          checks: []
        """,
    )
    extensions = client.ApiextensionsV1Api(k8s)
    try:
        result = run(pytester, harness_cluster, "--lint")
    finally:  # crds/ outlive their release: the next test's cluster has none
        extensions.delete_custom_resource_definition("gizmos.lint.helm-harness.io")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "served.suite.yaml::cr::lint FAILED*",
            "served.suite.yaml::cr::install SKIPPED (lint failed*",
            "  Gizmo/cr-gizmo (lint-cr/templates/gizmo.yaml): Invalid value: 50: spec.size in "
            "body should be less than or equal to 10",
        ]
    )


def test_lint_items_come_first_in_runs_and_upgrade_runs(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    app = CHARTS / "lint-app"
    write_suite(
        pytester,
        "order",
        f"""
        - {{name: plain, chart: {app}, checks: [{{ready: {{}}}}]}}
        - {{name: up, chart: {app}, upgrade: {{from: {{chart: {app}}}}}, checks: []}}
        """,
    )
    result = run(pytester, harness_cluster, "--lint", "--upgrade", "--collect-only", "-qq")
    result.stdout.fnmatch_lines(
        [
            "order.suite.yaml::plain::lint",
            "order.suite.yaml::plain::install",
            "order.suite.yaml::plain::ready",
            "order.suite.yaml::up::lint",
            "order.suite.yaml::up::install[[]from[]]",
            "order.suite.yaml::up::upgrade",
        ]
    )
    only = run(pytester, harness_cluster, "--lint-only", "--collect-only", "-qq")
    ids = [line for line in only.stdout.lines if line.startswith("order.suite.yaml::")]
    assert ids == ["order.suite.yaml::plain::lint", "order.suite.yaml::up::lint"]


def test_lint_only_runs_no_install_and_removes_the_namespace(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    write_suite(pytester, "only", f"- {{name: app, chart: {CHARTS / 'lint-app'}}}")
    result = run(pytester, harness_cluster, "--lint-only", "--report-dir", "out")
    result.stdout.fnmatch_lines(["only.suite.yaml::app::lint PASSED*"])
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "out" / "results.json").read_text())
    (app,) = data["apps"]
    assert app["installed"] is False
    try:
        namespace = client.CoreV1Api(k8s).read_namespace(app["namespace"])
    except client.ApiException as exc:
        assert exc.status == 404  # gone
    else:
        assert namespace.metadata.deletion_timestamp is not None  # being removed


def test_the_lint_command_prints_a_line_per_problem_and_exits_1(
    tmp_path: Path, harness_cluster: ClusterInfo
) -> None:
    good = tmp_path / "good.suite.yaml"
    good.write_text(
        f"apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - {{name: app, chart: {CHARTS / 'lint-app'}}}\n"
    )
    bad = tmp_path / "bad.suite.yaml"
    bad.write_text(
        f"apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - {{name: app, chart: {CHARTS / 'lint-app'}, "
        "set: {replicas: two, unknownField: true}}\n"
    )

    def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "harness.cli", "lint", *map(str, paths)]
        argv += [f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider"]
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    passed = lint(good)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "ok  good.suite.yaml::app" in passed.stdout
    failed = lint(good, bad)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    problems = [line for line in failed.stdout.splitlines() if line.startswith("bad.suite")]
    assert len(problems) == 2, failed.stdout
    assert any("Deployment/app-app" in line and "replicas" in line for line in problems)
    assert any("colour" in line for line in problems)


def test_crd_schemas_become_json_schema() -> None:
    crd = manifests.load(GIZMO_CRD.read_text())
    gizmo = {
        "apiVersion": "lint.helm-harness.io/v1",
        "kind": "Gizmo",
        "metadata": {"name": "g", "labels": {"a": "b"}},
        "spec": {"size": 0, "shape": "oval", "labels": {"x": 1}, "extra": True},
    }
    problems = [str(p) for p in validate_against_crd(gizmo, crd)]
    assert problems == [
        "Gizmo/g: spec: Additional properties are not allowed ('extra' was unexpected)",
        "Gizmo/g: spec.labels.x: 1 is not of type 'string'",
        "Gizmo/g: spec.shape: 'oval' is not one of ['round', 'square']",
        "Gizmo/g: spec.size: 0 is less than the minimum of 1",
    ]
    wrong_version = {**gizmo, "apiVersion": "lint.helm-harness.io/v2"}
    assert [str(p) for p in validate_against_crd(wrong_version, crd)] == [
        "Gizmo/g: its CRD gizmos.lint.helm-harness.io serves v1, not v2"
    ]
    kept = json_schema(
        {
            "type": "object",
            "properties": {
                "any": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
            },
        }
    )
    assert kept["additionalProperties"] is False
    assert "additionalProperties" not in kept["properties"]["any"]
    assert kept["properties"]["port"]["type"] == ["integer", "string"]
    assert kept["properties"]["note"]["type"] == ["string", "null"]


def test_the_lint_command_defaults_to_kwok_and_runs_only_lint_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.cli.lint import lint_args as of_run
    from harness.cli.main import EXIT_USAGE, main, pytest_args
    from harness.errors import UsageError

    def lint_args(args: list[str]) -> list[str]:
        return of_run(args, pytest_args)

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="no PATH given and there is no ./suites folder"):
        lint_args([])
    assert main(["lint"]) == EXIT_USAGE
    assert main(["lint", "--help"]) == 0
    (tmp_path / "suites").mkdir()
    argv = lint_args([])
    assert "suites" in argv and "--lint-only" in argv and "--cluster=kwok" in argv
    argv = lint_args(["--cluster", "kind"])
    assert "--cluster=kind" in argv and "--cluster=kwok" not in argv
    argv = lint_args(["--kubeconfig", str(GIZMO_CRD)])
    assert not any(arg.startswith("--cluster") for arg in argv)


def test_server_side_apply_refusals_become_a_problem_per_field() -> None:
    from harness.deploy.lint import typed_patch_errors

    message = (
        "failed to create typed patch object (/a; apps/v1, Kind=Deployment): errors:\n"
        "  .spec.replicas: expected numeric (int or float), got string\n"
        '  .spec.template.spec.containers[name="app"].colour: field not declared in schema'
    )
    assert [str(p) for p in typed_patch_errors("Deployment/a", message)] == [
        "Deployment/a: spec.replicas: expected numeric (int or float), got string",
        'Deployment/a: spec.template.spec.containers[name="app"].colour: field not declared '
        "in schema",
    ]
    assert typed_patch_errors("Deployment/a", "something else") == []
