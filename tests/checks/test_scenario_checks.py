"""The scenario checks ``apply``, ``assert`` and ``error``: the partial-object matcher on its
own, the loader's errors for them, and the checks against the session's real kwok API
server (directly, and as items of a pytest run whose teardown removes what was applied)."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.checks import KINDS, run_check
from harness.checks.context import AppContext
from harness.errors import CheckFailed
from harness.kube.match import first_difference, matches, trimmed
from harness.suite.model import Check, load_suite
from harness.suite.templating import check as template_problem
from harness.suite.templating import render, render_data
from tests.checks.conftest import suite_error, suite_with

READY_CONDITION = '{.conditions[?(@.type=="Ready")].status}'
POD = {
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "x"}, "managedFields": [{"manager": "k"}]},
    "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]},
    "status": {
        "phase": "Pending",
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
    },
}

# -- matching, no cluster ---------------------------------------------------------------------


def test_mappings_match_key_by_key_and_ignore_what_is_not_given() -> None:
    assert matches({"kind": "Pod", "status": {"phase": "Pending"}}, POD)
    assert matches({}, POD)
    assert str(first_difference({"status": {"phase": "Running"}}, POD)) == (
        'first difference at status.phase: expected "Running", observed "Pending"'
    )
    assert str(first_difference({"status": {"podIP": "10.0.0.1"}}, POD)) == (
        "status.podIP is missing"
    )
    assert str(first_difference({"metadata": {"labels": {"app.kubernetes.io/x": "y"}}}, POD)) == (
        'metadata.labels["app.kubernetes.io/x"] is missing'
    )
    assert str(first_difference({"status": {"phase": {"a": 1}}}, POD)) == (
        'first difference at status.phase: expected a mapping, observed "Pending"'
    )


def test_scalars_must_be_equal_in_type_too() -> None:
    observed = {"spec": {"replicas": 3, "paused": False, "ratio": 1.0}, "status": {"ok": "True"}}
    assert matches({"spec": {"replicas": 3, "paused": False, "ratio": 1}}, observed)
    assert not matches({"spec": {"replicas": "3"}}, observed)
    assert not matches({"spec": {"paused": 0}}, observed)
    difference = str(first_difference({"status": {"ok": True}}, observed))
    assert difference == (
        'first difference at status.ok: expected true, observed "True" '
        "(the server has text here: quote the expected value)"
    )


def test_lists_match_as_subsets_in_any_order_each_item_its_own() -> None:
    both = {"spec": {"containers": [{"image": "b:2"}, {"name": "a"}]}}
    assert matches(both, POD)
    assert matches({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, POD)
    # two expected items cannot share the one observed item that fits both
    twice = {"spec": {"containers": [{"name": "a"}, {"image": "a:1"}]}}
    assert str(first_difference(twice, POD)) == (
        "first difference at spec.containers: the expected items match, but not each one an "
        "observed item of its own"
    )
    # the failure names the observed item closest to the expected one: Ready, not Initialized
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert str(first_difference(ready, POD)) == (
        'first difference at status.conditions[1].status: expected "True", observed "False"'
    )
    three = {"spec": {"containers": [{}, {}, {}]}}
    assert str(first_difference(three, POD)) == (
        "first difference at spec.containers: expected at least 3 items, observed 2"
    )
    assert str(first_difference({"spec": {"containers": {"name": "a"}}}, POD)) == (
        "first difference at spec.containers: expected a mapping, observed a list"
    )


def test_jsonpath_keys_where_a_literal_will_not_do() -> None:
    assert matches({"status": {READY_CONDITION: "False"}}, POD)
    assert matches({"{.status.conditions[0].type}": "Initialized"}, POD)
    assert str(first_difference({"status": {READY_CONDITION: "True"}}, POD)) == (
        f'first difference at status{READY_CONDITION}: expected "True", observed "False"'
    )
    missing = first_difference({"status": {'{.conditions[?(@.type=="Gone")].status}': "x"}}, POD)
    assert str(missing).endswith("is missing (the path reaches nothing)")
    # the expected value under an expression is matched like any other: partially
    assert matches({"{.status.conditions[1]}": {"reason": "ContainersNotReady"}}, POD)


def test_a_failure_shows_the_object_without_managed_fields() -> None:
    shown = trimmed(POD)
    assert "managedFields" not in shown["metadata"] and shown["metadata"]["name"] == "p"
    assert "managedFields" in POD["metadata"]  # a copy


def test_templates_put_in_release_and_namespace_and_refuse_anything_else() -> None:
    text = "{{ .Release.Name }}-a {{.Release.Namespace}}"
    assert render(text, "web", "ns") == "web-a ns"
    assert render_data({"{{ .Release.Name }}": ["{{ .Release.Namespace }}", 1]}, "r", "n") == {
        "r": ["n", 1]
    }
    assert template_problem("{{ .Values.x }}") == (
        "unsupported template '{{ .Values.x }}': only {{ .Release.Name }} and "
        "{{ .Release.Namespace }} are expanded"
    )
    assert template_problem("{{ .Release.Name ") is not None
    assert template_problem("plain {.status.phase}") is None


def test_item_ids_name_the_object_without_template_text() -> None:
    assert KINDS["assert"].item_param(
        {"object": {"kind": "Widget", "metadata": {"name": "{{ .Release.Name }}-small"}}}
    ) == ("Widget/small")
    assert KINDS["error"].item_param({"object": {"kind": "Pod"}, "selector": "a=b"}) == "Pod"
    assert KINDS["apply"].item_param({"file": "scenarios/w.yaml", "manifest": "..."}) == (
        "scenarios/w.yaml"
    )
    assert not KINDS["apply"].ahead and KINDS["assert"].ahead and KINDS["error"].ahead


# -- the loader -------------------------------------------------------------------------------


def test_apply_files_are_read_at_load_and_checked(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-f'}\n"
    )
    suite = load_suite(
        suite_with(
            tmp_path,
            """\
            - apply: {file: scenarios/cm.yaml}
            - apply:
                manifest: |
                  apiVersion: v1
                  kind: ConfigMap
                  metadata: {name: inline}
            - assert: {object: {kind: ConfigMap, metadata: {name: inline}}}
            - error: {object: {kind: Pod, metadata: {labels: {app: x}}}}
            """,
        )
    )
    checks = suite.apps[0].checks or ()
    assert [c.id for c in checks] == [
        "apply[scenarios/cm.yaml]",
        "apply",
        "assert[ConfigMap/inline]",
        "error[Pod]",
    ]
    assert "kind: ConfigMap" in checks[0].spec["manifest"]


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (
            "- apply: {file: nope.yaml}\n",
            ":7: apps[0].checks[0].apply.file: file not found: {folder}/nope.yaml (a file is "
            "relative to the suite file)",
        ),
        (
            "- apply: {manifest: 'kind: [', file: x.yaml}\n",
            ":7: apps[0].checks[0].apply: give exactly one of `manifest` (inline YAML) or "
            "`file` (relative to the suite file)",
        ),
        (
            "- apply: {manifest: 'a: [1'}\n",
            ":7: apps[0].checks[0].apply.manifest: the manifest is not valid YAML at line 1 of "
            "it: expected ',' or ']', but got '<stream end>'",
        ),
        (
            '- apply: {manifest: "apiVersion: v1\\nkind: ConfigMap\\n"}\n',
            ":7: apps[0].checks[0].apply.manifest: the manifest: object 1 (ConfigMap) has no "
            "metadata.name",
        ),
        (
            "- apply: {manifest: 'metadata: {name: \"{{ .Values.name }}\"}'}\n",
            ":7: apps[0].checks[0].apply.manifest: the manifest: unsupported template "
            "'{{ .Values.name }}': only {{ .Release.Name }} and {{ .Release.Namespace }} are "
            "expanded",
        ),
        (
            "- assert:\n    object:\n      kind: Pod\n"
            "      metadata: {name: '{{ .Chart.Name }}'}\n",
            ":10: apps[0].checks[0].assert.object.metadata.name: unsupported template "
            "'{{ .Chart.Name }}'",
        ),
        (
            "- assert:\n    object:\n      kind: Pod\n      status:\n        '{..phase}': x\n",
            ':11: apps[0].checks[0].assert.object.status["{..phase}"]: unsupported JSONPath '
            "'{..phase}': recursive descent '..' is not supported",
        ),
        (
            "- error: {object: {metadata: {name: x}}}\n",
            ":7: apps[0].checks[0].error.object: missing required key 'kind'",
        ),
    ],
)
def test_load_errors_name_file_line_and_key(tmp_path: Path, checks: str, message: str) -> None:
    assert suite_error(tmp_path, checks).startswith(message.replace("{folder}", str(tmp_path)))


# -- on the cluster ---------------------------------------------------------------------------


def apply_check(manifest: str, **fields: Any) -> Check:
    return Check(kind="apply", spec={"manifest": textwrap.dedent(manifest)}, **fields)


def assert_check(
    obj: dict[str, Any], kind: str = "assert", timeout: float = 2, **spec: Any
) -> Check:
    return Check(kind=kind, spec={"object": obj, **spec}, timeout=timeout)


def failure_of(ctx: AppContext, check: Check) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, check)
    return info.value


def test_apply_templates_and_assert_waits_for_what_it_applied(install_app: Any) -> None:
    ctx = install_app("web")
    run_check(
        ctx,
        apply_check(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-settings
              labels: {scenario: "yes"}
            data: {namespace: "{{ .Release.Namespace }}", size: "3"}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: second}
            """
        ),
    )
    stored = client.CoreV1Api(ctx.api).read_namespaced_config_map("web-settings", ctx.namespace)
    assert stored.data == {"namespace": ctx.namespace, "size": "3"}
    managers = {entry.manager for entry in stored.metadata.managed_fields}
    assert managers == {"helm-harness"}
    run_check(
        ctx,
        assert_check(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "{{ .Release.Name }}-settings"},
                "data": {"namespace": "{{ .Release.Namespace }}"},
            }
        ),
    )
    # by selector: any ConfigMap with the label may match
    run_check(ctx, assert_check({"kind": "ConfigMap", "data": {"size": "3"}}, selector="scenario"))
    labelled = {"kind": "ConfigMap", "metadata": {"labels": {"scenario": "yes"}}, "data": {}}
    run_check(ctx, assert_check(labelled))
    # both went into the app's namespace, which takes them along at the teardown
    assert {ref["namespace"] for ref in ctx.applied} == {ctx.namespace}


