"""Upgrades from git (``upgrade.from: {git: REF, path: PATH}``): the old chart written out
from a real git repository made here, every way it can be wrong named with its ref and
path, and upgrade runs on the real kwok cluster from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.clusters.base import ClusterInfo
from harness.errors import UsageError
from harness.helm.client import Helm
from harness.helm.gitref import materialise
from harness.suite.model import ChartRef, GitChart, SuiteError, load_suite
from harness.tools import find_helm
from tests.conftest import FIXTURE_CHARTS

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
SHOP = FIXTURE_CHARTS / "versions"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def put_chart(repo: Path, version: str) -> None:
    """charts/shop as the fixture's shop-VERSION."""
    target = repo / "charts" / "shop"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(SHOP / f"shop-{version}", target)


def write_suite(repo: Path, upgrade_from: str) -> Path:
    path = repo / "suites" / "shop.suite.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: helm-harness/v1
            kind: Suite
            defaults: {{timeout: 60s}}
            apps:
              - name: shop
                chart: ../charts/shop
                upgrade: {{from: {upgrade_from}}}
                checks: [{{ready: {{}}}}]
            """
        )
    )
    return path


def new_repo(repo: Path, upgrade_from: str, version: str = "0.1.0") -> tuple[Path, str]:
    """(the suite file, the commit): a repository at ``repo`` with charts/shop at
    ``version`` and a suite upgrading it ``upgrade_from``, committed on main."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    put_chart(repo, version)
    suite = write_suite(repo, upgrade_from)
    return suite, commit(repo, f"shop {version}")


def on_feature(repo: Path) -> None:
    """Branch ``feature`` checked out, charts/shop 0.2.0 in the work tree."""
    git(repo, "checkout", "-q", "-b", "feature")
    put_chart(repo, "0.2.0")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """charts/shop 0.1.0 committed on main; branch ``feature`` checked out, where the work
    tree has 0.2.0 (not committed)."""
    new_repo(tmp_path / "repo", "{git: main}")
    on_feature(tmp_path / "repo")
    return tmp_path / "repo"


def source(repo: Path, ref: str = "main", path: str | None = "charts/shop") -> GitChart:
    return GitChart(ref=ref, path=path, folder=repo / "suites")


def own_chart(repo: Path) -> ChartRef:
    return ChartRef(chart=str(repo / "charts" / "shop"))


def written(repo: Path, tmp_path: Path, build: Callable[[Path], None]) -> Path:
    """The folder main's charts/shop is written to, ``build`` building its dependencies."""
    into = tmp_path / "out"
    into.mkdir(exist_ok=True)
    chart = materialise(
        source(repo), app_chart=own_chart(repo), into=into, build_dependencies=build
    )
    return chart.folder


# --- the chart at a ref ------------------------------------------------------------------


def test_the_chart_is_written_out_as_it_was_at_the_ref(repo: Path, tmp_path: Path) -> None:
    main = git(repo, "rev-parse", "main")
    into = tmp_path / "out"
    into.mkdir()
    chart = materialise(source(repo, path=None), app_chart=own_chart(repo), into=into)
    assert chart.path == "charts/shop"  # the app's own folder, relative to the root
    assert chart.version == "0.1.0" and chart.commit == main
    assert chart.label == f"git:main@{main[:7]}"
    assert chart.folder.is_relative_to(into)
    assert "version: 0.1.0" in (chart.folder / "Chart.yaml").read_text()
    assert not (chart.folder / "templates" / "configmap.yaml").exists()  # 0.2.0's
    assert not list(into.glob("*.tar"))  # the archive is gone once extracted
    record = chart.summary()
    assert record["chart"] == f"git:main@{main[:7]}:charts/shop"
    assert record["git"] == {"ref": "main", "commit": main, "path": "charts/shop"}


def test_a_tag_or_commit_is_a_ref_too(repo: Path, tmp_path: Path) -> None:
    main = git(repo, "rev-parse", "main")
    git(repo, "tag", "shop-0.1.0", main)
    for ref in ("shop-0.1.0", main[:10]):
        into = tmp_path / ref
        into.mkdir()
        chart = materialise(source(repo, ref), app_chart=own_chart(repo), into=into)
        assert chart.commit == main and chart.version == "0.1.0"


