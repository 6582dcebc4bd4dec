"""Checks that need a running process, proved on real containers: readiness that waits for
a real readinessProbe, http and logs from the fixture server, a really crashing container
(noRestarts with its restart count, previous logs, the kubelet's BackOff warning, a
bundle with the real logs), a helm test pod that really runs and fails, and metrics from
the real kubelet (and, in a run of their own, from metrics.k8s.io). One suite, one run,
read item by item."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.clusters.base import ClusterInfo
from tests.conftest import FIXTURE_CHARTS
from tests.kind.conftest import kind_args

WEB = FIXTURE_CHARTS / "web"
SUITE = f"""
apiVersion: helm-harness/v1
kind: Suite
metadata: {{name: real}}
defaults: {{timeout: 90s}}
apps:
  - name: slow
    chart: {WEB}
    values: {{readyDelay: 6s}}
    checks:
      - ready: {{}}
      - http:
          service: slow-web
          port: 80
          path: /
          expect: {{status: 200, body: hello from fixture-app}}
      - logs: {{contains: ["ready after 6s", "request GET /"]}}
      - noRestarts: {{max: 0}}
  - name: crashy
    chart: {WEB}
    values: {{simulate: {{pods: crashloop}}}}
    checks:
      - wait:
          resource: pods
          selector: app.kubernetes.io/instance=crashy
          for: jsonpath={{.status.containerStatuses[0].restartCount}}=2
        name: restarted-twice
      - noRestarts: {{max: 0}}
      - logs: {{previous: true, contains: ["CRASH_ON_START=1: exiting with status 1"]}}
      - events: {{noWarnings: true}}
  - name: failing-test
    chart: {WEB}
    values: {{simulate: {{test: fail}}}}
    checks:
      - ready: {{}}
      - helmTest: {{}}
  - name: hungry
    chart: {WEB}
    values: {{extraEnv: {{MEMORY_MB: "40"}}}}
    checks:
      - ready: {{}}
      - metrics: {{memory: ">= 30Mi"}}
        timeout: 60s
"""


@pytest.fixture(scope="module")
def outcome(kind_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The suite run once on the session's kind cluster (a pytest process of its own)."""
    folder = tmp_path_factory.mktemp("real")
    suite = folder / "real.suite.yaml"
    suite.write_text(textwrap.dedent(SUITE).lstrip())
    report = folder / "report"
    argv = [sys.executable, "-m", "pytest", str(suite), "-v"]
    argv += kind_args(kind_cluster, f"--report-dir={report}", "--metrics-wait=40s")
    proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=900)
    results = json.loads((report / "results.json").read_text())
    items = {
        f"{app['app']}::{item['name']}": item for app in results["apps"] for item in app["items"]
    }
    apps = {app["app"]: app for app in results["apps"]}
    return Outcome(proc.stdout + proc.stderr, items, apps, report)


@dataclass
class Outcome:
    output: str
    items: dict[str, dict[str, Any]]
    apps: dict[str, dict[str, Any]]
    report: Path

    def item(self, key: str) -> dict[str, Any]:
        assert key in self.items, f"no item {key} in the run:\n{self.output}"
        return self.items[key]


def test_ready_waits_for_the_real_readiness_probe(outcome: Outcome) -> None:
    assert outcome.item("slow::ready")["outcome"] == "passed", outcome.output
    # READY_DELAY=6s: the probe cannot pass sooner, so neither can the check.
    assert outcome.apps["slow"]["timings"]["ready"] >= 6.0


def test_http_and_logs_come_from_the_running_server(outcome: Outcome) -> None:
    assert outcome.item("slow::http[/]")["outcome"] == "passed", outcome.output
    assert outcome.item("slow::logs")["outcome"] == "passed", outcome.output
    assert outcome.item("slow::noRestarts")["outcome"] == "passed", outcome.output


def test_no_restarts_fails_on_a_really_crashing_container(outcome: Outcome) -> None:
    assert outcome.item("crashy::restarted-twice")["outcome"] == "passed", outcome.output
    failure = outcome.item("crashy::noRestarts")
    assert failure["outcome"] == "failed"
    assert "restartCount" in failure["details"], failure["details"]
    assert "CrashLoopBackOff" in failure["details"] or "Error" in failure["details"]


def test_previous_logs_and_kubelet_warnings_are_real(outcome: Outcome) -> None:
    assert outcome.item("crashy::logs")["outcome"] == "passed", outcome.output
    events = outcome.item("crashy::events")
    assert events["outcome"] == "failed"
    assert "BackOff" in events["details"]


def test_failure_bundle_holds_the_containers_real_logs(outcome: Outcome) -> None:
    bundle = outcome.apps["crashy"]["bundle"]
    assert bundle, outcome.output
    logs = sorted((outcome.report / bundle / "logs").glob("*.log"))
    assert logs, f"no logs in {bundle}"
    text = "".join(path.read_text() for path in logs)
    assert "fixture-app starting" in text


def test_helm_test_pod_really_runs_and_fails(outcome: Outcome) -> None:
    assert outcome.item("failing-test::ready")["outcome"] == "passed", outcome.output
    failure = outcome.item("failing-test::helmTest")
    assert failure["outcome"] == "failed"
    # The pod ran the fixture program, which exited 1 (simulate.test=fail): the kubelet's
    # own account of the container.
    assert "pod/failing-test-web-test: check: terminated Error exit 1" in failure["details"]


def test_metrics_come_from_the_real_kubelet(outcome: Outcome) -> None:
    item = outcome.item("hungry::metrics")
    assert item["outcome"] == "passed", item.get("details") or outcome.output
    metrics = outcome.apps["hungry"]["metrics"]
    assert metrics["source"] == "kubelet", metrics
    assert metrics["memory_bytes"] >= 30 * 1024 * 1024
    assert metrics["cpu_millicores"] is not None and metrics["cpu_millicores"] > 0
    document = json.loads((outcome.report / metrics["file"]).read_text())
    (pod,) = document["pods"]
    # A real kubelet gives the container's start: CPU is its average since then, from
    # one read, and the snapshot did not wait for metrics-server's scrapes.
    assert pod["metrics_window_s"] > 0, pod
    assert document["kubelet_unused"] is None


def test_metrics_server_gives_the_same_memory(kind_cluster: ClusterInfo, tmp_path: Path) -> None:
    """The same app with ``--metrics-source metrics-api``: metrics-server's figures of the
    real process (40 MB it allocates) hold the same budget."""
    suite = tmp_path / "hungry.suite.yaml"
    hungry = SUITE[SUITE.index("  - name: hungry") :]
    suite.write_text(textwrap.dedent(SUITE[: SUITE.index("apps:")] + "apps:\n" + hungry).lstrip())
    report = tmp_path / "report"
    argv = [sys.executable, "-m", "pytest", str(suite), "-v", "--metrics-source=metrics-api"]
    argv += kind_args(kind_cluster, f"--report-dir={report}", "--metrics-wait=40s")
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (app,) = json.loads((report / "results.json").read_text())["apps"]
    assert app["metrics"]["source"] == "metrics.k8s.io", app["metrics"]
    assert app["metrics"]["memory_bytes"] >= 30 * 1024 * 1024
