"""``report.md``, the run's Markdown summary for CI job summaries: rendered from run
records (passing, failing, upgrade runs; escaping; the size cap), written by a real run on
the session's kwok cluster beside report.html, and by ``helm-harness report DIR`` and
``--merge``."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main as cli_main
from harness.clusters.base import ClusterInfo
from harness.report.markdown import MAX_FAILURES, SIZE_LIMIT, render
from tests.conftest import FIXTURE_CHARTS
from tests.test_reports import synthetic_report_dir

WEB = FIXTURE_CHARTS / "web"
RUNBOOK = "https://runbooks.example.org/broken"


def item(name: str, outcome: str = "passed", **fields: Any) -> dict[str, Any]:
    check = None if name == "install" else name.split("@")[0].split("[")[0]
    row = {"id": f"suites/shop.suite.yaml::x::{name}", "name": name, "check": check}
    row |= {"outcome": outcome, "duration_s": 0.5, "message": None, "bundle": None}
    return row | {"runbook": None} | fields


def app(name: str, items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    failed = any(i["outcome"] in ("failed", "error") for i in items)
    row = {
        "suite": "shop",
        "app": name,
        "chart": f"/work/charts/{name}",
        "chart_version": "0.1.0",
        "namespace": f"h-abc-{name}",
        "timings": {"install": 1.2} | ({} if failed else {"ready": 2.5}),
        "install_error": None,
        "metrics": None,
        "runbook": None,
        "status": "failed" if failed else "passed",
        "bundle": None,
        "bundle_files": [],
        "items": items,
    }
    return row | fields


def record(
    apps: list[dict[str, Any]], tests: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    tests = tests or []
    counts = dict.fromkeys(("passed", "failed", "error", "skipped", "xfailed", "xpassed"), 0)
    for row in [i for a in apps for i in a["items"]] + tests:
        counts[row["outcome"]] += 1
    counts["total"] = sum(counts.values())
    return {
        "schema": "helm-harness/results/v1",
        "run_id": "r1",
        "started": "2026-01-02T03:04:05.000Z",
        "duration_s": 65.2,
        "complete": True,
        "cluster": {"provider": "kwok", "name": "hh-r1", "kubernetes_version": "v1.33.1"},
        "helm_version": "v3.18.0",
        "outcomes": counts,
        "apps": apps,
        "tests": tests,
    } | fields


def table_rows(text: str) -> list[list[str]]:
    """The cells of the apps table's body rows (split at pipes that are not escaped)."""
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_a_passing_run() -> None:
    text = render(record([app("web", [item("install"), item("ready"), item("http[/]")])]))
    lines = text.splitlines()
    assert lines[0] == "## ✅ helm-harness: all 3 items passed"
    assert "- cluster: kwok `hh-r1`, Kubernetes v1.33.1, Helm v3.18.0" in lines
    assert "- duration: 1 min 05 s, started 2026-01-02T03:04:05.000Z" in lines
    assert "- upgrade run: no" in lines
    assert table_rows(text) == [["shop", "web", "web", "0.1.0", "✅ passed", "2.5 s", "1.5 s"]]
    assert "Failures" not in text and "incomplete" not in text


