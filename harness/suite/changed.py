"""Which charts, and which suites, a change touches (``helm-harness changed``, ``helm-harness
run --changed-since``).

The change is everything between a base and the working tree: ``git diff -M BASE`` (so
commits and uncommitted edits alike) plus the untracked files git does not ignore; a renamed
file counts under its old and its new path. The charts it touches are the folders holding a
``Chart.yaml`` (now, or at the base for a chart that is gone) above a changed file,
subcharts' parents included. The suites it touches are those with an app whose ``chart`` or
``upgrade.from.chart`` is a touched local chart, or whose ``valuesFiles`` changed, or whose
suite file changed; and every suite that does not load, so that the run reports it.

The base is the merge base of HEAD with a ref: for a pull request, the commit its branch
started from, so that what the target branch gained since is not counted. A ref that is an
ancestor of HEAD (a tag, an earlier commit) is its own merge base. A ref naming a tree, such
as git's empty tree, is the base as it is (everything in it is "added").

Paths in and out are as Python takes them (relative ones to the current folder), except
chart paths, which are git's: relative to the repository root, ``/``-separated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness import tools
from harness.errors import ToolError, UsageError
from harness.suite.model import SuiteError, find_suite_files, is_suite_file, load_suite

GIT_TIMEOUT = 120.0  # seconds, for one git command
DEFAULT_TARGET_BRANCH = "main"
SHALLOW_HINT = (
    "fetch the whole history (git fetch --unshallow; in GitHub Actions, actions/checkout "
    "with fetch-depth: 0)"
)

ADDED, MODIFIED, DELETED, RENAMED = "added", "modified", "deleted", "renamed"


@dataclass(frozen=True)
class FileChange:
    """A changed file, as ``git diff --name-status`` names it."""

    path: str  # relative to the repository root, "/"-separated
    status: str  # git's letter: A, M, D, R, T, U
    previous: str | None = None  # R: the path it had at the base


@dataclass(frozen=True)
class ChartChange:
    """A chart the change touches."""

    path: str  # relative to the repository root ("." for the root itself)
    change: str  # added, modified, deleted or renamed
    previous: str | None = None  # renamed: where it was at the base


@dataclass(frozen=True)
class Changes:
    """What changed since a base, and the suites to run for it."""

    root: Path  # the repository's work tree
    base: str  # the commit (or tree) compared with
    ref: str  # the ref the base comes from
    since: str | None  # the ref the user gave, None when it is the target branch's
    merge_base: bool  # base is the merge base of HEAD and ref (else ref names a tree)
    files: tuple[FileChange, ...]
    charts: tuple[ChartChange, ...]
    suites: tuple[Path, ...]  # as found under the suite paths given
    errors: tuple[str, ...]  # suites selected because they do not load: why

    def as_json(self) -> dict[str, Any]:
        """The ``helm-harness changed --format json`` document (docs/ci.md)."""
        return {
            "base": self.base,
            "since": self.since,
            "charts": [
                {"path": chart.path, "change": chart.change, "from": chart.previous}
                for chart in self.charts
            ],
            "suites": [str(path) for path in self.suites],
            "errors": list(self.errors),
        }


def find_changes(
    folder: Path,
    *,
    since: str | None = None,
    target_branch: str = DEFAULT_TARGET_BRANCH,
    suites: Sequence[Path] = (Path("suites"),),
    exclude: Sequence[Path] = (),
    option: str = "--since",
) -> Changes:
    """The changes of the repository holding ``folder`` since ``since`` (else since the
    target branch, ``origin/BRANCH`` or ``BRANCH``), and the suites among ``suites`` (files,
    or folders to search) they touch. Nothing under an ``exclude`` path is a changed chart
    or a selected suite. ``option`` names the ref in error messages."""
    root = repository_root(folder)
    base, ref, merge_base = find_base(root, since, target_branch, option=option)
    excluded = [path.resolve() for path in exclude]
    files = changed_files(root, base)
    charts = touched_charts(root, base, files, excluded)
    selected, errors = select_suites(root, suite_files(suites), files, charts, excluded)
    return Changes(
        root=root,
        base=base,
        ref=ref,
        since=since,
        merge_base=merge_base,
        files=tuple(files),
        charts=tuple(charts),
        suites=tuple(selected),
        errors=tuple(errors),
    )


# --- git ---------------------------------------------------------------------------------


def git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The one place git runs: ``git -C root ARGS``, output captured, exit code not checked."""
    binary = shutil.which("git")
    if binary is None:
        raise ToolError("git is not on PATH: it is needed to tell what changed")
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # read only, plain messages
    return tools.run_command(
        [binary, "-C", str(root), *args], env=env, timeout=GIT_TIMEOUT, check=False
    )