def test_the_git_base_is_the_merge_base_with_the_branch(repo: Path, tmp_path: Path) -> None:
    """On a feature branch, the base is where it left main, not main's tip; origin/main
    wins over main when there is one, as for ``helm-harness changed``."""
    started = git(repo, "rev-parse", "main")
    commit(repo, "shop 0.2.0 on feature")
    git(repo, "checkout", "-q", "main")
    (repo / "charts" / "shop" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: shop\nversion: 0.1.5\n"
    )
    tip = commit(repo, "main moved on")
    git(repo, "checkout", "-q", "feature")
    first = tmp_path / "first"
    first.mkdir()
    chart = materialise(
        source(repo, "ignored"), app_chart=own_chart(repo), into=first, base_branch="main"
    )
    assert chart.commit == started != tip and chart.version == "0.1.0"
    assert chart.label == f"git:merge-base(main)@{started[:7]}"
    git(repo, "update-ref", "refs/remotes/origin/main", tip)  # origin/main: at the tip
    second = tmp_path / "second"
    second.mkdir()
    chart = materialise(source(repo), app_chart=own_chart(repo), into=second, base_branch="main")
    assert chart.ref == "merge-base(origin/main)" and chart.commit == started


def test_vendored_subcharts_come_along_and_symlinks_inside_are_kept(
    repo: Path, tmp_path: Path
) -> None:
    git(repo, "checkout", "-q", "main")
    chart = repo / "charts" / "shop"
    (chart / "charts" / "cache").mkdir(parents=True)
    (chart / "charts" / "cache" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: cache\nversion: 1.0.0\n"
    )
    with (chart / "Chart.yaml").open("a") as out:
        out.write("dependencies:\n  - {name: cache, version: 1.0.0}\n")
    (chart / "values-ci.yaml").symlink_to("values.yaml")
    commit(repo, "vendored cache")
    git(repo, "checkout", "-q", "feature")
    builds: list[Path] = []
    folder = written(repo, tmp_path, builds.append)
    assert (folder / "charts" / "cache" / "Chart.yaml").is_file()
    assert builds == []  # nothing missing from charts/: no helm dependency build
    assert (folder / "values-ci.yaml").read_text() == (folder / "values.yaml").read_text()


def test_dependencies_missing_from_charts_are_built_with_helm(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "main")
    chart = repo / "charts" / "shop"
    (chart / "libs" / "common").mkdir(parents=True)
    (chart / "libs" / "common" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: common\nversion: 1.0.0\n"
    )
    (chart / ".helmignore").write_text("libs/\n")
    with (chart / "Chart.yaml").open("a") as out:
        out.write(
            "dependencies:\n  - {name: common, version: 1.0.0, repository: file://libs/common}\n"
        )
    commit(repo, "a dependency to build")
    git(repo, "checkout", "-q", "feature")
    helm = Helm(find_helm(None))
    folder = written(repo, tmp_path, lambda f: helm.dependency_build(str(f)))
    assert [p.name for p in (folder / "charts").iterdir()] == ["common-1.0.0.tgz"]


def test_a_dependency_helm_cannot_build_is_one_line(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "main")
    with (repo / "charts" / "shop" / "Chart.yaml").open("a") as out:
        out.write(
            "dependencies:\n  - {name: common, version: 1.0.0, repository: file://../common}\n"
        )
    commit(repo, "a dependency outside the chart")
    git(repo, "checkout", "-q", "feature")
    helm = Helm(find_helm(None))
    with pytest.raises(UsageError) as caught:
        written(repo, tmp_path, lambda f: helm.dependency_build(str(f)))
    message = str(caught.value)
    assert message.startswith("upgrade.from {git: main, path: charts/shop} at main@")
    assert "dependencies missing from charts/, and helm dependency build failed:" in message
    assert "\n" not in message


# --- what can be wrong -------------------------------------------------------------------


