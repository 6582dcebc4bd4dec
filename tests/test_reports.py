"""The run's reports (junit.xml, results.json, report.html, ``helm-harness report``) from
real runs in a pytester sandbox against the session's kwok cluster, with and without
xdist; and the secrets policy: planted secrets reach no file and no output line."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import junitparser
import pytest
import xmlschema

from harness.cli.main import main as cli_main
from harness.clusters.base import ClusterInfo
from harness.plugin.state import APP_RECORD
from harness.report.evidence import redact_object
from harness.report.html import render
from harness.report.plugin import write_reports
from harness.report.recorder import RunRecorder
from harness.report.results import RunInfo, text_scrubber
from tests.conftest import FIXTURE_CHARTS

WEB = FIXTURE_CHARTS / "web"
XSD = Path(__file__).with_name("junit-minimal.xsd")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

SHOP = f"""
apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: web
    chart: {WEB}
    runbook: https://runbooks.example.org/web
    checks:
      - ready: {{}}
      - wait: {{resource: deployment/web-web, for: condition=Available}}
      - helmTest: {{}}
  - name: broken
    chart: {WEB}
    set: {{simulate.pods: crashloop}}
    runbook: https://runbooks.example.org/broken
    checks:
      - ready: {{}}
        timeout: 3s
  - name: bad
    chart: {WEB}
    set: {{replicaCount: not-a-number}}
    checks: [{{ready: {{}}}}]
"""
PLAIN_TESTS = """
def test_plain_passes():
    pass

def test_plain_fails():
    assert 1 == 2, "one is not two"
"""


def run(pytester: pytest.Pytester, cluster: ClusterInfo, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--kubeconfig={cluster.kubeconfig}",
        "-p",
        "no:cacheprovider",
        "--kwok-pod-startup=0",
        "--kwok-pod-jitter=0",
        *args,
    )


class Page(HTMLParser):
    """What the tests look for in report.html."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.app_rows: list[str] = []
        self.svgs = 0
        self.links: list[str] = []
        self.fetching: list[str] = []  # tags that would load something
        self.attributes: set[str] = set()  # the names of all attributes
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.attributes |= set(found)
        if tag == "tr" and found.get("class") == "app":
            self.app_rows.append(str(found.get("data-app")))
        elif tag == "svg":
            self.svgs += 1
        elif tag == "a":
            self.links.append(str(found.get("href")))
        elif tag in ("script", "link", "img", "iframe", "object", "embed") or "src" in found:
            self.fetching.append(tag)


def props_of(case: junitparser.TestCase) -> dict[str, str]:
    node = case.child(junitparser.Properties)
    return {str(p.name): str(p.value) for p in node} if node is not None else {}


def screenshot(page: Path, png: Path, tmp: Path) -> None:
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            f"--screenshot={png}",
            "--window-size=1280,2000",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize("workers", [None, "2"], ids=["serial", "xdist"])