def _git_output(root: Path, *args: str) -> str:
    proc = git(root, *args)
    if proc.returncode != 0:
        raise ToolError(f"git {' '.join(args)} failed in {root}: {_reason(proc)}")
    return proc.stdout


def _reason(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    return lines[-1].removeprefix("fatal: ") if lines else f"exit code {proc.returncode}"


def repository_root(folder: Path) -> Path:
    """The work tree holding ``folder``; a :class:`UsageError` when there is none."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    proc = git(folder, "rev-parse", "--show-toplevel")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise UsageError(f"{folder} is not in a git work tree (git: {_reason(proc)})")
    return Path(proc.stdout.strip()).resolve()


def _object(root: Path, ref: str, kind: str) -> str | None:
    """The id of the ``kind`` (commit, tree) ``ref`` names, or None."""
    proc = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{{kind}}}")
    found = proc.stdout.strip()
    return found if proc.returncode == 0 and found else None


def _is_shallow(root: Path) -> bool:
    return git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def find_base(
    root: Path, since: str | None, target_branch: str, *, option: str = "--since"
) -> tuple[str, str, bool]:
    """(base, the ref it comes from, whether it is a merge base): the merge base of HEAD with
    ``since``, or with the target branch (``origin/BRANCH``, else ``BRANCH``); a ``since``
    naming a tree is the base itself."""
    candidates = [since] if since is not None else [f"origin/{target_branch}", target_branch]
    for ref in candidates:
        if not ref or ref.startswith("-"):
            raise UsageError(f"{option} {ref!r}: not a git ref")
        commit = _object(root, ref, "commit")
        if commit is not None:
            return _merge_base(root, ref, commit), ref, True
        tree = _object(root, ref, "tree") if since is not None else None
        if tree is not None:
            return tree, ref, False
    shallow = f"; this is a shallow clone, {SHALLOW_HINT}" if _is_shallow(root) else ""
    if since is not None:
        raise UsageError(f"{option} {since}: no such commit in {root}{shallow}")
    raise UsageError(
        f"neither origin/{target_branch} nor {target_branch} is a branch in {root}: give "
        f"--target-branch BRANCH or --since REF{shallow}"
    )


def _merge_base(root: Path, ref: str, commit: str) -> str:
    head = _object(root, "HEAD", "commit")
    if head is None:
        raise UsageError(f"{root}: HEAD has no commit yet, so nothing to compare {ref} with")
    proc = git(root, "merge-base", commit, head)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    if _is_shallow(root):
        raise UsageError(
            f"the merge base of HEAD and {ref} is not in this shallow clone of {root}: "
            f"{SHALLOW_HINT}"
        )
    raise UsageError(f"HEAD and {ref} share no history in {root}: there is no merge base")


def changed_files(root: Path, base: str) -> list[FileChange]:
    """The files that differ between ``base`` and the work tree, and the untracked ones."""
    diff = _git_output(root, "diff", "--name-status", "-M", "-z", "--no-ext-diff", base, "--")
    fields = diff.split("\0")
    files: list[FileChange] = []
    index = 0
    while index + 1 < len(fields):
        status = fields[index][:1]
        if status in ("R", "C"):
            old, new = fields[index + 1], fields[index + 2]
            # A copy leaves its source as it was: only the copy is new.
            files.append(FileChange(new, "R", old) if status == "R" else FileChange(new, "A"))
            index += 3
        else:
            files.append(FileChange(fields[index + 1], status))
            index += 2
    untracked = _git_output(root, "ls-files", "--others", "--exclude-standard", "-z")
    files.extend(FileChange(path, "A") for path in untracked.split("\0") if path)
    return files


def charts_at(root: Path, base: str) -> set[str]:
    """The folders (relative to the root, "" for the root) holding a Chart.yaml at ``base``."""
    listing = _git_output(root, "ls-tree", "-r", "--name-only", "-z", base)
    return {
        _folder(PurePosixPath(name).parent)
        for name in listing.split("\0")
        if PurePosixPath(name).name == "Chart.yaml"
    }


# --- charts and suites -------------------------------------------------------------------


def touched_charts(
    root: Path, base: str, files: Sequence[FileChange], excluded: Sequence[Path]
) -> list[ChartChange]:
    """Every chart folder above a changed file (old paths of renames included), and how it
    changed; charts under an ``excluded`` folder are left out."""
    then = charts_at(root, base)

    def is_chart_now(folder: str) -> bool:
        return (root / folder / "Chart.yaml").is_file()

    folders = {
        folder
        for path in _all_paths(files)
        for folder in _folders_above(path)
        if (folder in then or is_chart_now(folder)) and not _under(root / folder, excluded)
    }
    now = {folder for folder in folders if is_chart_now(folder)}
    renamed = _chart_renames(files, gone=folders - now, new=now - then)
    charts = [ChartChange(_shown(new), RENAMED, _shown(old)) for new, old in renamed.items()]
    for folder in folders - set(renamed) - set(renamed.values()):
        if folder not in now:
            change = DELETED
        else:
            change = MODIFIED if folder in then else ADDED
        charts.append(ChartChange(_shown(folder), change))
    return sorted(charts, key=lambda chart: chart.path)


def _all_paths(files: Iterable[FileChange]) -> set[str]:
    return {path for change in files for path in (change.path, change.previous) if path}


def _folders_above(path: str) -> list[str]:
    """``a/b/c.yaml`` -> ``a/b``, ``a``, ``""`` (the root)."""
    return [_folder(folder) for folder in PurePosixPath(path).parents]


def _folder(path: PurePosixPath) -> str:
    return "" if path == PurePosixPath(".") else str(path)


def _shown(folder: str) -> str:
    return folder or "."


def _chart_renames(files: Sequence[FileChange], *, gone: set[str], new: set[str]) -> dict[str, str]:
    """new folder -> old folder, for the charts that git's renamed files moved whole: each
    gone chart pairs with the new one that most of its renamed files went to."""
    votes: dict[str, Counter[str]] = {}
    for change in files:
        if change.previous is None:
            continue
        holders = [folder for folder in _folders_above(change.previous) if folder in gone]
        if not holders:
            continue
        old = holders[0]  # the innermost chart: a subchart moves with its own files
        inside = change.previous[len(old) + 1 :] if old else change.previous
        if change.path == inside:
            target = ""
        elif change.path.endswith(f"/{inside}"):
            target = change.path[: -len(inside) - 1]
        else:
            continue
        if target in new:
            votes.setdefault(old, Counter())[target] += 1
    renamed: dict[str, str] = {}
    for old in sorted(votes):
        for target, _count in sorted(votes[old].items(), key=lambda item: (-item[1], item[0])):
            if target not in renamed:
                renamed[target] = old
                break
    return renamed


def _under(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == folder or folder in path.parents for folder in folders)


def suite_files(paths: Sequence[Path]) -> list[Path]:
    """The suite files among ``paths``: folders are searched, files taken if they are suite
    files; each once. A path that does not exist is a :class:`UsageError`."""
    found: dict[Path, Path] = {}
    for path in paths:
        if path.is_dir():
            candidates = find_suite_files(path)
        elif path.exists():
            candidates = [path] if is_suite_file(path) else []
        else:
            raise UsageError(f"{path}: no such file or folder")
        for candidate in candidates:
            found.setdefault(candidate.resolve(), candidate)
    return list(found.values())


def select_suites(
    root: Path,
    suites: Sequence[Path],
    files: Sequence[FileChange],
    charts: Sequence[ChartChange],
    excluded: Sequence[Path],
) -> tuple[list[Path], list[str]]:
    """(the suites to run, why those that do not load do not): a suite runs when it changed,
    uses a changed values file, or has an app whose local chart (or upgrade source) is a
    touched chart or a changed file; one that does not load always runs. Suites under an
    excluded folder never do."""
    changed = {root / path for path in _all_paths(files)}
    touched = {root / path for chart in charts for path in (chart.path, chart.previous) if path}
    selected: list[Path] = []
    errors: list[str] = []
    for suite_file in suites:
        where = suite_file.resolve()
        if _under(where, excluded):
            continue
        try:
            suite = load_suite(suite_file)
        except SuiteError as exc:
            selected.append(suite_file)
            errors.append(str(exc))
            continue
        used = {where}
        for app in suite.apps:
            used.update(app.values_files)
            for ref in (app.source, app.upgrade_from):
                if ref is not None and ref.is_local:
                    used.add(Path(ref.chart))
        if used & (changed | touched):
            selected.append(suite_file)
    return selected, errors