def failure(repo: Path, tmp_path: Path, ref: str = "main", path: str = "charts/shop") -> str:
    into = tmp_path / "out"
    into.mkdir(exist_ok=True)
    with pytest.raises(UsageError) as caught:
        materialise(source(repo, ref, path), app_chart=own_chart(repo), into=into)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_unknown_ref_is_named(repo: Path, tmp_path: Path) -> None:
    message = failure(repo, tmp_path, ref="release-9")
    assert message == (
        f"upgrade.from {{git: release-9, path: charts/shop}}: no commit 'release-9' in {repo}"
    )


def test_a_path_not_in_that_commit_is_named(repo: Path, tmp_path: Path) -> None:
    message = failure(repo, tmp_path, path="charts/cart")
    assert message.startswith("upgrade.from {git: main, path: charts/cart} at main@")
    assert message.endswith(": the path charts/cart is not in that commit")


def test_a_folder_without_chart_yaml_is_not_a_chart(repo: Path, tmp_path: Path) -> None:
    assert failure(repo, tmp_path, path="suites").endswith(
        ": suites is not a Helm chart at that commit: no Chart.yaml"
    )
    assert failure(repo, tmp_path, path="charts/shop/Chart.yaml").endswith(
        ": charts/shop/Chart.yaml is a file at that commit, not a chart folder"
    )


def test_outside_a_git_repository(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(UsageError) as caught:
        materialise(
            GitChart(ref="main", path="charts/shop", folder=folder),
            app_chart=ChartRef(chart=str(folder)),
            into=tmp_path,
        )
    assert str(caught.value).startswith(
        f"upgrade.from {{git: main, path: charts/shop}}: not a git repository: {folder} is not "
        "in a git work tree"
    )


def test_a_shallow_clone_without_the_ref_says_how_to_fetch_it(repo: Path, tmp_path: Path) -> None:
    old = git(repo, "rev-parse", "main")
    commit(repo, "0.2.0")
    clone = tmp_path / "clone"
    subprocess.run(
        [*GIT, "clone", "-q", "--depth", "1", "-b", "feature", f"file://{repo}", str(clone)],
        check=True,
    )
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(UsageError) as caught:
        materialise(
            GitChart(ref=old, path="charts/shop", folder=clone / "suites"),
            app_chart=ChartRef(chart=str(clone / "charts" / "shop")),
            into=into,
        )
    message = str(caught.value)
    assert f"no commit '{old}' in {clone}; this is a shallow clone" in message
    assert "fetch-depth: 0" in message
    with pytest.raises(UsageError, match=r"--upgrade-from-git-base main: neither origin/main"):
        materialise(
            GitChart(ref="x", path="charts/shop", folder=clone / "suites"),
            app_chart=ChartRef(chart=str(clone / "charts" / "shop")),
            into=into,
            base_branch="main",
        )


@pytest.mark.parametrize("target", ["../../README.md", "/etc/passwd"])
def test_a_symlink_out_of_the_chart_is_refused(repo: Path, tmp_path: Path, target: str) -> None:
    git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("outside the chart\n")
    (repo / "charts" / "shop" / "templates" / "NOTES.txt").symlink_to(target)
    commit(repo, "a link out")
    git(repo, "checkout", "-q", "feature")
    message = failure(repo, tmp_path)
    assert message.endswith(
        f": the symlink templates/NOTES.txt points outside the chart ({target}); only links "
        "within the chart folder are followed"
    )


# --- the suite file ----------------------------------------------------------------------


def test_a_suite_with_git_loads_without_git(repo: Path) -> None:
    """The ref and path are looked up by the upgrade run, not when the suite loads."""
    suite = load_suite(write_suite(repo, "{git: no-such-ref, path: charts/x}"))
    old = suite.apps[0].upgrade_from
    assert old is not None and old.git == GitChart("no-such-ref", "charts/x", repo / "suites")
    assert old.chart == "git:no-such-ref:charts/x" and not old.is_local


@pytest.mark.parametrize(
    ("upgrade_from", "key", "message"),
    [
        ("{git: main, version: 1.0.0}", "version", "`git` takes only `path` beside it"),
        ("{path: charts/shop}", "path", "path goes with `git`: {git: REF, path: PATH}"),
        ("{git: main, path: ../shop}", "path", "a path relative to the root of the git"),
        ("{git: main, path: /charts/shop}", "path", "a path relative to the root of the git"),
        ("{git: '-x'}", "git", "not a git ref: '-x'"),
        ("{git: 1.5}", "git", "expected text, got the number 1.5; quote it"),
    ],
)
def test_suite_errors_name_the_key(repo: Path, upgrade_from: str, key: str, message: str) -> None:
    path = write_suite(repo, upgrade_from)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert caught.value.key == f"apps[0].upgrade.from.{key}", str(caught.value)
    assert caught.value.line == 7
    assert message in caught.value.problem


def test_a_chart_from_a_repo_needs_a_path(repo: Path) -> None:
    path = write_suite(repo, "{git: main}")
    path.write_text(
        path.read_text().replace("../charts/shop", "shop\n    repo: https://charts.example.org")
    )
    with pytest.raises(SuiteError, match="not a local folder, so `git` needs `path` beside it"):
        load_suite(path)


# --- upgrade runs on kwok ----------------------------------------------------------------


def run(
    pytester: pytest.Pytester, cluster: ClusterInfo, suite: Path, *args: str
) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(suite),
        f"--kubeconfig={cluster.kubeconfig}",
        "--upgrade",
        "--report-dir",
        "out",
        "-p",
        "no:cacheprovider",
        "-v",
        "-rs",
        *args,
    )


