"""The GitHub workflows: actionlint (with shellcheck, when it is on PATH) finds nothing in
them, shellcheck nothing in the action's scripts (``.github/action/``); the gate compares
with what it says, the nightly's shard runs a command line pytest takes (through the
action's run step, tests/test_action.py); and ``scripts/annotate.py`` turns JUnit failures
into annotations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import tools
from tests.conftest import REPO
from tests.test_action import ActionRun, load_action, read_pairs

WORKFLOWS = REPO / ".github" / "workflows"
ACTION_SCRIPTS = REPO / ".github" / "action"
ANNOTATE = REPO / "scripts" / "annotate.py"


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def step(job: dict[str, Any], *, named: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in job["steps"] if s.get("name", "").startswith(named))
    return found


def test_the_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {path.name for path in files} >= {"ci.yml", "gate.yml", "nightly.yml", "providers.yml"}
    actionlint = tools.find_binary("actionlint")
    if actionlint is None:
        pytest.skip(
            "actionlint is not built: INSTALL_ACTIONLINT=1 helm-harness tools install "
            "(scripts/setup does)"
        )
    proc = subprocess.run(
        [str(actionlint), "-no-color", *map(str, files)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_action_scripts_pass_shellcheck() -> None:
    scripts = sorted(ACTION_SCRIPTS.glob("*.sh"))
    assert {path.name for path in scripts} >= {"prepare.sh", "tools.sh", "run.sh", "summary.sh"}
    for path in scripts:
        text = path.read_text()
        assert path.name == "lib.sh" or "\nset -euo pipefail\n" in text, path.name
        assert "eval" not in text.split(), path.name
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not on PATH (scripts/setup installs it, as root)")
    proc = subprocess.run(
        [shellcheck, "-x", *(path.name for path in scripts)],
        cwd=ACTION_SCRIPTS,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["gate.yml", "nightly.yml"])
def test_the_gate_and_the_nightly_use_the_action_with_no_expression_in_a_script(
    name: str,
) -> None:
    jobs = workflow(name)["jobs"]
    steps = [spec for job in jobs.values() for spec in job["steps"]]
    for spec in steps:
        assert "${{" not in spec.get("run", ""), f"{name}: {spec.get('name')}: use env:"
        assert "shell" not in spec or spec["shell"] == "bash", "no inline Python"
    uses = [spec for spec in steps if spec.get("uses") == "./"]
    assert len(uses) == 1
    assert set(uses[0]["with"]) <= set(load_action()["inputs"])


# --- the gate ----------------------------------------------------------------------------


def since_step() -> dict[str, Any]:
    job = workflow("gate.yml")["jobs"]["gate"]
    found = step(job, named="Find what to compare with")
    action = next(spec for spec in job["steps"] if spec.get("uses") == "./")
    assert action["with"]["changed-since"] == f"${{{{ steps.{found['id']}.outputs.ref }}}}"
    assert action["with"]["pytest-args"] == "--deselect=suites/broken/"
    return found


def compared_with(repo: Path, event: str, sha: str = "") -> str:
    """The ref the gate's first step picks, run as GitHub runs it."""
    spec = since_step()
    output = repo.parent / "output"
    output.write_text("")
    env = {
        **os.environ,
        "GITHUB_EVENT_NAME": event,
        "GITHUB_SHA": sha,
        "GITHUB_OUTPUT": str(output),
        "BASE_REF": "main" if event == "pull_request" else "",
    }
    script = repo.parent / "since.sh"
    script.write_text(spec["run"])
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return read_pairs(output)["ref"]


