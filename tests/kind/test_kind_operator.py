"""The operator scenario (suites/operator/operator.suite.yaml) on kind, where the widget
operator really runs in its pod (``fixture-app operator`` with the service account's token):
every step passes, and a release whose operator limit is lower (maxSize 2) fails its
assert with the status the running operator wrote, the operator's own log in the evidence."""

from __future__ import annotations

import hashlib
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
from tests.kind.conftest import FIXTURE_IMAGE, REPO, kind_args

SCENARIO = REPO / "suites" / "operator" / "operator.suite.yaml"
STRICT = f"""
apiVersion: helm-harness/v1
kind: Suite
metadata: {{name: strict}}
apps:
  - name: strict
    chart: {FIXTURE_CHARTS / "widget-operator"}
    values: {{maxSize: 2}}
    checks:
      - ready: {{}}
      - apply:
          manifest: |
            apiVersion: fixtures.helm-harness.io/v1
            kind: Widget
            metadata: {{name: w}}
            spec: {{size: 3}}
      - assert:
          object:
            apiVersion: fixtures.helm-harness.io/v1
            kind: Widget
            metadata: {{name: w}}
            status: {{phase: Ready, observedSize: 3}}
        timeout: 20s
        catch:
          - podLogs: {{selector: "app.kubernetes.io/name=widget-operator"}}
"""


def fixture_image_is_current() -> None:
    """The image must hold this checkout's fixture-app (install.sh labels it with a hash
    of fixtures/images/app); a stale one would run an operator without this code."""
    src = REPO / "fixtures" / "images" / "app"
    want = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(src.iterdir()))).hexdigest()
    have = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "-f",
            '{{index .Config.Labels "io.helm-harness.inputs"}}',
            FIXTURE_IMAGE,
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if have != want[:16]:
        pytest.fail(
            f"{FIXTURE_IMAGE} was built from other sources than fixtures/images/app "
            "(rebuild it: HH_KIND_STEPS=fixtures clusters/kind/install.sh)"
        )


@dataclass
class Run:
    output: str
    items: dict[str, dict[str, Any]]
    report: Path

    def item(self, key: str) -> dict[str, Any]:
        assert key in self.items, f"no item {key} in the run:\n{self.output}"
        return self.items[key]


@pytest.fixture(scope="module")
def run(kind_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Run:
    fixture_image_is_current()
    folder = tmp_path_factory.mktemp("operator")
    strict = folder / "strict.suite.yaml"
    strict.write_text(textwrap.dedent(STRICT).lstrip())
    report = folder / "report"
    argv = [sys.executable, "-m", "pytest", str(SCENARIO), str(strict), "-v"]
    argv += kind_args(kind_cluster, f"--report-dir={report}")
    proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=900)
    results = json.loads((report / "results.json").read_text())
    items = {
        f"{app['app']}::{item['name']}": item for app in results["apps"] for item in app["items"]
    }
    return Run(proc.stdout + proc.stderr, items, report)


def test_the_scenario_passes_with_the_operator_running_in_its_pod(run: Run) -> None:
    scenario = {key: item for key, item in run.items.items() if key.startswith("widgets::")}
    assert len(scenario) >= 7, run.output  # install, ready, 2 applies, 2 asserts, error
    failed = {key: item["details"] for key, item in scenario.items() if item["outcome"] != "passed"}
    assert not failed, run.output


def test_a_failing_assert_shows_the_running_operators_status_and_log(run: Run) -> None:
    failure = run.item("strict::assert[Widget/w]")
    assert failure["outcome"] == "failed", run.output
    details = failure["details"]
    assert "Rejected" in details and "status.phase" in details, details
    logs = "".join(
        p.read_text() for p in run.report.rglob("*") if p.is_file() and "catch" in p.parts
    )
    assert "reconciled widget" in logs and "reason TooLarge" in logs, logs[:2000]