def test_a_failing_run_names_cause_owners_runbook_and_bundle() -> None:
    cause = "broken::ready: expected Deployment broken-web ready; last: CrashLoopBackOff"
    broken = app(
        "broken",
        [
            item("install"),
            item("ready", "failed", message=cause, runbook=RUNBOOK, bundle="bundles/shop/broken"),
        ],
        owners=["team-shop", "alice"],
        runbook=RUNBOOK,
        bundle="bundles/shop/broken",
        bundle_files=["bundles/shop/broken/failure.txt", "bundles/shop/broken/pods.yaml"],
        metrics={"time_to_ready_s": 9.0},  # a figure, but ready failed: the cell stays blank
    )
    bad = app("bad", [], status="failed", install_error="Error: INSTALLATION FAILED: boom")
    web = app("web", [item("install"), item("ready")])
    plain = {"id": "test_x.py::test_fails", "name": "test_fails", "outcome": "failed"}
    plain |= {"message": "AssertionError: one is not two", "duration_s": 0.01}
    text = render(record([web, broken, bad], [plain]))
    assert text.startswith("## ❌ helm-harness: 2 failed, 3 passed of 5 items\n")
    rows = table_rows(text)
    assert [row[1] for row in rows] == ["broken", "bad", "web"]  # failed apps first
    assert rows[0][4:6] == ["❌ failed (1 of 2 items)", ""]
    assert rows[1][4] == "❌ failed" and rows[2][4:6] == ["✅ passed", "2.5 s"]
    failures = text.split("### Failures\n", 1)[1]
    assert failures.splitlines() == [
        "",
        "- ❌ **shop / broken** · `ready` (failed)",
        f"  - cause: `{cause}`",
        "  - owners: team-shop, alice",
        f"  - runbook: <{RUNBOOK}>",
        "  - bundle: `bundles/shop/broken` (start with `bundles/shop/broken/failure.txt`)",
        "- ❌ **shop / bad** · install (failed)",
        "  - cause: `Error: INSTALLATION FAILED: boom`",
        "- ❌ `test_x.py::test_fails` (failed)",
        "  - cause: `AssertionError: one is not two`",
    ]


def test_a_runbook_that_is_no_url_is_text() -> None:
    failed = item("ready", "failed", message="m", runbook="ask #ops on <chat>")
    text = render(record([app("a", [failed])]))
    assert r"  - runbook: ask #ops on \<chat\>" in text.splitlines()


def test_an_upgrade_run_shows_from_and_to() -> None:
    upgrade = {
        "from": {"chart": "/work/charts/shop-0.1.0", "version": None},
        "to": {"chart": "/work/charts/shop-0.2.0", "version": "0.2.0"},
        "phase_reached": "rollback",
    }
    items = [item("install[from]"), item("ready@from"), item("upgrade"), item("ready@to")]
    items.append(item("ready@rollback", "failed", message="not ready after rollback"))
    shop = app("shop", items, upgrade=upgrade, chart="/work/charts/shop-0.2.0")
    same_chart = app(
        "web",
        [item("install[from]"), item("upgrade")],
        chart="oci://registry.example.org/web",
        upgrade={"from": {"chart": "oci://registry.example.org/web", "version": "1.0.0"}}
        | {"to": {"chart": "oci://registry.example.org/web", "version": "1.1.0"}},
    )
    text = render(record([shop, same_chart]))
    assert "- upgrade run: yes, 2 apps upgraded" in text.splitlines()
    rows = {row[1]: row for row in table_rows(text)}
    # the released version's number is what the first install installed (chart_version)
    assert rows["shop"][2:4] == ["shop-0.1.0 → shop-0.2.0", "0.1.0 → 0.2.0"]
    assert rows["shop"][5] == ""  # a ready item failed: no time to ready
    assert rows["web"][2:4] == ["oci://registry.example.org/web", "1.0.0 → 1.1.0"]
    assert "- ❌ **shop / shop** · `ready@rollback` (failed)" in text


def test_pipes_newlines_and_markup_are_escaped() -> None:
    odd = app(
        "we|b\nsecond line",
        [item("re|ady", "failed", message="got `a|b` and ``c``\nmore")],
        suite="<script>x</script>",
        chart="/charts/pipe|chart",
        chart_version="1.0\n|2",
    )
    text = render(record([odd]))
    (row,) = table_rows(text)
    assert len(row) == 7
    assert row[:4] == [
        r"\<script\>x\</script\>",
        r"we\|b<br>second line",
        r"pipe\|chart",
        r"1.0<br>\|2",
    ]
    assert "<script>" not in text
    # a code span whose fence is longer than any backtick run inside, on one line
    assert "  - cause: ``` got `a|b` and ``c`` ```" in text.splitlines()
    assert "- ❌ **\\<script\\>x\\</script\\> / we\\|b second line** · `re|ady` (failed)" in text


