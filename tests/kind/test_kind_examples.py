"""The example suites on a real kind cluster: every check passes against running
processes, ``http`` included (answered by the fixture server through port-forward), and
the fixture image is loaded into the cluster before the apps install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.clusters.base import ClusterInfo
from tests.kind.conftest import FIXTURE_IMAGE, REPO, kind_args


def test_example_suites_pass_on_kind(
    pytester: pytest.Pytester, kind_cluster: ClusterInfo, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        str(REPO / "suites"), *kind_args(kind_cluster, f"--report-dir={report}", "-v")
    )
    result.stdout.fnmatch_lines(["*web.suite.yaml::web::http?/healthz? PASSED*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("skipped", 0) == 0, "on kind no check may skip:\n" + result.stdout.str()
    assert outcomes["passed"] >= 20
    results = json.loads((report / "results.json").read_text())
    web = next(app for app in results["apps"] if app["app"] == "web")
    assert web["images_loaded"] == [FIXTURE_IMAGE]