def test_the_gate_compares_a_pull_request_with_its_base_and_a_tag_with_the_previous_one(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    shas = []
    for tag in ("v1", "v2"):
        (repo / "Chart.yaml").write_text(f"name: c\nversion: {tag}\n")
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", tag], check=True)
        subprocess.run([*git, "tag", tag], check=True)
        sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        shas.append(sha.stdout.strip())
    assert compared_with(repo, "pull_request") == "origin/main"
    assert compared_with(repo, "push", shas[1]) == "v1"
    empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the first tag: all of it is new
    assert compared_with(repo, "push", shas[0]) == empty_tree


# --- the nightly run ---------------------------------------------------------------------


def test_the_nightly_shards_the_upgrade_run_and_merges_the_reports(tmp_path: Path) -> None:
    jobs = workflow("nightly.yml")["jobs"]
    upgrade, report = jobs["upgrade"], jobs["report"]
    assert upgrade["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    given = next(spec for spec in upgrade["steps"] if spec.get("uses") == "./")["with"]
    history = ".history/nightly-shard-${{ matrix.shard }}.db"
    assert given == {
        "suites": "suites",
        "upgrade": True,
        "shard": "${{ matrix.shard }}/4",
        "history": history,
    }
    # The history survives the night: restored from an earlier key, saved even after a failure.
    restore = next(s for s in upgrade["steps"] if s.get("uses") == "actions/cache/restore@v4")
    save = next(s for s in upgrade["steps"] if s.get("uses") == "actions/cache/save@v4")
    assert restore["with"]["path"] == save["with"]["path"] == ".history"
    assert restore["with"]["key"] == save["with"]["key"] and "github.run_id" in save["with"]["key"]
    assert restore["with"]["key"].startswith(restore["with"]["restore-keys"])
    assert save["if"] == "always()"
    assert report["needs"] == "upgrade" and report["if"] == "always()"
    pattern = next(s for s in report["steps"] if "download-artifact" in s.get("uses", ""))
    assert pattern["with"]["pattern"] == "harness-report-shard-*"  # what the action uploads
    assert (
        'helm-harness report --merge "${dirs[@]}" -o harness-report'
        in step(report, named="Merge")["run"]
    )
    summary = step(report, named="Write the job summary")
    assert summary["run"] == "bash .github/action/summary.sh"
    assert (REPO / ".github" / "action" / "summary.sh").is_file()
    # The action's run step with shard 1's inputs: a command line pytest takes, collected
    # without a cluster.
    inputs = {
        "suites": given["suites"],
        "upgrade": "true",
        "shard": given["shard"].replace("${{ matrix.shard }}", "1"),
        "report-dir": str(tmp_path / "report"),
        "pytest-args": "--collect-only -q",
    }
    env = {"HELM_HARNESS_CACHE": str(tmp_path / "cache")}
    run = ActionRun(REPO, tmp_path / "runner", inputs, env).run(only="prepare").run(only="run")
    assert run.outputs["prepare"]["artifact"] == "harness-report-shard-1-of-4"
    ran = run.step("Run the suites")
    assert ran.stdout.startswith(
        "helm-harness run suites --cluster=kind --upgrade --shard=1/4 --report-dir="
    ), ran.stdout
    assert run.outputs["run"]["outcome"] == "passed", run.log
    assert "deselected" in ran.stdout  # the other shards' items


# --- scripts/annotate.py ------------------------------------------------------------------

JUNIT = """\
<?xml version='1.0' encoding='utf-8'?>
<testsuites name="helm-harness" tests="4" failures="2" errors="1">
  <testsuite name="helm-harness" tests="4" failures="2" errors="1" skipped="0">
    <testcase name="install" classname="shop::web" file="suites/shop.suite.yaml" time="1.0">
      <properties>
        <property name="suite" value="shop" /><property name="app" value="web" />
      </properties>
    </testcase>
    <testcase name="ready" classname="shop::web" file="suites/shop.suite.yaml" time="3.5">
      <properties>
        <property name="suite" value="shop" /><property name="app" value="web" />
        <property name="runbook" value="https://runbooks.example.org/web" />
      </properties>
      <failure message="web::ready: expected web-web ready"
        >web::ready: expected web-web ready, 100% sure
pods:
  pod/web-web-1: web: waiting CrashLoopBackOff (restarts 3)</failure>
    </testcase>
    <testcase name="install" classname="shop::db" file="suites/shop.suite.yaml" time="0.2">
      <properties>
        <property name="suite" value="shop" /><property name="app" value="db" />
      </properties>
      <error message="teardown: boom">teardown: boom</error>
    </testcase>
    <testcase name="test_cart" classname="tests.test_shop" file="tests/test_shop.py" line="9">
      <failure message="assert 1 == 2">assert 1 == 2</failure>
    </testcase>
  </testsuite>
</testsuites>
"""

SHOP_SUITE = """\
apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: db
    chart: ../charts/db
  - name: web
    chart: ../charts/web
"""


def annotate(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_WORKSPACE": str(workspace)}
    return subprocess.run(
        [sys.executable, str(ANNOTATE), *args],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )


def test_annotations_name_the_suite_file_and_the_apps_line(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "shop.suite.yaml").write_text(SHOP_SUITE)
    (tmp_path / "junit.xml").write_text(JUNIT)
    proc = annotate(tmp_path, "junit.xml")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        "::error file=suites/shop.suite.yaml,line=6,title=shop%3A%3Aweb%3A%3Aready failed::"
        "web::ready: expected web-web ready, 100%25 sure%0Apods:%0A"
        "  pod/web-web-1: web: waiting CrashLoopBackOff (restarts 3)%0A"
        "runbook: https://runbooks.example.org/web",
        "::error file=suites/shop.suite.yaml,line=4,title=shop%3A%3Adb%3A%3Ainstall errored::"
        "teardown: boom",
        "::error file=tests/test_shop.py,line=10,title=tests.test_shop.test_cart failed::"
        "assert 1 == 2",
    ]


def test_annotations_are_capped(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(JUNIT)
    lines = annotate(tmp_path, "junit.xml", "--max", "1").stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("::error file=suites/shop.suite.yaml,title=")
    assert lines[1] == "::notice title=more failures::2 more failed items: see the report artifact"


def test_a_missing_report_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    proc = annotate(tmp_path, "harness-report/junit.xml")
    assert proc.returncode == 0
    assert proc.stdout.startswith("::warning title=no test report::cannot read harness-report")


def test_annotations_from_a_real_pytest_junit_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cart=textwrap.dedent(
            """
            def test_ok():
                pass

            def test_total():
                assert 1 + 1 == 3, "the cart's total is wrong"
            """
        )
    )
    pytester.runpytest_subprocess("--junitxml=report/junit.xml", "-p", "no:cacheprovider")
    proc = annotate(pytester.path, "report/junit.xml")
    assert proc.stdout.startswith(
        "::error file=test_cart.py,line=5,title=test_cart.test_total failed::"
    )
    assert "the cart's total is wrong" in proc.stdout and proc.stdout.count("::error") == 1