def test_an_upgrade_run_from_git(
    pytester: pytest.Pytester,
    harness_cluster: ClusterInfo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = pytester.path / "repo"
    suite, main = new_repo(repo, "{git: main, path: charts/shop}")
    on_feature(repo)  # the work tree: under test
    scratch = pytester.path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    result = run(pytester, harness_cluster, suite)
    result.stdout.fnmatch_lines(
        [
            "*shop::install?from? PASSED*",
            "*shop::ready@from PASSED*",
            "*shop::upgrade PASSED*",
            "*shop::ready@to PASSED*",
            "*shop::rollback PASSED*",
            "*shop::ready@rollback PASSED*",
        ]
    )
    result.assert_outcomes(passed=7)
    record = json.loads((pytester.path / "out" / "results.json").read_text())
    upgrade = record["apps"][0]["upgrade"]
    assert upgrade["from"]["version"] == "0.1.0" and upgrade["to"]["version"] == "0.2.0"
    assert upgrade["from"]["chart"] == f"git:main@{main[:7]}:charts/shop"
    assert upgrade["from"]["git"]["commit"] == main
    assert f"git:main@{main[:7]}" in (pytester.path / "out" / "report.md").read_text()
    assert f"0.1.0 (git:main@{main[:7]})" in (pytester.path / "out" / "report.html").read_text()
    assert not list(scratch.glob("helm-harness-*-git-*"))  # removed with the app


def test_an_upgrade_run_from_the_git_base(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    """A pull request's run: the chart where the feature branch left main, whatever the
    suite's ref says; the ini key works as the option does."""
    repo = pytester.path / "repo"
    suite, base = new_repo(repo, "{git: no-such-branch}")
    on_feature(repo)
    commit(repo, "shop 0.2.0")
    pytester.makeini("[pytest]\nhelm_harness_upgrade_from_git_base = main\n")
    result = run(pytester, harness_cluster, suite)
    result.assert_outcomes(passed=7)
    record = json.loads((pytester.path / "out" / "results.json").read_text())
    assert record["apps"][0]["upgrade"]["from"]["chart"] == (
        f"git:merge-base(main)@{base[:7]}:charts/shop"
    )


def test_an_upgrade_run_from_an_unknown_ref_fails_install_from_with_one_line(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    repo = pytester.path / "repo"
    suite, _ = new_repo(repo, "{git: v0.1.0}", version="0.2.0")
    result = run(pytester, harness_cluster, suite, "--tb=line")
    out = result.stdout.str()
    expected = (
        f"upgrade.from {{git: v0.1.0, path: charts/shop}}: no commit 'v0.1.0' in "
        f"{os.path.realpath(repo)}"
    )
    assert expected in out, out
    result.stdout.fnmatch_lines(["*shop::install?from? FAILED*"])
    assert "Traceback" not in out
    record = json.loads((pytester.path / "out" / "results.json").read_text())
    assert record["apps"][0]["install_error"] == expected