def test_assert_on_a_deployments_status(install_app: Any) -> None:
    ctx = install_app("web")
    status = {
        "readyReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
        '{.conditions[?(@.type=="Progressing")].reason}': "NewReplicaSetAvailable",
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "{{ .Release.Name }}-web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web"}]}}},
        "status": status,
    }
    run_check(ctx, assert_check(deployment, timeout=30))
    # and an error check passes at once: no Deployment has that status
    run_check(ctx, assert_check({**deployment, "status": {"readyReplicas": 5}}, kind="error"))


def test_a_failing_assert_shows_expected_and_observed_and_the_first_difference(
    install_app: Any,
) -> None:
    ctx = install_app("web")
    wrong = {
        "kind": "Deployment",
        "metadata": {"name": "web-web"},
        "spec": {"replicas": 1},
        "status": {"conditions": [{"type": "Available", "status": "False"}]},
    }
    failed = failure_of(ctx, assert_check(wrong))
    assert failed.expected == f"Deployment/web-web in namespace {ctx.namespace} to match within 2s"
    assert failed.observed == (
        "Deployment/web-web: first difference at status.conditions[0].status: "
        'expected "False", observed "True"'
    )
    assert "expected (partial object):\n  kind: Deployment\n" in failed.details
    assert "last observed:\n  apiVersion: apps/v1\n  kind: Deployment\n" in failed.details
    assert "managedFields" not in failed.details and "uid:" in failed.details

    gone = failure_of(ctx, assert_check({"kind": "ConfigMap", "metadata": {"name": "nothing"}}))
    assert gone.observed == f"no such object (no ConfigMap/nothing in namespace {ctx.namespace})"
    unknown = failure_of(ctx, assert_check({"apiVersion": "example.org/v1", "kind": "Gizmo"}))
    assert unknown.observed == "the cluster serves no kind 'Gizmo' (example.org/v1)"