def test_failures_and_size_are_capped() -> None:
    apps = [
        app(f"a{n:03}", [item("ready", "failed", message=f"m{n} " + "x" * 2000)])
        for n in range(120)
    ]
    text = render(record(apps))
    shown = [line for line in text.splitlines() if line.startswith("- ❌")]
    assert len(shown) == MAX_FAILURES
    assert f"… and {120 - MAX_FAILURES} more failures not shown: see report.html." in text
    assert max(len(line) for line in text.splitlines()) < 600  # causes are clipped

    small = render(record(apps), size_limit=20_000)
    assert len(small.encode()) <= 20_000
    assert "more failures not shown" in small

    many = [app("n" * 300 + f"{n}", [item("ready")]) for n in range(6000)]
    huge = render(record(many))
    assert len(huge.encode()) <= SIZE_LIMIT
    assert re.search(r"… and \d+ more apps \(0 failed\) not shown", huge)


def test_written_beside_the_other_reports_redacted_and_by_report_dir(tmp_path: Path) -> None:
    out = synthetic_report_dir(tmp_path / "report")
    page = out / "report.md"
    text = page.read_text()
    assert "`app2::ready: expected <b>ready</b> & API_TOKEN=******`" in text
    assert "oops" not in text
    page.unlink()
    assert cli_main(["report", str(out)]) == 0
    assert page.read_text() == text


def test_report_dir_with_a_malformed_record_writes_no_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = record([])
    broken["apps"] = [{"suite": "s", "app": "a", "items": "no list", "status": 3, "upgrade": 1}]
    (tmp_path / "results.json").write_text(json.dumps(broken))
    assert cli_main(["report", str(tmp_path)]) == 0  # odd fields are shown as they are
    assert "| s | a |" in (tmp_path / "report.md").read_text()
    (tmp_path / "results.json").write_text(json.dumps({"schema": "other"}))
    (tmp_path / "report.md").unlink()
    assert cli_main(["report", str(tmp_path)]) == 4
    assert "not a helm-harness run record" in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()


def test_merged_shards_get_one_summary(tmp_path: Path) -> None:
    first = synthetic_report_dir(tmp_path / "r1")
    second = tmp_path / "r2"
    second.mkdir()
    other = record([app("web", [item("install"), item("ready")], suite="other")], run_id="r2")
    (second / "results.json").write_text(json.dumps(other))
    out = tmp_path / "merged"
    assert cli_main(["report", "--merge", str(first), str(second), "-o", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert text.startswith("## ❌ helm-harness: 1 failed, 13 passed of 14 items\n")
    assert "- run: `synthetic+r2`, merged from 2 shards" in text.splitlines()
    assert {(row[0], row[1]) for row in table_rows(text)} == {
        ("shop", "app0"),
        ("shop", "app1"),
        ("shop", "app2"),
        ("shop", "app3"),
        ("other", "web"),
    }


SUITE = f"""
apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: web
    chart: {WEB}
    checks: [{{ready: {{}}}}]
  - name: broken
    chart: {WEB}
    set: {{simulate.pods: crashloop}}
    runbook: {RUNBOOK}
    checks:
      - ready: {{}}
        timeout: 3s
"""


def test_a_run_writes_report_md_beside_report_html(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    (pytester.path / "shop.suite.yaml").write_text(textwrap.dedent(SUITE).lstrip())
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}",
        "-p",
        "no:cacheprovider",
        "--kwok-pod-startup=0",
        "--kwok-pod-jitter=0",
        "--report-dir=out",
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*helm-harness reports in *out: *report.html, report.md*"])
    out = pytester.path / "out"
    assert (out / "report.html").is_file()
    text = (out / "report.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "## ❌ helm-harness: 1 failed, 3 passed of 4 items"
    assert any(
        re.fullmatch(r"- cluster: existing `.+`, Kubernetes v1\.\d+\.\d+.*", x) for x in lines
    )
    rows = {row[1]: row for row in table_rows(text)}
    assert rows["broken"][3:6] == ["0.1.0", "❌ failed (1 of 2 items)", ""]
    assert rows["web"][4] == "✅ passed" and rows["web"][5].endswith(" s")
    failures = text.split("### Failures\n", 1)[1]
    assert "- ❌ **shop / broken** · `ready` (failed)" in failures
    assert "  - cause: `broken::ready: expected Deployment broken-web ready" in failures
    assert f"  - runbook: <{RUNBOOK}>" in failures
    assert (
        "  - bundle: `bundles/shop/broken` (start with `bundles/shop/broken/failure.txt`)"
        in failures
    )
    assert (out / "bundles" / "shop" / "broken" / "failure.txt").is_file()
