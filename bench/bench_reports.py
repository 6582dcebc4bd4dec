"""Benchmark: what the reports add to a run of 200 apps.

    .venv/bin/python bench/bench_reports.py [--apps 200] [--checks 5] [--runs 5]

Synthetic test reports (no cluster) for ``--apps`` apps, each an install item and
``--checks`` check items, one app in ten failing with an evidence bundle of seven files on
disk and every app with a metric snapshot, are fed to the report plugin's recorder as pytest
would (setup, call and teardown report per item; the app's record on its last teardown);
then junit.xml, results.json and report.html are written. The seconds added = the time in
the recorder during the run + the time to write the files at the end. Goal: <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.plugin.state import APP_RECORD
from harness.report.plugin import write_reports
from harness.report.recorder import RunRecorder
from harness.report.results import RunInfo

GOAL_SECONDS = 2.0
BUNDLE_FILES = (
    "failure.txt",
    "events.yaml",
    "resources.yaml",
    "pods.yaml",
    "helm-status.json",
    "helm-history.json",
    "logs/web.web.log",
)


def app_reports(report_dir: Path, index: int, checks: int) -> Iterator[pytest.TestReport]:
    suite, app = f"suite{index // 20}", f"app{index:03d}"
    failing = index % 10 == 3
    bundle = report_dir / "bundles" / suite / app
    if failing:
        for name in BUNDLE_FILES:
            (bundle / name).parent.mkdir(parents=True, exist_ok=True)
            (bundle / name).write_text("synthetic\n")
    base = [
        ("suite", suite),
        ("app", app),
        ("chart", "/charts/web"),
        ("release", app),
        ("namespace", f"h-bench-{app}"),
        ("chart_version", "0.1.0"),
        ("runbook", f"https://runbooks.example.org/{app}"),
    ]
    names = ["install", *(f"check{n}" for n in range(checks))]
    for position, name in enumerate(names):
        nodeid = f"suites/{suite}.suite.yaml::{app}::{name}"
        location = (f"suites/{suite}.suite.yaml", 3, f"{suite}::{app}::{name}")
        props = list(base)
        fails = failing and position == 1
        if name == "install":
            props.append(("duration_install", "1.250"))
        else:
            props.append(("check", "ready"))
        if fails:
            props.append(("bundle", str(bundle)))
        longrepr = (
            f"{app}::{name}: expected Deployment web ready within 30s; observed ...\n"
            f"runbook: https://runbooks.example.org/{app}\nevidence: {bundle}"
        )
        yield pytest.TestReport(nodeid, location, {}, "passed", None, "setup", duration=0.001)
        yield pytest.TestReport(
            nodeid,
            location,
            {},
            "failed" if fails else "passed",
            longrepr if fails else None,
            "call",
            duration=0.4,
            user_properties=props,
        )
        if position == len(names) - 1:
            record = {
                "suite": suite,
                "suite_file": f"/nowhere/{suite}.suite.yaml",
                "app": app,
                "chart": "/charts/web",
                "chart_version": "0.1.0",
                "release": app,
                "namespace": f"h-bench-{app}",
                "values_digest": "sha256:" + "0" * 64,
                "timings": {"install": 1.25, "ready": 3.5},
                "installed": True,
                "install_error": None,
                "failed": failing,
                "metrics": {
                    "cpu_millicores": 10 + index % 90,
                    "memory_bytes": (32 + index % 64) << 20,
                    "restarts": 0,
                    "time_to_ready_s": 3.5,
                },
                "runbook": f"https://runbooks.example.org/{app}",
            }
            props = [*props, (APP_RECORD, json.dumps(record))]
        yield pytest.TestReport(
            nodeid, location, {}, "passed", None, "teardown", duration=0.001, user_properties=props
        )


def one_run(apps: int, checks: int) -> tuple[float, float, int, int]:
    """(seconds in the recorder, seconds writing, reports fed, bytes written)."""
    with tempfile.TemporaryDirectory() as tmp:
        report_dir = Path(tmp) / "harness-report"
        reports = [r for index in range(apps) for r in app_reports(report_dir, index, checks)]
        recorder = RunRecorder()
        started = time.perf_counter()
        for report in reports:
            recorder.add(report)
        recording = time.perf_counter() - started
        info = RunInfo(run_id="bench", started=time.time() - 600, finished=time.time())
        info.cluster = {"provider": "kwok", "name": "hh-bench", "kubernetes_version": "v1.36.3"}
        started = time.perf_counter()
        written = write_reports(recorder, info, report_dir)
        writing = time.perf_counter() - started
        size = sum(path.stat().st_size for path in written)
        return recording, writing, len(reports), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--checks", type=int, default=5, help="check items per app")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    totals, recordings, writings = [], [], []
    reports = size = 0
    for _ in range(args.runs):
        recording, writing, reports, size = one_run(args.apps, args.checks)
        recordings.append(recording)
        writings.append(writing)
        totals.append(recording + writing)
    median = statistics.median(totals)
    print(
        f"{args.apps} apps, {args.apps * (args.checks + 1)} items, {reports} reports, "
        f"{size / 1024:.0f} KiB of reports; median of {args.runs} runs:"
    )
    print(f"  recording reports during the run   {statistics.median(recordings):.3f} s")
    print(f"  writing junit.xml, results.json, report.html  {statistics.median(writings):.3f} s")
    verdict = "ok" if median <= GOAL_SECONDS else "OVER"
    worst = max(totals)
    print(
        f"  seconds added {median:.3f} s (max {worst:.3f} s); goal <= {GOAL_SECONDS} s: {verdict}"
    )


if __name__ == "__main__":
    main()
