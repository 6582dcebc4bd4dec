"""``helm-harness init``: starter suites rendered from the fixture charts with the real Helm,
validated, and collected by pytest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from harness.cli.init import HttpCheck, Rendered, _http_ports, suite_text
from harness.cli.main import main
from harness.suite.model import load_suite
from tests.conftest import FIXTURE_CHARTS, tiny_chart


def init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["init", *args])
    out, err = capsys.readouterr()
    return code, out, err


def checks_of(path: Path) -> list[dict[str, object]]:
    doc = yaml.safe_load(path.read_text())
    checks: list[dict[str, object]] = doc["apps"][0]["checks"]
    return checks


def test_web_gets_ready_helm_test_and_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    chart = os.path.relpath(FIXTURE_CHARTS / "web", tmp_path)  # as a user would type it
    code, out, err = init(capsys, chart, "-o", "suites/web.suite.yaml")
    assert (code, err) == (0, "")
    assert out == "wrote suites/web.suite.yaml: app web, items install, ready, helmTest, http[/]\n"
    written = tmp_path / "suites" / "web.suite.yaml"
    assert checks_of(written) == [
        {"ready": {}},
        {"helmTest": {}},
        {"http": {"service": "web-web", "port": 80, "path": "/", "expect": {"status": 200}}},
    ]
    suite = load_suite(written)
    assert suite.apps[0].source.chart == str(FIXTURE_CHARTS / "web")  # relative to the file
    text = written.read_text()
    assert text.startswith("# A starter suite for the chart ")
    for explained in (
        "- ready:",
        "Deployment/web-web",
        "- helmTest:",
        "Pod/web-web-test",
        "- http:",
    ):
        assert explained in text
    assert "edit it" in text


def test_db_has_no_helm_test_and_no_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = init(capsys, str(FIXTURE_CHARTS / "db"))
    assert code == 0 and "items install, ready\n" in out
    written = tmp_path / "db.suite.yaml"
    assert checks_of(written) == [{"ready": {}}]
    text = written.read_text()
    assert "StatefulSet/db" in text and "Service/db" in text
    assert "db-headless" not in text  # headless: no endpoints to wait for, nothing to GET
    assert "claims volumes" in text
    assert load_suite(written).apps[0].source.chart == str(FIXTURE_CHARTS / "db")


def test_the_written_suite_collects_as_expected(pytester: pytest.Pytester) -> None:
    assert (
        main(["init", str(FIXTURE_CHARTS / "web"), "-o", str(pytester.path / "web.suite.yaml")])
        == 0
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "web.suite.yaml::web::install",
            "web.suite.yaml::web::ready",
            "web.suite.yaml::web::helmTest",
            "web.suite.yaml::web::http[[]/[]]",
            "*4 tests collected*",
        ]
    )


def test_a_missing_chart_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = init(capsys, "charts/nope")
    assert code == 4 and out == ""
    assert err == (
        "helm-harness: error: chart not found: charts/nope (a chart folder or .tgz; "
        "or give --repo)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_chart_helm_cannot_render_gives_helms_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tiny_chart(tmp_path, "bad", '{{ fail "the database password is required" }}\n')
    monkeypatch.chdir(tmp_path)
    code, _, err = init(capsys, str(chart))
    assert code == 4
    assert err.startswith(f"helm-harness: error: cannot render chart {chart}: ")
    assert "execution error at (bad/templates/bad.yaml" in err
    assert "the database password is required" in err and "Traceback" not in err
    assert not (tmp_path / "bad.suite.yaml").exists()


def test_an_existing_file_is_kept_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "web.suite.yaml").write_text("mine\n")
    code, _, err = init(capsys, str(FIXTURE_CHARTS / "web"))
    assert code == 4 and "web.suite.yaml exists" in err and "--force" in err
    assert (tmp_path / "web.suite.yaml").read_text() == "mine\n"
    code, _, _ = init(
        capsys, str(FIXTURE_CHARTS / "web"), "-o", "web.suite.yaml", "--force", "--name", "front"
    )
    assert code == 0
    suite = load_suite(tmp_path / "web.suite.yaml")
    assert suite.apps[0].name == "front"  # release front: its Service is front-web
    assert checks_of(tmp_path / "web.suite.yaml")[2]["http"] == {
        "service": "front-web",
        "port": 80,
        "path": "/",
        "expect": {"status": 200},
    }


def test_stdout_output_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = init(capsys, str(FIXTURE_CHARTS / "web"), "-o", "-")
    assert code == 0 and "kind: Suite" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--version", "1.0.0"], "--version applies to charts from a repo"),
        (["--name", "Web_App"], "--name 'Web_App': an app name is lower-case"),
    ],
)
def test_bad_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = init(capsys, str(FIXTURE_CHARTS / "web"), *args, "-o", "-")
    assert code == 4 and message in err


def port(number: int, name: str = "", **more: str) -> dict[str, object]:
    return {"port": number, **({"name": name} if name else {}), **more}


def test_which_ports_look_like_http() -> None:
    ports = [
        port(80, "http"),
        port(8443, "https"),
        port(443, "web"),
        port(9090, "http-metrics"),
        port(9100, "metrics"),
        port(8080),
        port(5432, "db"),
        port(50051, "grpc-http"),
        port(8081, "admin", appProtocol="http"),
        port(3000, "ui", protocol="UDP"),
    ]
    assert _http_ports("svc", ports) == [
        HttpCheck("svc", 80, "http", "/"),
        HttpCheck("svc", 9090, "http-metrics", "/metrics"),
        HttpCheck("svc", 9100, "metrics", "/metrics"),
        HttpCheck("svc", 8080, "", "/"),
        HttpCheck("svc", 8081, "admin", "/"),
    ]


def test_http_checks_with_the_same_path_are_named_apart(tmp_path: Path) -> None:
    rendered = Rendered(
        workloads=["Deployment/a"],
        http=[HttpCheck("a", 80, "http", "/"), HttpCheck("b", 8080, "web", "/")],
    )
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: a\nversion: 0.1.0\n")
    path = tmp_path / "a.suite.yaml"
    path.write_text(
        suite_text(
            app="a", chart="chart", chart_shown="chart", repo=None, version=None, rendered=rendered
        )
    )
    checks = load_suite(path).apps[0].checks or ()
    assert [check.id for check in checks] == ["ready", "http[a:80/]", "http[b:8080/]"]
