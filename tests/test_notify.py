"""Alerts (``--notify URL``): real runs in a pytester sandbox against the session's kwok
cluster, sending to webhooks on 127.0.0.1 (``http.server`` in a thread) that record what
they receive: one message per failing run in each body, none for a passing run, retries,
a URL that refuses or never answers (a warning, the run's exit code and reports
untouched, within the bound), Ctrl-C while waiting; no secret in a payload and no token
in any output. Then the parts without a cluster: URLs, options, bodies, retry rules."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.clusters.base import ClusterInfo
from harness.redact import redact_args
from harness.report.notify import (
    MAX_SLACK_APPS,
    NOTIFICATION_SCHEMA,
    Target,
    ci_run_url,
    json_body,
    parse_target,
    send,
    slack_body,
)
from tests.conftest import FIXTURE_CHARTS
from tests.test_interrupts import Run
from tests.test_reports import run

WEB = FIXTURE_CHARTS / "web"
TOKEN = "TOKEN-PLANTED"  # the secret part of every webhook URL here


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Hook:
    """A webhook on 127.0.0.1: answers each request with the next of ``answers`` (then
    200) and records it."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T0/B0/{TOKEN}"

    @property
    def shown(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def hook() -> Iterator[Callable[..., Hook]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*answers: int | tuple[int, dict[str, str]]) -> Hook:
        made = Hook([a if isinstance(a, tuple) else (a, {}) for a in answers])

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                made.received.append(Received(self.path, dict(self.headers), body))
                status, headers = made.answers.pop(0) if made.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        made.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return made

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class Silent:
    """A port on 127.0.0.1 that takes connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []  # time.monotonic() of each connection
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self.connections.append(conn)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    port = Silent()
    yield port
    port.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broken_app(name: str = "broken") -> str:
    """An app whose one check fails after 1s, with owners and runbooks."""
    return f"""
  - name: {name}
    chart: {WEB}
    owners: [team-shop, alice@example.org]
    runbook: https://runbooks.example.org/{name}
    checks:
      - wait: {{resource: configmap/never, for: create}}
        timeout: 1s
        name: never
        runbook: https://runbooks.example.org/never
"""


def write_suite(folder: Path, apps: str) -> None:
    head = "apiVersion: helm-harness/v1\nkind: Suite\nmetadata: {name: shop}\n"
    (folder / "shop.suite.yaml").write_text(
        f"{head}defaults: {{owners: [team-platform]}}\napps:{apps}"
    )


def leaky_app(folder: Path) -> str:
    """An app whose install fails with Helm quoting a value given under a secret key."""
    chart = folder / "leaky"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: leaky\nversion: 0.1.0\n")
    (chart / "templates" / "fail.yaml").write_text(
        '{{ fail (printf "cannot reach the db with %s" .Values.db.password) }}\n'
    )
    return f"""
  - name: leaky
    chart: {chart}
    set: {{db.password: quoted-PLANTED}}
    checks: [{{ready: {{}}}}]
"""


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def report_texts(folder: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]


# --- real runs ------------------------------------------------------------------------------


def test_a_failing_run_sends_one_alert_to_each_url_in_its_body(
    pytester: pytest.Pytester,
    harness_cluster: ClusterInfo,
    hook: Callable[..., Hook],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain, slack = hook(), hook()
    web = f"\n  - name: web\n    chart: {WEB}\n    checks: [{{ready: {{}}}}]\n"
    write_suite(pytester.path, web + broken_app() + leaky_app(pytester.path))
    # From the environment, as a CI secret: two URLs, the second Slack's.
    monkeypatch.setenv("HELM_HARNESS_NOTIFY", f"  {plain.url}\n slack+{slack.url} ")
    result = run(pytester, harness_cluster, "--report-dir=out")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"helm-harness: alert sent to {plain.shown} (json, 1 attempt)",
            f"helm-harness: alert sent to {slack.shown} (slack, 1 attempt)",
        ],
        consecutive=False,
    )
    assert len(plain.received) == 1 and len(slack.received) == 1
    out = pytester.path / "out"
    results = json.loads((out / "results.json").read_text())

    (message,) = plain.received
    assert message.path == f"/services/T0/B0/{TOKEN}"
    assert message.headers["Content-Type"].startswith("application/json")
    body = message.json
    assert body["schema"] == NOTIFICATION_SCHEMA and body["outcome"] == "failed"
    assert body["run_id"] == results["run_id"] and body["exit_status"] == 1
    assert body["counts"] == results["outcomes"]
    assert body["report"]["dir"] == str(out) and body["report"]["html"] == str(out / "report.html")
    apps = {row["app"]: row for row in body["failed_apps"]}
    assert set(apps) == {"broken", "leaky"}  # web passed
    broken = apps["broken"]
    assert broken["suite"] == "shop" and broken["owners"] == ["team-shop", "alice@example.org"]
    assert broken["item"] == "shop.suite.yaml::broken::never" and broken["check"] == "wait"
    assert broken["cause"].startswith("broken::never: ") and "\n" not in broken["cause"]
    assert broken["runbook"] == "https://runbooks.example.org/never"  # the check's own
    assert broken["bundle"] == "bundles/shop/broken"
    leaky = apps["leaky"]
    assert leaky["owners"] == ["team-platform"] and leaky["item"].endswith("::leaky::install")
    assert "cannot reach the db with ******" in leaky["cause"] and leaky["runbook"] is None

    (posted,) = slack.received
    blocks = posted.json["blocks"]
    assert posted.json["text"].startswith(f"helm-harness run {results['run_id']}: 2 failed")
    assert blocks[0]["type"] == "header"
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    shown = next(text for text in sections if "*shop/broken*" in text)
    assert shown.startswith("*shop/broken* failed at `never`\n> broken::never: ")
    assert "owners: team-shop, alice@example.org" in shown
    assert "runbook: <https://runbooks.example.org/never|https://runbooks.example.org/never>" in (
        shown
    )
    assert str(out / "report.html") in blocks[-1]["elements"][0]["text"]

    for text in [plain.received[0].body.decode(), slack.received[0].body.decode()]:
        assert "PLANTED" not in text  # neither the --set secret nor the URL's token
    for text in [output(result), *report_texts(out)]:
        assert TOKEN not in text and "PLANTED" not in text


def test_a_passing_run_sends_nothing(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, hook: Callable[..., Hook]
) -> None:
    target = hook()
    write_suite(
        pytester.path, f"\n  - name: web\n    chart: {WEB}\n    checks: [{{ready: {{}}}}]\n"
    )
    result = run(pytester, harness_cluster, "--report-dir=out", f"--notify={target.url}")
    result.assert_outcomes(passed=2)
    assert target.received == []
    assert "alert" not in output(result)


def test_answers_500_twice_then_200_take_three_attempts_from_the_controller_alone(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, hook: Callable[..., Hook]
) -> None:
    target = hook(500, 503)
    write_suite(pytester.path, broken_app() + broken_app("other"))
    result = run(
        pytester, harness_cluster, "--report-dir=out", "--notify", target.url,
        "-n", "2", "--dist", "loadfile",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=2)
    assert len(target.received) == 3  # the workers sent none
    assert target.received[0].body == target.received[2].body
    result.stdout.fnmatch_lines([f"helm-harness: alert sent to {target.shown} (json, 3 attempts)"])
    args = json.loads((pytester.path / "out" / "results.json").read_text())["pytest_args"]
    assert f"{target.shown}/******" in args
    assert TOKEN not in output(result)


def test_a_refusing_and_a_silent_url_warn_and_the_run_ends_within_the_bound(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, silent: Silent
) -> None:
    refusing = closed_port()
    write_suite(pytester.path, broken_app())
    result = run(
        pytester, harness_cluster, "--report-dir=out", "--notify-timeout=3s",
        f"--notify=http://127.0.0.1:{refusing}/hook/{TOKEN}",
        f"--notify=slack+http://127.0.0.1:{silent.port}/hook/{TOKEN}",
    )  # fmt: skip
    ended = time.monotonic()
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # as without alerts
    assert len(silent.accepted) == 1, "one attempt, which the bound cut short"
    assert ended - silent.accepted[0] < 3 + 5, "the run ended soon after the bound"
    result.stdout.fnmatch_lines(
        [
            f"helm-harness: warning: alert to http://127.0.0.1:{refusing} not sent: "
            "connection refused (3 attempts)",
            f"helm-harness: warning: alert to http://127.0.0.1:{silent.port} not sent: "
            "no answer within * (1 attempt)",
        ],
        consecutive=False,
    )
    out = pytester.path / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["exit_status"] == 1 and results["complete"] is True
    assert {"junit.xml", "report.html"} <= {p.name for p in out.iterdir()}
    assert TOKEN not in output(result)


def test_ctrl_c_ends_the_wait_for_an_alert(
    tmp_path: Path, harness_cluster: ClusterInfo, silent: Silent
) -> None:
    write_suite(tmp_path, broken_app())
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    started = Run(
        tmp_path, f"--kubeconfig={harness_cluster.kubeconfig}", "--kwok-pod-startup=0",
        "--kwok-pod-jitter=0", "--report-dir=out", "--notify-timeout=2m",
        f"--notify=http://127.0.0.1:{silent.port}/hook/{TOKEN}",
    )  # fmt: skip
    try:
        started.wait_until("the alert's connection", lambda: bool(silent.accepted), timeout=120)
        asked = time.monotonic()
        started.send(signal.SIGINT)
        code = started.finish(timeout=30)
    finally:
        started.kill()
    assert time.monotonic() - asked < 10
    assert code == pytest.ExitCode.TESTS_FAILED, started.output
    assert (
        f"helm-harness: warning: interrupted while sending the alert to "
        f"http://127.0.0.1:{silent.port}" in started.output
    )
    assert "Traceback" not in started.output and TOKEN not in started.output
    assert json.loads((tmp_path / "out" / "results.json").read_text())["exit_status"] == 1


# --- without a cluster ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "form", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/x", "slack", "https://hooks.slack.com"),
        ("https://hooks.slack.com/triggers/T0/1/x", "json", "https://hooks.slack.com"),
        ("json+https://hooks.slack.com/services/T0/B0/x", "json", "https://hooks.slack.com"),
        ("slack+https://chat.example.org/hooks/x", "slack", "https://chat.example.org"),
        ("HTTP://user:pw@[::1]:8080/x?token=y", "json", "http://[::1]:8080"),
    ],
)
def test_an_alert_url_and_its_body(text: str, form: str, shown: str) -> None:
    target = parse_target(f" {text} ")
    assert (target.format, target.shown, str(target)) == (form, shown, shown)
    assert repr(target) == f"Target(format={form!r})"  # no part of the URL


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"ftp://example.org/{TOKEN}", "an http:// or https:// URL"),
        (f"teams+https://example.org/{TOKEN}", "teams+ in front of an alert URL is no format"),
        (f"https:///{TOKEN}", "needs a host"),
        (f"https://example.org:{TOKEN}/x", "malformed host or port"),
        (TOKEN, "an http:// or https:// URL"),
    ],
)
def test_a_bad_alert_url_is_refused_without_quoting_it(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)) as caught:
        parse_target(text)
    assert TOKEN not in str(caught.value)


SHOW = """
    def test_show(pytestconfig):
        o = pytestconfig.option
        shown = [f"{t.format}:{t.shown}" for t in o.harness_notify]
        print("TARGETS", " ".join(shown) or "-", o.harness_notify_timeout)
"""


def targets(result: pytest.RunResult) -> list[str]:
    line = next(line for line in result.outlines if "TARGETS " in line)
    return line.split("TARGETS ", 1)[1].split()


def test_where_the_urls_come_from(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(
        "[pytest]\nhelm_harness_notify =\n    http://ini.example/a\n    slack+http://ini.example/b\n"
        "helm_harness_notify_timeout = 5s\n"
    )
    pytester.makepyfile(SHOW)
    monkeypatch.delenv("HELM_HARNESS_NOTIFY", raising=False)
    assert targets(pytester.runpytest("-s")) == [
        "json:http://ini.example",
        "slack:http://ini.example",
        "5.0",
    ]
    monkeypatch.setenv("HELM_HARNESS_NOTIFY", "https://env.example/a")
    assert targets(pytester.runpytest("-s")) == ["json:https://env.example", "5.0"]
    given = pytester.runpytest(
        "-s", "--notify", "https://hooks.slack.com/services/a", "--notify=http://cli.example/b"
    )
    assert targets(given) == ["slack:https://hooks.slack.com", "json:http://cli.example", "5.0"]
    monkeypatch.delenv("HELM_HARNESS_NOTIFY")
    assert targets(pytester.runpytest("-s", "-o", "helm_harness_notify=")) == ["-", "5.0"]


def test_a_bad_url_in_the_environment_is_a_usage_error_that_hides_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(SHOW)
    monkeypatch.setenv("HELM_HARNESS_NOTIFY", f"https://ok.example/x ftp://bad.example/{TOKEN}")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*$HELM_HARNESS_NOTIFY = (not shown: it may hold a token): *"])
    assert TOKEN not in output(result) and "Traceback" not in output(result)


def test_command_lines_show_an_alert_url_as_its_scheme_and_host() -> None:
    args = [
        "--notify", f"https://hooks.slack.com/services/T0/B0/{TOKEN}",
        f"--notify=slack+https://bot:{TOKEN}@chat.example:8443/x?t={TOKEN}",
        "-o", f"helm_harness_notify=http://a.example/{TOKEN} http://b.example/{TOKEN}",
        f"--override-ini=helm_harness_notify=http://c.example/{TOKEN}",
        "--report-dir=out",
    ]  # fmt: skip
    assert redact_args(args) == [
        "--notify", "https://hooks.slack.com/******",
        "--notify=slack+https://chat.example:8443/******",
        "-o", "helm_harness_notify=http://a.example/****** http://b.example/******",
        "--override-ini=helm_harness_notify=http://c.example/******",
        "--report-dir=out",
    ]  # fmt: skip


def record(apps: int, *, cause: str = "expected ready") -> dict[str, Any]:
    """A run record (as results.json has it) with ``apps`` failed apps and a failed test."""
    rows = [
        {
            "suite": "shop",
            "app": f"app{index}",
            "status": "failed",
            "owners": ["team-<b>&"],
            "runbook": "https://runbooks.example.org/a|b",
            "bundle": f"bundles/shop/app{index}",
            "items": [
                {"id": f"s.suite.yaml::app{index}::install", "outcome": "passed"},
                {
                    "id": f"s.suite.yaml::app{index}::ready",
                    "check": "ready",
                    "outcome": "failed",
                    "message": f"\x1b[31m{cause}\x1b[0m\nsecond line",
                    "runbook": None,
                },
            ],
        }
        for index in range(apps)
    ]
    rows.append({"suite": "shop", "app": "fine", "status": "passed", "items": []})
    failed_test = {"id": "test_x.py::test_y", "outcome": "failed", "message": "assert `1` == 2"}
    return {
        "run_id": "r1",
        "outcomes": {"passed": 1, "failed": apps + 1, "error": 0, "total": apps * 2 + 2},
        "apps": rows,
        "tests": [failed_test, {"id": "test_x.py::test_z", "outcome": "passed"}],
    }


def test_the_bodies_of_a_record() -> None:
    plain = json_body(record(2), Path("/r"))
    assert plain["text"] == "helm-harness run r1: 3 failed, 1 passed of 6 items"
    first = plain["failed_apps"][0]
    assert first["cause"] == "expected ready" and first["check"] == "ready"
    assert first["failed_items"] == ["s.suite.yaml::app0::ready"]
    assert first["runbook"] == "https://runbooks.example.org/a|b"  # the app's, no item's
    assert plain["failed_tests"] == [{"test": "test_x.py::test_y", "cause": "assert `1` == 2"}]
    assert plain["failed_apps_omitted"] == 0 and len(plain["failed_apps"]) == 2

    slack = slack_body(record(MAX_SLACK_APPS + 3, cause="a <b> & c"), Path("/r"))
    sections = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    assert len(sections) == MAX_SLACK_APPS + 1  # the apps shown, then the failed tests
    assert sections[0] == (
        "*shop/app0* failed at `ready`\n> a &lt;b&gt; &amp; c\nowners: team-&lt;b&gt;&amp; · "
        "runbook: <https://runbooks.example.org/a%7Cb|https://runbooks.example.org/a|b> · "
        "bundle: `bundles/shop/app0`"
    )
    assert sections[-1] == "*failed tests*\n`test_x.py::test_y`: assert `1` == 2"
    contexts = [b["elements"][0]["text"] for b in slack["blocks"] if b["type"] == "context"]
    assert contexts[0] == "and 3 more failed apps"
    assert len(slack["blocks"]) <= 50


def test_the_ci_run_is_linked_when_there_is_one() -> None:
    github = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "42",
    }
    assert ci_run_url(github) == "https://github.com/o/r/actions/runs/42"
    assert ci_run_url({"CI_JOB_URL": "https://gitlab.example/j/1"}) == "https://gitlab.example/j/1"
    assert ci_run_url({}) is None


def test_what_is_retried_and_what_is_not(hook: Callable[..., Hook]) -> None:
    gone, busy, moved = hook(404), hook((429, {"Retry-After": "1"})), hook(302)
    targets = [Target("json", h.url) for h in (gone, busy, moved)]
    began = time.monotonic()
    deliveries = send(targets, record(1), Path("/r"), bound=20)
    took = time.monotonic() - began
    outcomes = [(d.attempts, d.outcome) for d in deliveries]
    assert outcomes[0][0] == 1 and outcomes[0][1] is not None and not outcomes[0][1][0]
    assert str(outcomes[0][1][1]) == f"{gone.shown}: HTTP 404 Not Found"
    assert outcomes[1] == (2, (True, None)) and took >= 1.0, "429 waited for its Retry-After"
    assert outcomes[2][0] == 1 and "redirects are not followed" in str(outcomes[2][1])
    assert len(moved.received) == 1


def test_nothing_is_sent_for_a_run_without_the_harness(
    pytester: pytest.Pytester, hook: Callable[..., Hook]
) -> None:
    target = hook()
    pytester.makepyfile("def test_fails():\n    assert False\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--notify={target.url}")
    result.assert_outcomes(failed=1)
    assert target.received == [] and "alert" not in output(result)
