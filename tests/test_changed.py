"""``helm-harness changed`` and ``helm-harness run --changed-since``: which charts a change
touches and which suites use them, in real git repositories made here (no cluster)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.cli.main import pytest_args
from harness.errors import UsageError
from harness.suite.changed import Changes, find_changes

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
CHARTS = ("charts/web", "charts/db", "charts/db/charts/cache", "charts/old", "legacy/web-1.0")
SUITES = {
    "web": "- {name: web, chart: ../charts/web}",
    "db": "- {name: db, chart: ../charts/db, valuesFiles: [ci.yaml]}",
    "upgrade": "- {name: web, chart: ../charts/web, upgrade: {from: {chart: ../legacy/web-1.0}}}",
    "old": "- {name: old, chart: ../charts/old}",
    "broken/broken": "- {name: web, chart: ../../charts/web}",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def write(repo: Path, path: str, text: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)


def chart(repo: Path, folder: str) -> None:
    name = folder.rsplit("/", 1)[-1]
    write(repo, f"{folder}/Chart.yaml", f"apiVersion: v2\nname: {name}\nversion: 1.0.0\n")
    write(repo, f"{folder}/values.yaml", "replicas: 1\n")
    write(
        repo,
        f"{folder}/templates/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}'}\n",
    )


def suite(repo: Path, name: str, apps: str) -> None:
    write(
        repo,
        f"suites/{name}.suite.yaml",
        f"apiVersion: helm-harness/v1\nkind: Suite\napps:\n  {apps}\n",
    )


def commit(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A chart repository: two commits on main, then a branch ``feature`` checked out."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for folder in CHARTS:
        chart(repo, folder)
    write(repo, "suites/ci.yaml", "replicas: 2\n")
    for name, apps in SUITES.items():
        suite(repo, name, apps)
    commit(repo, "charts and suites")
    write(repo, "README.md", "# charts\n")
    commit(repo, "readme")
    git(repo, "checkout", "-q", "-b", "feature")
    monkeypatch.chdir(repo)
    return repo


def changes(since: str | None = None, exclude: Sequence[str] = ("suites/broken",)) -> Changes:
    return find_changes(Path.cwd(), since=since, exclude=[Path(path) for path in exclude])


def charts_of(found: Changes) -> list[tuple[str, str, str | None]]:
    return [(chart.path, chart.change, chart.previous) for chart in found.charts]


def suites_of(found: Changes) -> list[str]:
    return [str(path) for path in found.suites]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_a_modified_chart_selects_the_suites_that_use_it_and_not_the_excluded(repo: Path) -> None:
    write(repo, "charts/web/templates/extra.yaml", "# more\n")
    commit(repo)
    found = changes()
    assert charts_of(found) == [("charts/web", "modified", None)]
    assert suites_of(found) == ["suites/upgrade.suite.yaml", "suites/web.suite.yaml"]
    assert found.base == git(repo, "rev-parse", "main").strip() and found.errors == ()
    assert found.files[0].path == "charts/web/templates/extra.yaml"
    everything = changes(exclude=())
    assert "suites/broken/broken.suite.yaml" in suites_of(everything)


def test_an_added_chart_and_its_new_suite(repo: Path) -> None:
    chart(repo, "charts/fresh")
    suite(repo, "fresh", "- {name: fresh, chart: ../charts/fresh}")
    commit(repo)
    found = changes()
    assert charts_of(found) == [("charts/fresh", "added", None)]
    assert suites_of(found) == ["suites/fresh.suite.yaml"]


def test_a_renamed_chart_is_one_rename_and_the_suite_following_it_runs(repo: Path) -> None:
    git(repo, "mv", "charts/old", "charts/new")
    write(repo, "charts/new/values.yaml", "replicas: 3\n")  # moved and edited
    suite(repo, "old", "- {name: old, chart: ../charts/new}")
    commit(repo)
    found = changes()
    assert charts_of(found) == [("charts/new", "renamed", "charts/old")]
    assert suites_of(found) == ["suites/old.suite.yaml"]
    assert found.as_json()["charts"] == [
        {"path": "charts/new", "change": "renamed", "from": "charts/old"}
    ]


def test_a_deleted_chart_runs_the_suite_still_naming_it_with_the_error(repo: Path) -> None:
    git(repo, "rm", "-q", "-r", "charts/old")
    commit(repo)
    found = changes()
    assert charts_of(found) == [("charts/old", "deleted", None)]
    assert suites_of(found) == ["suites/old.suite.yaml"]
    (error,) = found.errors
    assert error.startswith("suites/old.suite.yaml:4: apps[0].chart: chart not found")


def test_a_changed_values_file_selects_the_suite_using_it(repo: Path) -> None:
    write(repo, "suites/ci.yaml", "replicas: 5\n")
    commit(repo)
    found = changes()
    assert charts_of(found) == [] and suites_of(found) == ["suites/db.suite.yaml"]


def test_a_changed_suite_file_selects_itself(repo: Path) -> None:
    write(repo, "suites/web.suite.yaml", (repo / "suites/web.suite.yaml").read_text() + "# x\n")
    write(repo, "README.md", "# more\n")
    commit(repo)
    found = changes()
    assert charts_of(found) == [] and suites_of(found) == ["suites/web.suite.yaml"]


def test_a_subchart_change_touches_its_parent(repo: Path) -> None:
    write(repo, "charts/db/charts/cache/values.yaml", "replicas: 4\n")
    commit(repo)
    found = changes()
    assert charts_of(found) == [
        ("charts/db", "modified", None),
        ("charts/db/charts/cache", "modified", None),
    ]
    assert suites_of(found) == ["suites/db.suite.yaml"]


def test_charts_under_an_excluded_folder_are_not_changed_charts(repo: Path) -> None:
    write(repo, "legacy/web-1.0/values.yaml", "replicas: 9\n")
    write(repo, "suites/broken/broken.suite.yaml", "# edited\n" + SUITES["broken/broken"])
    commit(repo)
    assert charts_of(changes()) == [("legacy/web-1.0", "modified", None)]
    assert suites_of(changes()) == ["suites/upgrade.suite.yaml"]
    found = changes(exclude=("suites/broken", "legacy"))
    assert charts_of(found) == [] and suites_of(found) == []


def test_a_suite_that_does_not_load_is_always_selected_with_its_error(repo: Path) -> None:
    write(repo, "README.md", "# only the readme\n")
    suite(repo, "typo", "- {name: web, chart: ../charts/web, vaules: {}}")
    commit(repo)
    found = changes()
    assert suites_of(found) == ["suites/typo.suite.yaml"]
    (error,) = found.errors
    assert error.startswith("suites/typo.suite.yaml:4:") and "vaules" in error


def test_uncommitted_staged_and_untracked_changes_count(repo: Path) -> None:
    assert charts_of(changes()) == [] and suites_of(changes()) == []
    write(repo, "charts/web/values.yaml", "replicas: 7\n")  # edited, not staged
    write(repo, "charts/db/templates/new.yaml", "# new\n")  # untracked
    write(repo, "legacy/web-1.0/values.yaml", "replicas: 8\n")
    git(repo, "add", "legacy")  # staged, not committed
    write(repo, "charts/old/ignored.log", "x\n")
    write(repo, ".gitignore", "*.log\n")  # untracked; ignored files do not count
    found = changes()
    assert charts_of(found) == [
        ("charts/db", "modified", None),
        ("charts/web", "modified", None),
        ("legacy/web-1.0", "modified", None),
    ]
    assert suites_of(found) == [
        "suites/db.suite.yaml",
        "suites/upgrade.suite.yaml",
        "suites/web.suite.yaml",
    ]


def test_the_base_is_the_merge_base_so_the_target_branchs_own_changes_do_not_count(
    repo: Path,
) -> None:
    write(repo, "charts/web/values.yaml", "replicas: 6\n")
    commit(repo)
    branched = git(repo, "rev-parse", "main").strip()
    git(repo, "checkout", "-q", "main")
    write(repo, "charts/db/values.yaml", "replicas: 6\n")  # main moves on
    commit(repo)
    git(repo, "checkout", "-q", "feature")
    for since in (None, "main"):
        found = changes(since)
        assert found.base == branched
        assert charts_of(found) == [("charts/web", "modified", None)]
    assert changes().since is None and changes("main").since == "main"
    # a ref HEAD descends from is its own merge base: only what came after it
    assert charts_of(changes("HEAD")) == []


def test_a_tree_as_the_base_makes_everything_added(repo: Path) -> None:
    empty = git(repo, "hash-object", "-t", "tree", "/dev/null").strip()
    found = changes(empty)
    assert found.base == empty and not found.merge_base
    assert {change for _, change, _ in charts_of(found)} == {"added"}
    assert len(found.charts) == len(CHARTS)
    assert len(found.suites) == len(SUITES) - 1  # all but the excluded one


def test_the_cli_lists_as_text_and_as_json(repo: Path) -> None:
    proc = cli("changed", "--exclude", "suites/broken")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == ["changed charts: none", "suites to run: none"]
    git(repo, "mv", "charts/old", "charts/new")
    write(repo, "suites/ci.yaml", "replicas: 5\n")
    proc = cli("changed", "--exclude", "suites/broken", "--target-branch", "main")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    main = git(repo, "rev-parse", "main").strip()
    assert lines[0] == f"base: {main} (the merge base of HEAD and main)"
    assert lines[1:4] == [
        "changed charts:",
        "  renamed   charts/new (from charts/old)",
        "suites to run:",
    ]
    assert lines[4:6] == ["  suites/db.suite.yaml", "  suites/old.suite.yaml"]
    assert lines[6].startswith("suites that do not load") and "chart not found" in lines[7]
    proc = cli("changed", "--since", "main", "--suites", "suites", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document == {
        "base": main,
        "since": "main",
        "charts": [{"path": "charts/new", "change": "renamed", "from": "charts/old"}],
        "suites": ["suites/db.suite.yaml", "suites/old.suite.yaml"],
        "errors": [document["errors"][0]],
    }
    assert document["errors"][0].startswith("suites/old.suite.yaml:4: apps[0].chart:")


def test_a_bad_ref_is_a_usage_error_naming_it(repo: Path) -> None:
    proc = cli("changed", "--since", "no-such-branch")
    assert proc.returncode == 4
    assert proc.stderr == f"helm-harness: error: --since no-such-branch: no such commit in {repo}\n"
    proc = cli("changed", "--target-branch", "trunk")
    assert proc.returncode == 4
    assert "neither origin/trunk nor trunk is a branch" in proc.stderr
    proc = cli("run", "--changed-since", "no-such-branch", "--collect-only")
    assert proc.returncode == 4
    assert "--changed-since no-such-branch: no such commit" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(UsageError, match="--changed-since needs a value"):
        pytest_args(["--changed-since"])


def test_outside_a_git_repository_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    for args in (["changed"], ["run", "--changed-since", "main"]):
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 4, proc.stderr
        assert proc.stderr.startswith(f"helm-harness: error: {tmp_path} is not in a git work tree")
        assert len(proc.stderr.splitlines()) == 1


def test_a_shallow_clone_without_the_merge_base_says_to_fetch_it(
    repo: Path, tmp_path: Path
) -> None:
    git(repo, "checkout", "-q", "main")
    write(repo, "README.md", "# main moved on\n")
    commit(repo)
    git(repo, "checkout", "-q", "feature")
    write(repo, "charts/web/values.yaml", "replicas: 6\n")
    commit(repo)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-single-branch", f"file://{repo}", str(clone))
    proc = cli("changed", cwd=clone)
    assert proc.returncode == 4
    assert "not in this shallow clone" in proc.stderr and "fetch-depth: 0" in proc.stderr


def collected(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}


def test_run_changed_since_runs_only_the_selected_suites(repo: Path) -> None:
    write(repo, "charts/db/values.yaml", "replicas: 3\n")
    write(repo, "suites/broken/broken.suite.yaml", "apps: [")  # does not load: selected
    args = ("run", "--changed-since", "main", "-p", "no:cacheprovider", "--collect-only", "-q")
    proc = cli(*args)
    assert proc.returncode == 4, proc.stdout + proc.stderr  # the broken suite: a usage error
    assert collected(proc) == {"suites/db.suite.yaml"}
    assert "suites/broken/broken.suite.yaml:1: invalid YAML" in proc.stderr
    assert "changed since main" in proc.stderr
    (repo / "suites/broken/broken.suite.yaml").unlink()
    proc = cli(*args, "suites/web.suite.yaml", "suites/db.suite.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert collected(proc) == {"suites/db.suite.yaml"}


def test_run_changed_since_with_nothing_changed_exits_0_and_says_so(repo: Path) -> None:
    write(repo, "README.md", "# not a chart\n")
    proc = cli("run", "--changed-since=main", "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "no suite uses a changed chart since main: nothing to run\n"