def test_error_fails_while_an_object_still_matches(install_app: Any) -> None:
    ctx = install_app("web")
    pods = {"kind": "Pod", "metadata": {"labels": {"app.kubernetes.io/name": "web"}}}
    failed = failure_of(ctx, assert_check(pods, kind="error"))
    assert failed.expected == (
        f"no Pod with labels app.kubernetes.io/name=web in namespace {ctx.namespace} "
        "matching within 2s"
    )
    assert failed.observed.startswith("Pod/web-web-") and failed.observed.endswith(" still matches")
    assert "the matching object:\n  apiVersion: v1\n  kind: Pod\n" in failed.details
    # it passes once the object stops matching
    core = client.CoreV1Api(ctx.api)
    core.create_namespaced_config_map(
        ctx.namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="flag"))
    )
    flag = {"kind": "ConfigMap", "metadata": {"name": "flag"}}
    deleting = threading.Timer(1.0, core.delete_namespaced_config_map, ("flag", ctx.namespace))
    deleting.start()
    try:
        started = time.monotonic()
        run_check(ctx, assert_check(flag, kind="error", timeout=20))
        assert 0.5 < time.monotonic() - started < 15
    finally:
        deleting.join()


def test_a_rejected_apply_fails_with_the_servers_message(install_app: Any) -> None:
    ctx = install_app("web")
    failed = failure_of(
        ctx,
        apply_check(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: good}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: bad}
            spec: {size: 3}
            """
        ),
    )
    assert failed.expected == "ConfigMap/bad applied"
    # server-side apply refuses an unknown field with a 500 and its reason
    assert failed.observed.startswith(
        f"the API server refused ConfigMap/bad in namespace {ctx.namespace}: "
    )
    assert failed.observed.endswith(".spec: field not declared in schema")
    core = client.CoreV1Api(ctx.api)
    assert core.read_namespaced_config_map("good", ctx.namespace).metadata.name == "good"
    unknown = failure_of(
        ctx, apply_check("apiVersion: example.org/v1\nkind: Gizmo\nmetadata: {name: g}\n")
    )
    assert unknown.observed == "the cluster serves no kind 'Gizmo' (example.org/v1)"


# -- as items of a run ------------------------------------------------------------------------

SCENARIO = """\
- ready: {}
- apply:
    file: scenario/objects.yaml
