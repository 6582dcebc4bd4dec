"""``catch`` and ``finally`` on checks, and ``xfail`` on checks and apps: how suite files
give them, what the steps do on the session's real kwok cluster, and how a run reports them
(the evidence bundle, the failure message, pytest's xfail outcomes, results.json, report.md)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from kubernetes import client

from harness.checks.steps import run_with_steps
from harness.clusters.base import ClusterInfo
from harness.errors import CheckFailed, Stopped
from harness.suite.model import Check, Step, load_suite
from tests.checks.conftest import suite_error
from tests.conftest import FIXTURE_CHARTS

WEB = FIXTURE_CHARTS / "web"


def suite_file(folder: Path, checks: str, *, app_extra: str = "") -> Path:
    path = folder / "s.suite.yaml"
    path.write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: web\n    chart: {WEB}\n"
        + textwrap.indent(textwrap.dedent(app_extra), "    ")
        + "    checks:\n"
        + textwrap.indent(textwrap.dedent(checks), "      ")
    )
    return path


# --- the suite format -------------------------------------------------------------------------


def test_catch_finally_and_xfail_are_read_from_the_suite(tmp_path: Path) -> None:
    path = suite_file(
        tmp_path,
        """\
        - ready: {}
          xfail: "issue 7: never ready on kwok"
          catch:
            - events: {resource: "deployment/{{ .Release.Name }}-web"}
            - podLogs: {selector: app=web, container: web, tail: 20}
            - get: {resource: "deploy/{{.Release.Name}}-web"}
          finally:
            - delete: {resource: "configmap/{{ .Release.Namespace }}"}
        """,
        app_extra="xfail: the whole app\n",
    )
    app = load_suite(path).apps[0]
    assert app.xfail == "the whole app"
    assert app.checks is not None
    check = app.checks[0]
    assert check.id == "ready"  # catch/finally/xfail do not change the item's id
    assert check.xfail == "issue 7: never ready on kwok"
    assert [(step.kind, step.line) for step in check.catch] == [
        ("events", 11),
        ("podLogs", 12),
        ("get", 13),
    ]
    assert check.catch[1].spec == {"selector": "app=web", "container": "web", "tail": 20}
    assert check.cleanup == (
        Step("delete", {"resource": "configmap/{{ .Release.Namespace }}"}, line=15),
    )


def test_xfail_in_defaults_is_every_apps(tmp_path: Path) -> None:
    path = tmp_path / "d.suite.yaml"
    path.write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\n"
        f"defaults: {{chart: {WEB}, xfail: known broken}}\n"
        "apps: [{name: a}, {name: b, xfail: b's own}]\n"
    )
    assert [app.xfail for app in load_suite(path).apps] == ["known broken", "b's own"]


def test_an_unknown_template_in_a_step_names_line_and_key(tmp_path: Path) -> None:
    message = suite_error(
        tmp_path,
        """\
        - ready: {}
          catch:
            - get: {resource: "deployment/{{ .Values.name }}"}
        """,
    )
    assert message == (
        ":9: apps[0].checks[0].catch[0].get.resource: unsupported template "
        "'{{ .Values.name }}': only {{ .Release.Name }} and {{ .Release.Namespace }} are expanded"
    )


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        (
            "- ready: {}\n  catch: [{events: {resource: pod/a}, get: {resource: pod/a}}]\n",
            ":8: apps[0].checks[0].catch[0]: a catch step is one of events, podLogs or get: "
            "give exactly one per list item",
        ),
        (
            "- ready: {}\n  catch: [{delete: {resource: pod/a}}]\n",
            ":8: apps[0].checks[0].catch[0].delete: unknown key 'delete'",
        ),
        (
            "- ready: {}\n  finally: [{get: {resource: pod/a}}]\n",
            ":8: apps[0].checks[0].finally[0].get: unknown key 'get'",
        ),
        (
            "- ready: {}\n  catch: [{get: {resource: pods}}]\n",
            ":8: apps[0].checks[0].catch[0].get.resource: write the resource as KIND/NAME",
        ),
        (
            "- ready: {}\n  catch: [{podLogs: {selector: a=b, tail: 0}}]\n",
            ":8: apps[0].checks[0].catch[0].podLogs.tail: must be at least 1, not the number 0",
        ),
        ("- ready: {}\n  xfail: ''\n", ":8: apps[0].checks[0].xfail: must not be empty"),
        (
            "- ready: {}\n  finally: [{apply: {file: gone.yaml}}]\n",
            ":8: apps[0].checks[0].finally[0].apply.file: file not found: ",
        ),
    ],
)
def test_malformed_steps_say_where(tmp_path: Path, checks: str, expected: str) -> None:
    assert suite_error(tmp_path, checks).startswith(expected)


def test_a_stopped_run_runs_no_steps() -> None:
    """Stopped (and Ctrl-C) go straight through: no catch, no finally, nothing swallowed."""

    class Ctx:
        caught: dict[str, Any] = {}

    check = Check(kind="ready", spec={}, catch=(Step("get", {"resource": "pod/a"}),))

    def stop() -> None:
        raise Stopped("stopped: the run is ending")

    with pytest.raises(Stopped):
        run_with_steps(Ctx(), check, stop)  # type: ignore[arg-type]  # no step touches it
    assert Ctx.caught == {}


# --- the steps on the cluster -----------------------------------------------------------------

FAILING_WAIT = {"resource": "configmap/seen", "for": "jsonpath={.data.x}=never", "timeout": "1s"}


def test_catch_collects_events_and_the_object_of_a_failing_check(install_app: Any) -> None:
    ctx = install_app("web")
    core = client.CoreV1Api(ctx.api)
    core.create_namespaced_config_map(
        ctx.namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="seen"), data={"x": "1"}),
    )
    core.create_namespaced_event(
        ctx.namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="seen.1"),
            involved_object=client.V1ObjectReference(
                kind="ConfigMap", name="seen", namespace=ctx.namespace
            ),
            reason="WidgetStuck",
            message="the widget is stuck",
            type="Warning",
        ),
    )
    check = Check(
        kind="wait",
        spec=FAILING_WAIT,
        catch=(
            Step("events", {"resource": "configmap/seen"}),
            Step("get", {"resource": "cm/seen"}),
            Step("podLogs", {"selector": "app.kubernetes.io/name=web", "tail": 5}),
            Step("get", {"resource": "gizmo/{{ .Release.Name }}"}),
        ),
    )
    with pytest.raises(CheckFailed, match="configmap/seen"):  # the check's own failure
        run_with_steps(ctx, check)
    caught = {item.name: item for item in ctx.caught[check.id]}
    assert list(caught) == ["1-events.yaml", "2-get.yaml", "3-podLogs.log", "4-get.yaml"]
    assert "reason: WidgetStuck" in caught["1-events.yaml"].text
    assert "object: ConfigMap/seen" in caught["1-events.yaml"].text
    got = caught["2-get.yaml"].text
    assert "kind: ConfigMap" in got and "x: '1'" in got and "managedFields" not in got
    assert "==> pod web-web-" in caught["3-podLogs.log"].text  # one section per container
    failed = caught["4-get.yaml"]
    assert failed.text.startswith("# could not collect: unknown resource type 'gizmo'")
    assert "(failed: unknown resource type 'gizmo'" in failed.what


def test_catch_does_not_run_when_the_check_passes(install_app: Any) -> None:
    ctx = install_app("web")
    check = Check(kind="ready", spec={}, catch=(Step("get", {"resource": "deploy/web-web"}),))
    run_with_steps(ctx, check)
    assert ctx.caught == {}


def _config_map(ctx: Any, name: str) -> None:
    client.CoreV1Api(ctx.api).create_namespaced_config_map(
        ctx.namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name))
    )


def _config_maps(ctx: Any) -> set[str]:
    items = client.CoreV1Api(ctx.api).list_namespaced_config_map(ctx.namespace).items
    return {item.metadata.name for item in items}


def test_finally_deletes_after_a_pass_and_after_a_failure(install_app: Any) -> None:
    ctx = install_app("web")
    _config_map(ctx, "web-after-pass")
    _config_map(ctx, "seen")
    cleanup = (Step("delete", {"resource": "configmap/{{ .Release.Name }}-after-pass"}),)
    run_with_steps(ctx, Check(kind="ready", spec={}, cleanup=cleanup))
    assert "web-after-pass" not in _config_maps(ctx)
    failing = Check(
        kind="wait", spec=FAILING_WAIT, cleanup=(Step("delete", {"resource": "configmap/seen"}),)
    )
    with pytest.raises(CheckFailed, match="configmap/seen"):
        run_with_steps(ctx, failing)
    assert "seen" not in _config_maps(ctx)
    assert ctx.caught[failing.id] == []  # nothing caught, nothing failed


def test_a_failing_finally_step_fails_a_passing_check(install_app: Any) -> None:
    ctx = install_app("web")
    _config_map(ctx, "second")
    check = Check(
        kind="ready",
        spec={},
        cleanup=(
            Step("delete", {"resource": "gizmo/one"}),
            Step("delete", {"resource": "configmap/second"}),  # runs all the same
        ),
    )
    with pytest.raises(CheckFailed) as info:
        run_with_steps(ctx, check)
    assert str(info.value).splitlines() == [
        "expected its finally steps to succeed; observed 1 failed",
        "  finally step 1 (delete gizmo/one): unknown resource type 'gizmo' (not served by "
        "this cluster)",
    ]
    assert "second" not in _config_maps(ctx)


def test_a_failing_finally_step_is_noted_on_a_failing_check(install_app: Any) -> None:
    ctx = install_app("web")
    check = Check(
        kind="wait", spec=FAILING_WAIT, cleanup=(Step("delete", {"resource": "gizmo/a"}),)
    )
    with pytest.raises(CheckFailed, match="configmap/seen"):  # not the finally step's failure
        run_with_steps(ctx, check)
    (noted,) = ctx.caught[check.id]
    assert noted.name == "finally.txt"
    assert noted.text.startswith("finally step 1 (delete gizmo/a): unknown resource type")


def test_finally_applies_a_manifest(install_app: Any) -> None:
    ctx = install_app("web")
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: '{{ .Release.Name }}-restored'}\ndata: {ns: '{{ .Release.Namespace }}'}\n"
    )
    run_with_steps(
        ctx, Check(kind="ready", spec={}, cleanup=(Step("apply", {"manifest": manifest}),))
    )
    restored = client.CoreV1Api(ctx.api).read_namespaced_config_map("web-restored", ctx.namespace)
    assert restored.data == {"ns": ctx.namespace}
    assert {"kind": "ConfigMap", "name": "web-restored"}.items() <= ctx.applied[-1].items()


def test_a_skipped_check_still_cleans_up(install_app: Any) -> None:
    ctx = install_app("web")
    _config_map(ctx, "skipped")
    check = Check(kind="ready", spec={}, cleanup=(Step("delete", {"resource": "cm/skipped"}),))

    def skip() -> None:
        pytest.skip("nothing to do")

    with pytest.raises(pytest.skip.Exception):
        run_with_steps(ctx, check, skip)
    assert "skipped" not in _config_maps(ctx)
    assert ctx.caught == {}


# --- a run: bundle, message, outcomes, reports -----------------------------------------------

SCENARIO = f"""\
apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: web
    chart: {WEB}
    checks:
      - ready: {{}}
        finally:
          - delete: {{resource: "service/{{{{ .Release.Name }}}}-web"}}
      - wait: {{resource: service/web-web, for: delete, timeout: 10s}}
        name: service-gone
      - wait: {{resource: deployment/web-web, for: "jsonpath={{.spec.replicas}}=7", timeout: 2s}}
        name: never
        catch:
          - events: {{resource: "deployment/{{{{ .Release.Name }}}}-web"}}
          - get: {{resource: "deploy/{{{{ .Release.Name }}}}-web"}}
          - get: {{resource: gizmo/x}}
        finally:
          - delete: {{resource: "deployment/{{{{ .Release.Name }}}}-web"}}
      - wait: {{resource: deployment/web-web, for: delete, timeout: 10s}}
        name: deployment-gone
      - wait: {{resource: configmap/nope, for: create, timeout: 1s}}
        name: known-bug
        xfail: "issue 99: nope is never made"
      - wait: {{resource: configmap/nope, for: delete, timeout: 1s}}
        name: fixed
        xfail: issue 98
      - wait: {{resource: configmap/nope, for: delete}}
        name: cleanup-fails
        finally:
          - delete: {{resource: "gizmo/{{{{ .Release.Name }}}}"}}
  - name: doomed
    chart: {WEB}
    xfail: chart bug 12
    checks:
      - wait: {{resource: configmap/nope, for: create, timeout: 1s}}
        name: missing