def test_reports_of_a_run_with_failures(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, workers: str | None
) -> None:
    (pytester.path / "shop.suite.yaml").write_text(textwrap.dedent(SHOP).lstrip())
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    # loadfile, not the plugin's loadgroup: with pytest 9.2, xdist 3.8's loadgroup no longer
    # tags node ids with their group (it sets Item._nodeid, which pytest 9.2 ignores), so an
    # app's items could be split over workers. Reports do not depend on the scheduling.
    extra = ["-n", workers, "--dist", "loadfile"] if workers else []
    result = run(pytester, harness_cluster, "--report-dir=out", "--junitxml=plain.xml", *extra)
    result.assert_outcomes(passed=6, failed=3, skipped=1)
    out = pytester.path / "out"
    result.stdout.fnmatch_lines(["*helm-harness reports in *out: junit.xml, results.json*"])

    # junit.xml: valid, and read back by an independent parser
    junit = out / "junit.xml"
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    suites = list(junitparser.JUnitXml.fromfile(str(junit)))
    assert len(suites) == 1 and suites[0].tests == 10
    assert suites[0].failures == 3 and suites[0].skipped == 1 and suites[0].errors == 0
    suite_props = {p.name: p.value for p in suites[0].properties()}
    assert suite_props["cluster.provider"] == "existing"
    assert re.fullmatch(r"v1\.\d+\.\d+.*", suite_props["kubernetes_version"])
    cases = {(c.classname, c.name): c for c in suites[0]}
    assert set(cases) == {
        ("shop::web", "install"),
        ("shop::web", "ready"),
        ("shop::web", "wait[deployment/web-web]"),
        ("shop::web", "helmTest"),
        ("shop::broken", "install"),
        ("shop::broken", "ready"),
        ("shop::bad", "install"),
        ("shop::bad", "ready"),
        ("test_plain", "test_plain_passes"),
        ("test_plain", "test_plain_fails"),
    }
    failed = cases[("shop::broken", "ready")]
    (failure,) = failed.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message.startswith("broken::ready: expected Deployment broken-web ready")
    assert "\n" not in failure.message
    assert "runbook: https://runbooks.example.org/broken" in str(failure.text)
    assert "evidence: " in str(failure.text)
    props = props_of(failed)
    assert props["app"] == "broken" and props["suite"] == "shop" and props["check"] == "ready"
    assert props["chart"] == str(WEB) and props["chart_version"] == "0.1.0"
    assert props["namespace"].startswith("h-") and props["namespace"].endswith("-broken")
    assert props["bundle"].endswith("out/bundles/shop/broken")
    assert props["runbook"] == "https://runbooks.example.org/broken"
    assert float(props["duration_install"]) > 0
    assert APP_RECORD not in props
    assert float(props_of(cases[("shop::web", "install")])["duration_install"]) > 0
    assert "duration_ready" in props_of(cases[("shop::web", "helmTest")])
    assert cases[("shop::web", "helmTest")].is_passed
    assert cases[("shop::bad", "ready")].is_skipped
    assert "did not install" in cases[("shop::bad", "ready")].result[0].message
    plain = cases[("test_plain", "test_plain_fails")].result[0]
    assert plain.message == "AssertionError: one is not two"
    assert float(failed.time) >= 3.0  # the ready check waited for its 3s timeout

    # pytest's own --junitxml is untouched
    ours = junitparser.JUnitXml.fromfile(str(pytester.path / "plain.xml"))
    assert sum(suite.tests for suite in ours) == 10

    # results.json
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "helm-harness/results/v1" and results["run_id"]
    started = datetime.fromisoformat(results["started"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(results["finished"].replace("Z", "+00:00"))
    assert started.utcoffset() is not None and finished >= started
    assert results["duration_s"] > 3 and results["host"] and results["user"]
    assert "--report-dir=out" in results["pytest_args"]
    assert results["exit_status"] == 1
    assert results["cluster"]["provider"] == "existing"
    assert results["cluster"]["kubernetes_version"] == suite_props["kubernetes_version"]
    assert results["helm_version"].startswith("v")
    assert results["outcomes"] == {
        "passed": 6,
        "failed": 3,
        "error": 0,
        "skipped": 1,
        "xfailed": 0,
        "xpassed": 0,
        "total": 10,
    }
    apps = {app["app"]: app for app in results["apps"]}
    assert set(apps) == {"web", "broken", "bad"}
    web = apps["web"]
    assert web["status"] == "passed" and web["installed"] is True and web["failed"] is False
    assert web["suite"] == "shop" and web["chart_version"] == "0.1.0"
    assert web["values_digest"].startswith("sha256:")
    assert set(web["timings"]) >= {"install", "ready"}
    assert [i["name"] for i in web["items"]] == [
        "install",
        "ready",
        "wait[deployment/web-web]",
        "helmTest",
    ]
    assert web["items"][1]["check"] == "ready" and web["items"][1]["outcome"] == "passed"
    assert web["bundle"] is None and web["bundle_files"] == []
    broken = apps["broken"]
    assert (
        broken["status"] == "failed" and broken["runbook"] == "https://runbooks.example.org/broken"
    )
    assert broken["bundle"] == "bundles/shop/broken"
    assert "bundles/shop/broken/failure.txt" in broken["bundle_files"]
    assert "bundles/shop/broken/pods.yaml" in broken["bundle_files"]
    ready = broken["items"][1]
    assert ready["outcome"] == "failed" and ready["bundle"] == "bundles/shop/broken"
    assert ready["message"].startswith("broken::ready: expected Deployment broken-web ready")
    assert "CrashLoopBackOff" in ready["details"]
    bad = apps["bad"]
    assert bad["status"] == "failed" and bad["installed"] is False
    assert bad["install_error"] and bad["items"][0]["outcome"] == "failed"
    assert bad["items"][1]["outcome"] == "skipped"
    assert bad["items"][1]["message"].startswith("bad did not install")
    tests = {test["name"]: test for test in results["tests"]}
    assert tests["test_plain_passes"]["outcome"] == "passed"
    assert tests["test_plain_fails"]["message"] == "AssertionError: one is not two"
    assert tests["test_plain_fails"]["file"] == "test_plain.py"

    # report.html
    html = (out / "report.html").read_text()
    page = Page(html)
    assert sorted(page.app_rows) == ["shop::bad", "shop::broken", "shop::web"]
    assert page.svgs >= 2  # the outcome bar and the timings chart at least
    assert not page.fetching, "the page must not load anything"
    assert "bundles/shop/broken/failure.txt" in page.links
    assert "https://runbooks.example.org/broken" in page.links
    for link in page.links:
        if link.startswith(("bundles/", "metrics/")):
            assert (out / unquote(link)).is_file(), link
    assert "Kubernetes" in html and results["cluster"]["kubernetes_version"] in html
    assert "CPU (millicores)" in html or "No metric snapshots" in html
    assert "broken::ready: expected Deployment broken-web ready" in html

    # helm-harness report DIR renders the same page again from results.json
    (out / "report.html").unlink()
    assert cli_main(["report", str(out)]) == 0
    assert (out / "report.html").read_text() == html

    if CHROMIUM and workers is None:
        screenshot(out / "report.html", out / "report.png", pytester.path)
        assert (out / "report.png").stat().st_size > 20_000


def test_planted_secrets_reach_no_report_file_and_no_output(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    chart = pytester.path / "vault"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: vault\nversion: 0.2.0\n")
    (chart / "values.yaml").write_text("db: {password: ''}\nauth: {apiToken: ''}\n")
    (chart / "templates" / "secret.yaml").write_text(
        textwrap.dedent(
            """
            apiVersion: v1
            kind: Secret
            metadata: {name: "{{ .Release.Name }}-creds"}
            type: Opaque
            data:
              password: {{ .Values.db.password | b64enc }}
              extra: {{ "chartdata-PLANTED" | b64enc }}
            stringData:
              note: stringdata-PLANTED
            """
        )
    )
    (chart / "templates" / "deployment.yaml").write_text(
        textwrap.dedent(
            """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: "{{ .Release.Name }}-app"}
            spec:
              replicas: 1
              selector: {matchLabels: {app: "{{ .Release.Name }}"}}
              template:
                metadata:
                  labels: {app: "{{ .Release.Name }}"}
                  annotations: {helm-harness.io/simulate: crashloop}
                spec:
                  containers:
                    - name: app
                      image: registry.example.invalid/app:1
                      args: ["--db-password={{ .Values.db.password }}", "--pwd=argpwd-PLANTED"]
                      env:
                        - {name: API_TOKEN, value: envtoken-PLANTED}
                        - {name: DB_PWD, value: envpwd-PLANTED}
                        - {name: UPSTREAM, value: "https://bob:urlpass-PLANTED@example.invalid/x"}
                        - {name: SESSION_TOKEN, value: "{{ .Values.auth.apiToken }}"}
                        - {name: DSN, value: "postgres://app:{{ .Values.db.password }}@db/app"}
            """
        )
    )
    (chart / "templates" / "configmap.yaml").write_text(
        textwrap.dedent(
            """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: "{{ .Release.Name }}-settings"}
            data: {greeting: hello, db_passwd: cmsecret-PLANTED}
            """
        )
    )
    (pytester.path / "vault.suite.yaml").write_text(
        textwrap.dedent(
            f"""
            apiVersion: helm-harness/v1
            kind: Suite
            apps:
              - name: vault
                chart: {chart}
                values: {{db: {{password: hunter2-PLANTED}}}}
                set: {{auth.apiToken: settoken-PLANTED}}
                checks:
                  - ready: {{}}
                    timeout: 3s
            """
        ).lstrip()
    )
    result = run(pytester, harness_cluster, "--report-dir=out", "-v", "--log-cli-level=INFO")
    result.assert_outcomes(passed=1, failed=1)
    out = pytester.path / "out"
    bundle = out / "bundles" / "vault" / "vault"
    pods = (bundle / "pods.yaml").read_text()
    assert "API_TOKEN" in pods and "******" in pods, "the bundle shows the env var, masked"
    assert "--db-password=******" in pods and "--pwd=******" in pods
    assert "https://bob:******@example.invalid/x" in pods
    resources = (bundle / "resources.yaml").read_text()
    assert "greeting: hello" in resources and "db_passwd: '******'" in resources
    status = json.loads((bundle / "helm-status.json").read_text())
    assert status["info"]["status"] == "deployed" and "config" not in status
    assert "running: " in result.stdout.str(), "helm's command lines were logged"

    planted = [
        "hunter2-PLANTED",
        "settoken-PLANTED",
        "envtoken-PLANTED",
        "chartdata-PLANTED",
        "stringdata-PLANTED",
        "argpwd-PLANTED",
        "envpwd-PLANTED",
        "urlpass-PLANTED",
        "cmsecret-PLANTED",
    ]
    needles = ["PLANTED"] + [base64.b64encode(p.encode()).decode() for p in planted]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"junit.xml", "results.json", "report.html", "failure.txt"} <= {p.name for p in files}
    for path in files:
        text = path.read_text(errors="replace")
        for needle in needles:
            assert needle not in text, f"{needle} in {path.relative_to(out)}"
    for stream in (result.stdout.str(), result.stderr.str()):
        for needle in needles:
            assert needle not in stream


def test_a_plain_run_writes_no_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    assert not (pytester.path / "harness-report").exists()


def test_report_command_refuses_a_dir_without_a_run_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["report", str(tmp_path)]) == 4
    assert "no results.json" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{not json")
    assert cli_main(["report", str(tmp_path)]) == 4
    assert "not readable JSON" in capsys.readouterr().err
    (tmp_path / "results.json").write_text(json.dumps({"schema": "other", "apps": []}))
    assert cli_main(["report", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert "not a helm-harness run record" in err and "Traceback" not in err
    assert not (tmp_path / "report.html").exists()


# --- synthetic reports (no cluster) --------------------------------------------------------


def app_reports(
    suite: str, app: str, *, fail: bool, metrics: dict[str, Any] | None
) -> Iterator[pytest.TestReport]:
    """The reports of one app's items, as the plugin makes them."""
    props = [
        ("suite", suite),
        ("app", app),
        ("chart", f"/charts/{app}"),
        ("release", app),
        ("namespace", f"h-abc-{app}"),
        ("chart_version", "1.2.3"),
    ]
    names = ["install", "ready", "http[/healthz]"]
    for index, name in enumerate(names):
        nodeid = f"suites/{suite}.suite.yaml::{app}::{name}"
        location = (f"suites/{suite}.suite.yaml", 3, f"{suite}::{app}::{name}")
        item_props = list(props) + ([] if name == "install" else [("check", name.split("[")[0])])
        failing = fail and name == "ready"
        if failing:
            item_props.append(("bundle", f"/nowhere/bundles/{suite}/{app}"))
        yield pytest.TestReport(nodeid, location, {}, "passed", None, "setup", duration=0.001)
        yield pytest.TestReport(
            nodeid,
            location,
            {},
            "failed" if failing else "passed",
            f"{app}::ready: expected <b>ready</b> & API_TOKEN=oops\nmore" if failing else None,
            "call",
            duration=0.5,
            user_properties=item_props,
        )
        teardown_props = list(item_props)
        if index == len(names) - 1:
            record = {
                "suite": suite,
                "suite_file": f"/nowhere/{suite}.suite.yaml",
                "app": app,
                "chart": f"/charts/{app}",
                "chart_version": "1.2.3",
                "release": app,
                "namespace": f"h-abc-{app}",
                "values_digest": "sha256:00",
                "timings": {"install": 1.25, "ready": 2.5},
                "installed": True,
                "install_error": None,
                "failed": fail,
                "metrics": metrics,
                "runbook": None,
            }
            teardown_props.append((APP_RECORD, json.dumps(record)))
        yield pytest.TestReport(
            nodeid, location, {}, "passed", None, "teardown", user_properties=teardown_props
        )


def synthetic_report_dir(folder: Path) -> Path:
    recorder = RunRecorder()
    for index in range(4):
        metrics: dict[str, Any] = {"cpu_millicores": 20 + 40 * index}
        metrics["memory_bytes"] = (32 + index * 24) << 20
        metrics |= {"restarts": index, "time_to_ready_s": 2.0, "pods": {"p": {"cpu": 1}}}
        for report in app_reports("shop", f"app{index}", fail=index == 2, metrics=metrics):
            recorder.add(report)
    info = RunInfo(run_id="synthetic", started=1_700_000_000.0, finished=1_700_000_012.5)
    info.cluster = {"provider": "kwok", "name": "hh-x", "kubernetes_version": "v1.36.3"}
    write_reports(recorder, info, folder)
    return folder


def test_metric_figures_reach_junit_properties_and_charts(tmp_path: Path) -> None:
    out = synthetic_report_dir(tmp_path / "report")
    xmlschema.XMLSchema(str(XSD)).validate(str(out / "junit.xml"))
    (suite,) = junitparser.JUnitXml.fromfile(str(out / "junit.xml"))
    cases = {(c.classname, c.name): c for c in suite}
    props = props_of(cases[("shop::app1", "ready")])
    assert props["metrics.cpu_millicores"] == "60"
    assert props["metrics.memory_bytes"] == str(56 << 20)
    assert props["metrics.restarts"] == "1" and props["metrics.time_to_ready_s"] == "2.0"
    assert not any(name.startswith("metrics.pods") for name in props)
    assert props["duration_install"] == "1.250" and props["duration_ready"] == "2.500"
    failure = cases[("shop::app2", "ready")].result[0]
    assert failure.message == "app2::ready: expected <b>ready</b> & API_TOKEN=******"
    html = (out / "report.html").read_text()
    page = Page(html)
    assert page.svgs == 4 and "CPU (millicores)" in html and "Memory (MiB)" in html
    assert "<b>ready</b>" not in html and "&lt;b&gt;ready&lt;/b&gt; &amp; API_TOKEN" in html
    assert "oops" not in html + (out / "results.json").read_text()


def test_report_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup installs it where apt-get works)")
    out = synthetic_report_dir(tmp_path / "report")
    png = out / "report.png"
    screenshot(out / "report.html", png, tmp_path)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_markup_in_the_record_is_escaped_in_the_page() -> None:
    """Names, messages and paths from the record are text in the page, never markup: no
    element, attribute or link comes from them."""
    evil = "<script>alert(1)</script>"
    quote = '" onmouseover="alert(2)'
    item = {
        "name": f"ready{evil}",
        "id": f"s::a::{evil}",
        "outcome": "failed",
        "message": f"expected {evil} {quote}",
        "details": f"</pre>{evil}",
        "runbook": "javascript:alert(3)",
    }
    app = {
        "suite": f"shop{evil}",
        "app": f"web{quote}",
        "chart": f"/charts/{evil}",
        "namespace": evil,
        "status": "failed",
        "install_error": None,
        "items": [item],
        "metrics": {"cpu_millicores": 5, "file": f"metrics/{evil}.json"},
        "runbook": f"https://runbooks.example.org/{quote}",
        "bundle": "bundles/s/a",
        "bundle_files": ["bundles/s/a/failure.txt", f"../{evil}", "javascript:alert(4)"],
    }
    test = {"id": f"test_x.py::t{evil}", "outcome": "failed", "message": f"boom {evil}"}
    results = {
        "schema": "helm-harness/results/v1",
        "run_id": evil,
        "user": quote,
        "host": evil,
        "cluster": {"provider": evil, "name": quote, "kubernetes_version": evil},
        "helm_version": evil,
        "outcomes": {"failed": 2, "total": 2},
        "apps": [app],
        "tests": [test],
    }
    html = render(results)
    page = Page(html)
    assert "<script" not in html.lower() and not page.fetching
    assert page.app_rows == [f"shop{evil}::web{quote}"]  # the attribute value, as text
    assert not [name for name in page.attributes if name.startswith("on")]
    assert sorted(page.links) == [
        "#failures",
        "bundles/s/a/failure.txt",
        f"https://runbooks.example.org/{quote}",  # an attribute value: the quotes are escaped
        "junit.xml",
        "metrics/%3Cscript%3Ealert%281%29%3C/script%3E.json",
        "results.json",
    ]
    for text in (f"shop{evil}", f"expected {evil}", f"boom {evil}", "javascript:alert(3)"):
        assert text.replace("<", "&lt;").replace(">", "&gt;") in html


def test_the_page_module_loads_jinja2_on_first_render_only() -> None:
    import sys

    code = (
        "import sys, harness.plugin, harness.report.html as h\n"
        "assert 'jinja2' not in sys.modules, 'jinja2 imported with the plugin'\n"
        "h.render({'apps': [], 'tests': [], 'outcomes': {}})\n"
        "assert 'jinja2' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_redaction_of_objects_and_text() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "args": ["--api-key", "k1", "--token=t1", "--port=80"],
                    "env": [{"name": "DB_PASSWORD", "value": "p"}, {"name": "PORT", "value": "80"}],
                }
            ]
        },
    }
    clean = redact_object(pod)
    container = clean["spec"]["containers"][0]
    assert container["args"] == ["--api-key", "******", "--token=******", "--port=80"]
    assert container["env"] == [
        {"name": "DB_PASSWORD", "value": "******"},
        {"name": "PORT", "value": "80"},
    ]
    assert clean["metadata"]["annotations"] == {}
    scrub = text_scrubber(["s3cr3t-value"])
    assert scrub("x s3cr3t-value y PASSWORD=abc port=80") == "x ****** y PASSWORD=****** port=80"
    assert render({"apps": [], "tests": [], "outcomes": {}}).startswith("<!DOCTYPE html>")


