"""``helm-harness run`` (progress on a terminal and in logs) and ``--shard K/N``."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli.main import pytest_args
from harness.clusters.base import ClusterInfo
from harness.errors import UsageError
from tests.conftest import FIXTURE_CHARTS

WEB = FIXTURE_CHARTS / "web"


def suite(folder: Path, name: str, apps: str) -> None:
    (folder / f"{name}.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n" + textwrap.dedent(apps)
    )


def test_value_options_are_joined_so_pytest_does_not_take_them_for_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "x.suite.yaml").write_text("")
    monkeypatch.chdir(tmp_path)
    args = pytest_args(["--kubeconfig", "/k.yaml", "--cluster", "existing", "-n", "2"])
    assert args[-5:] == ["--kubeconfig=/k.yaml", "--cluster=existing", "-n", "2", "suites"]
    assert pytest_args(["suites/x.suite.yaml"])[-1] == "suites/x.suite.yaml"
    with pytest.raises(UsageError, match="--shard needs a value"):
        pytest_args(["--shard"])


def test_no_path_and_no_suites_folder_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 4 and "there is no ./suites folder" in out.stderr


def test_shards_cover_every_app_once_with_groups_intact(pytester: pytest.Pytester) -> None:
    for index in range(4):
        suite(
            pytester.path,
            f"s{index}",
            f"""\
            - {{name: db, chart: {WEB}, checks: [{{ready: {{}}}}]}}
            - {{name: api, chart: {WEB}, dependsOn: [db], checks: [{{ready: {{}}}}]}}
            - {{name: solo, chart: {WEB}, checks: [{{ready: {{}}}}]}}
            """,
        )
    everything = set(pytester.runpytest_subprocess("--collect-only", "-q").stdout.lines[:-2]) - {""}
    seen: list[str] = []
    for k in (1, 2, 3):
        lines = pytester.runpytest_subprocess("--collect-only", "-q", f"--shard={k}/3").stdout.lines
        ids = [line for line in lines if "::" in line]
        assert ids, f"shard {k}/3 is empty"
        apps = {tuple(i.split("::")[:2]) for i in ids}
        for suite_file, app in apps:  # db and api of a suite are in the same shard
            if app in ("db", "api"):
                assert (suite_file, "api" if app == "db" else "db") in apps
        seen.extend(ids)
    assert len(seen) == len(set(seen)), "an item is in two shards"
    assert set(seen) == everything


@pytest.mark.parametrize("bad", ["3", "0/2", "3/2", "a/b"])
def test_bad_shard_is_a_usage_error(pytester: pytest.Pytester, bad: str) -> None:
    result = pytester.runpytest_subprocess(f"--shard={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--shard" in result.stderr.str()


def run_command(cwd: Path, cluster: ClusterInfo, *, tty: bool) -> tuple[int, str]:
    argv = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "-p",
        "no:cacheprovider",
    ]
    if not tty:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
        return out.returncode, out.stdout + out.stderr
    controller, worker = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=worker, stdout=worker, stderr=worker)
    os.close(worker)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the pseudo-terminal closed: the run ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_run_shows_progress_as_lines_when_not_a_terminal(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    (pytester.path / "suites").mkdir()
    suite(
        pytester.path / "suites",
        "shop",
        f"- {{name: web, chart: {WEB}, checks: [{{ready: {{}}}}]}}\n",
    )
    code, out = run_command(pytester.path, harness_cluster, tty=False)
    assert code == 0, out
    assert "collected 2 items, 1 apps" in out
    assert "web: install ok" in out and "app web: healthy" in out
    assert "\x1b[2K" not in out  # no terminal control codes in logs
    assert (pytester.path / "harness-report").is_dir()


def test_run_rewrites_one_status_line_on_a_terminal(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    (pytester.path / "suites").mkdir()
    suite(
        pytester.path / "suites",
        "shop",
        f"- {{name: web, chart: {WEB}, checks: [{{ready: {{}}}}]}}\n",
    )
    code, out = run_command(pytester.path, harness_cluster, tty=True)
    assert code == 0, out
    assert "\r\x1b[2K" in out and "web: ready ..." in out
    assert "app web: healthy" in out


def test_shard_reports_merge_into_one(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    import json
    import xml.etree.ElementTree as ET

    from harness.cli.main import main

    for index in range(3):
        suite(
            pytester.path,
            f"s{index}",
            f"- {{name: web, chart: {WEB}, checks: [{{ready: {{}}}}]}}\n",
        )
    for k in (1, 2):
        result = pytester.runpytest_subprocess(
            f"--kubeconfig={harness_cluster.kubeconfig}", f"--shard={k}/2", f"--report-dir=r{k}"
        )
        assert result.ret == 0
    out = pytester.path / "merged"
    assert (
        main(
            [
                "report",
                "--merge",
                str(pytester.path / "r1"),
                str(pytester.path / "r2"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    merged = json.loads((out / "results.json").read_text())
    assert sorted(app["suite"] for app in merged["apps"]) == ["s0", "s1", "s2"]
    assert merged["outcomes"]["total"] == 6 and merged["outcomes"]["passed"] == 6
    assert len(merged["shards"]) == 2
    cases = ET.parse(out / "junit.xml").getroot().iter("testcase")
    assert len(list(cases)) == 6
    assert "s2" in (out / "report.html").read_text()
    assert main(["report", str(pytester.path / "r1"), str(pytester.path / "r2")]) == 4