- assert:
    object:
      apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      metadata: {name: "gizmos.{{ .Release.Namespace }}.example.org"}
      status:
        '{.conditions[?(@.type=="Established")].status}': "True"
  timeout: 30s
- apply:
    manifest: |
      apiVersion: {{ .Release.Namespace }}.example.org/v1
      kind: Gizmo
      metadata: {name: "{{ .Release.Name }}-one"}
      spec: {size: 3}
  name: create-gizmo
- assert:
    object:
      apiVersion: "{{ .Release.Namespace }}.example.org/v1"
      kind: Gizmo
      metadata: {name: "{{ .Release.Name }}-one"}
      spec: {size: 3}
  timeout: 30s
- assert:
    object:
      kind: Gizmo
      metadata: {name: "{{ .Release.Name }}-one"}
      spec: {size: 4}
  name: wrong-size
  timeout: 2s
- error:
    object: {kind: Gizmo, spec: {size: 3}}
  timeout: 2s
"""

OBJECTS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: "gizmos.{{ .Release.Namespace }}.example.org"}
spec:
  group: "{{ .Release.Namespace }}.example.org"
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ .Release.Name }}-from-file"}
"""


def test_a_scenario_runs_as_items_and_its_objects_go_with_the_app(
    pytester: pytest.Pytester, harness_cluster: Any, k8s: client.ApiClient
) -> None:
    (pytester.path / "scenario").mkdir()
    (pytester.path / "scenario" / "objects.yaml").write_text(OBJECTS)
    suite_with(pytester.path, SCENARIO)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}",
        "-p",
        "no:cacheprovider",
        "--report-dir=out",
        "-v",
    )
    result.stdout.fnmatch_lines(
        [
            "d.suite.yaml::web::ready PASSED*",
            "d.suite.yaml::web::apply[[]scenario/objects.yaml[]] PASSED*",
            "d.suite.yaml::web::assert[[]CustomResourceDefinition/gizmos.example.org[]] PASSED*",
            "d.suite.yaml::web::create-gizmo PASSED*",
            "d.suite.yaml::web::assert[[]Gizmo/one[]] PASSED*",
            "d.suite.yaml::web::wrong-size FAILED*",
            "d.suite.yaml::web::error[[]Gizmo[]] FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "web::wrong-size: expected Gizmo/web-one in namespace h-*-d-web to match within 2s;"
            " observed Gizmo/web-one: first difference at spec.size: expected 4, observed 3",
            "expected (partial object):",
        ]
    )
    result.assert_outcomes(passed=6, failed=2)  # install included
    results = json.loads((pytester.path / "out" / "results.json").read_text())
    namespace = results["apps"][0]["namespace"]
    # the CRD is cluster-scoped: the teardown deleted it (the namespace took the rest)
    crds = client.ApiextensionsV1Api(k8s).list_custom_resource_definition(
        field_selector=f"metadata.name=gizmos.{namespace}.example.org"
    )
    assert [crd.metadata.name for crd in crds.items if not crd.metadata.deletion_timestamp] == []