"""


def run(pytester: pytest.Pytester, cluster: ClusterInfo, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--kubeconfig={cluster.kubeconfig}", "-p", "no:cacheprovider", *args
    )


def test_a_scenario_run_reports_catch_finally_and_xfail(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    (pytester.path / "scen.suite.yaml").write_text(SCENARIO)
    result = run(pytester, harness_cluster, "--report-dir", "out", "-rxX", "--max-parallel", "2")
    result.assert_outcomes(passed=4, failed=2, xfailed=2, xpassed=2)
    out = result.stdout.str()
    assert "Traceback" not in out
    bundle = pytester.path / "out" / "bundles" / "scen" / "web"
    caught = bundle / "catch" / "never"
    assert f"catch: {caught}/ (1-events.yaml, 2-get.yaml, 3-get.yaml)" in out
    assert "ScalingReplicaSet" in (caught / "1-events.yaml").read_text()
    got = (caught / "2-get.yaml").read_text()
    assert "kind: Deployment" in got and "name: web-web" in got and "managedFields" not in got
    assert (
        "# could not collect: unknown resource type 'gizmo'" in (caught / "3-get.yaml").read_text()
    )
    junit = ElementTree.parse(pytester.path / "out" / "junit.xml").getroot()
    never = next(case for case in junit.iter("testcase") if case.get("name") == "never")
    ran_ahead = [p for p in never.iter("property") if p.get("name") == "ran_ahead"]
    assert ran_ahead, "the failing check ran ahead of its item (its catch with it)"
    index = (bundle / "index.txt").read_text()
    assert "catch/never/1-events.yaml" in index and "catch/never/3-get.yaml" in index
    assert "catch step 3 of never: get gizmo/x (failed: unknown resource type" in index
    # finally: after the pass (service-gone passed) and after the failure (deployment-gone)
    assert "web::cleanup-fails: expected its finally steps to succeed; observed 1 failed" in out
    assert "finally step 1 (delete gizmo/web): unknown resource type 'gizmo'" in out
    for line in (
        "XFAIL scen.suite.yaml::web::known-bug - issue 99: nope is never made",
        "XFAIL scen.suite.yaml::doomed::missing - chart bug 12",
        "XPASS scen.suite.yaml::web::fixed - issue 98",
        "XPASS scen.suite.yaml::doomed::install - chart bug 12",
    ):
        assert line in out, line

    results = json.loads((pytester.path / "out" / "results.json").read_text())
    assert {k: results["outcomes"][k] for k in ("passed", "failed", "xfailed", "xpassed")} == {
        "passed": 4,
        "failed": 2,
        "xfailed": 2,
        "xpassed": 2,
    }
    apps = {app["app"]: app for app in results["apps"]}
    items = {item["name"]: item for item in apps["web"]["items"]}
    assert items["known-bug"]["outcome"] == "xfailed"
    assert items["known-bug"]["xfail"] == "issue 99: nope is never made"
    assert items["fixed"]["outcome"] == "xpassed"
    assert items["ready"]["xfail"] is None
    doomed = {item["name"]: item for item in apps["doomed"]["items"]}
    assert [doomed["install"]["outcome"], doomed["missing"]["outcome"]] == ["xpassed", "xfailed"]
    assert apps["doomed"]["failed"] is False and apps["doomed"]["status"] == "passed"
    assert apps["web"]["status"] == "failed"

    markdown = (pytester.path / "out" / "report.md").read_text()
    assert "2 xfailed, 2 xpassed" in markdown
    assert "### Expected failures" in markdown
    assert "- scen / web · `known-bug` (xfailed): issue 99: nope is never made" in markdown
    assert "- scen / doomed · `install` (xpassed): chart bug 12" in markdown
    assert "expected to fail: issue 98" in (pytester.path / "out" / "report.html").read_text()


def test_an_xpass_fails_under_xfail_strict(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    (pytester.path / "scen.suite.yaml").write_text(SCENARIO)
    result = run(pytester, harness_cluster, "-o", "xfail_strict=true", "-k", "web and fixed")
    result.assert_outcomes(failed=1)  # -k: the install runs in the check's item
    assert "[XPASS(strict)] issue 98" in result.stdout.str()
