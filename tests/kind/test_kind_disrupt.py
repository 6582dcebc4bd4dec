"""``disrupt`` and the alerts on real containers: pods deleted and a rollout restarted on
the kind cluster, whose replacements are real containers that must pass a real
readinessProbe (the fixture app answers /healthz only after ``readyDelay``), so the
recovery times recorded come from real pods; a drain, which a single-node cluster skips
with its reason; and a failing app (a container that really crashes) whose alert reaches
a webhook on 127.0.0.1 that records what it receives. One suite, one run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.clusters.base import ClusterInfo
from tests.conftest import FIXTURE_CHARTS
from tests.kind.conftest import kind_args

WEB = FIXTURE_CHARTS / "web"
DELAY = 4  # seconds a new fixture container answers /healthz 503 (readyDelay)
SUITE = f"""
apiVersion: helm-harness/v1
kind: Suite
metadata: {{name: recover}}
defaults: {{timeout: 90s, owners: [team-platform]}}
apps:
  - name: pods
    chart: {WEB}
    values: {{replicaCount: 2, readyDelay: {DELAY}s}}
    checks:
      - ready: {{}}
      - disrupt: {{deletePods: {{all: true}}}}
      - disrupt: {{drain: {{}}}}
      - logs: {{contains: ["ready after {DELAY}s"]}}
  - name: rollout
    chart: {WEB}
    values: {{readyDelay: {DELAY}s}}
    checks:
      - ready: {{}}
      - disrupt: {{restart: {{}}}}
  - name: broken
    chart: {WEB}
    owners: [team-shop, oncall@example.org]
    runbook: https://runbooks.example.org/broken
    values: {{simulate: {{pods: crashloop}}}}
    checks:
      - ready: {{}}
        timeout: 30s
"""


class Webhook:
    """An HTTP server on 127.0.0.1 that answers 200 and keeps each request's path and
    JSON body."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kind"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Outcome:
    output: str
    returncode: int
    results: dict[str, Any]
    report: Path
    alerts: list[tuple[str, Any]]

    def app(self, name: str) -> dict[str, Any]:
        apps = {app["app"]: app for app in self.results["apps"]}
        assert name in apps, f"no app {name} in the run:\n{self.output}"
        return apps[name]

    def item(self, app: str, name: str) -> dict[str, Any]:
        items = {item["name"]: item for item in self.app(app)["items"]}
        assert name in items, f"no item {app}::{name} in the run:\n{self.output}"
        return items[name]


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def outcome(
    kind_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory, webhook: Webhook
) -> Outcome:
    """The suite run once on the session's kind cluster (a pytest process of its own),
    alerting the webhook."""
    folder = tmp_path_factory.mktemp("recover")
    suite = folder / "recover.suite.yaml"
    suite.write_text(textwrap.dedent(SUITE).lstrip())
    report = folder / "report"
    argv = [sys.executable, "-m", "pytest", str(suite), "-v", "-rs"]
    argv += kind_args(kind_cluster, f"--report-dir={report}", f"--notify={webhook.url}")
    proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert (report / "results.json").is_file(), output
    results = json.loads((report / "results.json").read_text())
    return Outcome(output, proc.returncode, results, report, list(webhook.received))


def test_deleted_pods_come_back_as_real_containers_and_the_recovery_time_is_theirs(
    outcome: Outcome,
) -> None:
    item = outcome.item("pods", "disrupt[deletePods]")
    assert item["outcome"] == "passed", item.get("details") or outcome.output
    recovery = outcome.app("pods")["recoveries"]["disrupt[deletePods]"]
    assert recovery["recovered"] is True
    assert recovery["disruption"].startswith("2 pods deleted (Pod/pods-web-")
    # Both replacements are new containers that answer /healthz only after DELAY seconds,
    # and the kubelet probes every 2 s: recovery cannot be quicker (on kwok it is ~0 s).
    assert DELAY <= recovery["seconds"] < 90, recovery
    # The logs of the replacements: a process that started and became ready.
    assert outcome.item("pods", "logs")["outcome"] == "passed", outcome.output
    metrics = json.loads((outcome.report / "metrics" / "recover" / "pods.json").read_text())
    assert metrics["recoveries"]["disrupt[deletePods]"]["seconds"] == recovery["seconds"]


def test_a_rollout_restart_recovers_when_the_new_pod_is_really_ready(outcome: Outcome) -> None:
    item = outcome.item("rollout", "disrupt[restart]")
    assert item["outcome"] == "passed", item.get("details") or outcome.output
    recovery = outcome.app("rollout")["recoveries"]["disrupt[restart]"]
    assert recovery["recovered"] is True
    assert recovery["disruption"] == "restart of Deployment/rollout-web"
    assert DELAY <= recovery["seconds"] < 90, recovery
    page = (outcome.report / "report.html").read_text()
    assert "recovery: disrupt[restart] " in page


def test_a_drain_on_the_single_node_kind_cluster_is_skipped_with_its_reason(
    outcome: Outcome,
) -> None:
    item = outcome.item("pods", "disrupt[drain]")
    assert item["outcome"] == "skipped", outcome.output
    assert "drain needs another schedulable node" in outcome.output
    assert "disrupt[drain]" not in outcome.app("pods")["recoveries"]


def test_the_failing_apps_alert_reaches_the_webhook_once(outcome: Outcome) -> None:
    assert outcome.returncode == 1, outcome.output
    assert outcome.item("broken", "ready")["outcome"] == "failed", outcome.output
    assert "helm-harness: alert sent to http://127.0.0.1:" in outcome.output
    assert len(outcome.alerts) == 1, outcome.alerts
    ((path, body),) = outcome.alerts
    assert path == "/hooks/kind"
    assert body["outcome"] == "failed" and body["run_id"] == outcome.results["run_id"]
    assert body["report"]["html"] == str(outcome.report / "report.html")
    (broken,) = body["failed_apps"]  # pods and rollout recovered
    assert broken["suite"] == "recover" and broken["app"] == "broken"
    assert broken["owners"] == ["team-shop", "oncall@example.org"]
    assert broken["item"] == "recover.suite.yaml::broken::ready"
    assert broken["runbook"] == "https://runbooks.example.org/broken"
    assert (
        broken["cause"].startswith(
            "broken::ready: expected Deployment broken-web ready within 30s; observed "
        )
        and "\n" not in broken["cause"]
    ), broken
    # What the alert's cause sums up: the kubelet's account of a container that crashed.
    details = outcome.item("broken", "ready")["details"]
    assert "CrashLoopBackOff" in details or "Error" in details, details
