"""The GitHub workflows: actionlint (with shellcheck, when it is on PATH) finds nothing;
the gate's suite selection and the nightly's command line do what they say; and
``scripts/annotate.py`` turns JUnit failures into annotations."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import tools
from harness.cli.main import pytest_args
from tests.conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"
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


# --- the gate's selection of suites --------------------------------------------------


def selection_script() -> str:
    job = workflow("gate.yml")["jobs"]["gate"]
    selecting = step(job, named="Find the suites")
    assert selecting["shell"] == "python" and selecting["id"] == "select"
    script: str = selecting["run"]
    return script


def test_the_selection_script_is_lint_clean(tmp_path: Path) -> None:
    script = tmp_path / "select.py"
    script.write_text(selection_script())
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "E,F,W,B", str(script)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def charts_repo(tmp_path: Path) -> Path:
    """A repository with charts web, db and a subchart, and suites that use them."""
    for chart in ("charts/web", "charts/db", "charts/db/charts/cache", "old/web-1.0"):
        (tmp_path / chart / "templates").mkdir(parents=True)
        name = chart.rsplit("/", 1)[-1]
        (tmp_path / chart / "Chart.yaml").write_text(
            f"apiVersion: v2\nname: {name}\nversion: 1.0.0\n"
        )
    (tmp_path / "suites" / "broken").mkdir(parents=True)
    (tmp_path / "suites" / "ci.yaml").write_text("replicaCount: 1\n")
    suites = {
        "web": "- {name: web, chart: ../charts/web}",
        "db": "- {name: db, chart: ../charts/db, valuesFiles: [ci.yaml]}",
        "upgrade": "- {name: web, chart: ../charts/web, upgrade: {from: {chart: ../old/web-1.0}}}",
        "broken/broken": "- {name: web, chart: ../../charts/web}",
    }
    for name, app in suites.items():
        (tmp_path / "suites" / f"{name}.suite.yaml").write_text(
            f"apiVersion: helm-harness/v1\nkind: Suite\napps:\n  {app}\n"
        )
    return tmp_path


def select(repo: Path, *changed: str) -> list[str]:
    (repo / "changed.txt").write_text("".join(f"{path}\n" for path in changed))
    output, summary = repo / "output.txt", repo / "summary.md"
    env = {
        **os.environ,
        "SUITES": "suites",
        "EXCLUDE": "suites/broken",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    proc = subprocess.run(
        [sys.executable, "-c", selection_script()],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    lines = output.read_text().splitlines()
    assert lines[0] == "suites<<END_OF_SUITES" and lines[-1] == "END_OF_SUITES"
    return lines[1:-1]


@pytest.mark.parametrize(
    "changed, suites",
    [
        (["charts/web/values.yaml"], ["suites/upgrade.suite.yaml", "suites/web.suite.yaml"]),
        (["charts/db/charts/cache/values.yaml"], ["suites/db.suite.yaml"]),  # a subchart's parent
        (["old/web-1.0/Chart.yaml"], ["suites/upgrade.suite.yaml"]),  # the release upgraded from
        (["suites/ci.yaml"], ["suites/db.suite.yaml"]),  # a values file
        (["suites/web.suite.yaml", "README.md"], ["suites/web.suite.yaml"]),  # the suite itself
        (["README.md", "charts/gone/Chart.yaml"], []),
        ([], []),
    ],
)
def test_the_gate_runs_the_suites_that_use_changed_charts(
    charts_repo: Path, changed: list[str], suites: list[str]
) -> None:
    assert select(charts_repo, *changed) == suites


def test_the_gate_runs_a_broken_suite_file_so_it_fails(charts_repo: Path) -> None:
    (charts_repo / "suites" / "typo.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\n"
        "apps: [{name: web, chart: ../charts/web, vaules: {}}]\n"
    )
    assert "suites/typo.suite.yaml" in select(charts_repo, "README.md")


# --- the nightly run ---------------------------------------------------------------------


def test_the_nightly_shards_the_upgrade_run_and_merges_the_reports(tmp_path: Path) -> None:
    jobs = workflow("nightly.yml")["jobs"]
    upgrade, report = jobs["upgrade"], jobs["report"]
    assert upgrade["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    command = step(upgrade, named="Upgrade run")["run"]
    assert command.startswith("helm-harness run suites/ --upgrade --shard ${{ matrix.shard }}/4")
    assert report["needs"] == "upgrade" and report["if"] == "always()"
    assert (
        'helm-harness report --merge "${dirs[@]}" -o harness-report'
        in step(report, named="Merge")["run"]
    )
    # the command line is one `helm-harness run` takes: collect shard 1 without a cluster
    given = shlex.split(command.replace("${{ matrix.shard }}", "1").replace('"$CLUSTER"', "hh"))
    assert given[:2] == ["helm-harness", "run"]
    args = pytest_args(given[2:])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, f"--report-dir={tmp_path}", "--collect-only", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deselected" in proc.stdout  # the other shards' items


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