def test_a_killed_run_leaves_the_record_of_what_it_saw(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """SIGKILL leaves no chance to write reports at the end: the record written as the
    run goes is there, marked incomplete, with the items that had finished."""
    import signal
    import sys
    import time

    (pytester.path / "slow.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: web\n    chart: {FIXTURE_CHARTS / 'web'}\n    checks:\n"
        "      - ready: {}\n"
        "      - {wait: {resource: cm/never, for: create}, timeout: 120s, name: never}\n"
    )
    record = pytester.path / "out" / "results.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", f"--kubeconfig={harness_cluster.kubeconfig}",
         "-p", "no:cacheprovider", "--kwok-pod-startup=0", "--report-dir=out"],
        cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if record.exists():
                seen = json.loads(record.read_text())
                if seen["outcomes"]["total"] >= 2:
                    break
            time.sleep(0.3)
        assert seen, "no record was written while the run went"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    left = json.loads(record.read_text())
    assert left["complete"] is False and left["exit_status"] is None
    items = {item["name"]: item["outcome"] for app in left["apps"] for item in app["items"]}
    assert items == {"install": "passed", "ready": "passed"}
    assert not (pytester.path / "out" / "junit.xml").exists()  # only the end writes those


def test_a_secret_quoted_in_a_helm_error_reaches_no_output(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """A template's fail printed a value: once it reached stdout, the bundle's
    failure.txt and pytest's own --junitxml. Helm's reasons are scrubbed at the source."""
    chart = pytester.path / "leaky"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: leaky\nversion: 0.1.0\n")
    (chart / "templates" / "fail.yaml").write_text(
        '{{ fail (printf "cannot reach the db with %s and %s" .Values.db.password'
        " .Values.apiToken) }}\n"
    )
    (pytester.path / "values-ci.yaml").write_text("apiToken: filetoken-PLANTED\n")
    (pytester.path / "leaky.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: leaky\n    chart: {chart}\n    valuesFiles: [values-ci.yaml]\n"
        "    set: {db.password: quoted-PLANTED}\n    checks: [{ready: {}}]\n"
    )
    result = run(
        pytester, harness_cluster, "--report-dir=out", "--junitxml=plain.xml", "-v",
        "--log-cli-level=INFO",
    )  # fmt: skip
    result.assert_outcomes(failed=1, skipped=1)
    assert "cannot reach the db with ****** and ******" in result.stdout.str()
    texts = [result.stdout.str(), result.stderr.str(), (pytester.path / "plain.xml").read_text()]
    texts += [
        p.read_text(errors="replace") for p in (pytester.path / "out").rglob("*") if p.is_file()
    ]
    for text in texts:
        assert "PLANTED" not in text
