"""Issue 15's parts together, as a user combines them: a values matrix, an upgrade run,
and apply / assert / error steps (one expected to fail) in every phase of every variant,
on the session's kwok cluster."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from tests.conftest import REPO

MATRIX_CHART = REPO / "tests" / "charts" / "matrix"

SUITE = """\
apiVersion: helm-harness/v1
kind: Suite
metadata: {name: combo}
apps:
  - name: web
    chart: charts/new
    valuesMatrix: ci/*-values.yaml
    upgrade: {from: {chart: charts/old}}
    checks:
      - ready: {}
      - apply:
          manifest: |
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: "{{ .Release.Name }}-marker"}
            data: {release: "{{ .Release.Name }}", namespace: "{{ .Release.Namespace }}"}
        name: marker
      - assert:
          object:
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: "{{ .Release.Name }}-marker"}
            data: {release: "{{ .Release.Name }}"}
        timeout: 10s
      - error:
          object:
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: "{{ .Release.Name }}-marker"}
        timeout: 1s
        xfail: "the marker is there on purpose"
"""


def test_a_scenario_runs_in_every_phase_of_every_variant_of_an_upgrade_run(
    pytester: pytest.Pytester, harness_cluster: Any
) -> None:
    shutil.copytree(MATRIX_CHART, pytester.path / "charts" / "new")
    shutil.copytree(MATRIX_CHART, pytester.path / "charts" / "old")
    (pytester.path / "combo.suite.yaml").write_text(SUITE)
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider", "-v",
        "--upgrade", "--report-dir=out",
    )  # fmt: skip
    # per variant: install[from], upgrade, crd-drift, rollback, and ready, marker, assert
    # in each of the three phases pass; the error check, expected to fail, fails in each
    result.assert_outcomes(passed=26, xfailed=6)
    result.stdout.fnmatch_lines(
        [
            "*combo.suite.yaml::web[[]large[]]::install[[]from[]] PASSED*",
            "*combo.suite.yaml::web[[]large[]]::marker@from PASSED*",
            "*combo.suite.yaml::web[[]large[]]::assert*@to PASSED*",
            "*combo.suite.yaml::web[[]large[]]::error*@rollback XFAIL*",
            "*combo.suite.yaml::web[[]small[]]::marker@rollback PASSED*",
        ]
    )
    results = json.loads((pytester.path / "out" / "results.json").read_text())
    apps = {app["app"]: app for app in results["apps"]}
    assert sorted(apps) == ["web[large]", "web[small]"]
    assert {apps[name]["release"] for name in apps} == {"web-large", "web-small"}
    assert len({apps[name]["namespace"] for name in apps}) == 2
