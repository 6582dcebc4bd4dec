"""Charts as they were at a git ref: ``upgrade.from: {git: REF, path: charts/NAME}``.

An upgrade run installs the old chart from the repository holding the suite file, as
chart-testing's ``ct install --upgrade`` does, then upgrades to the working tree's chart.
:func:`materialise` resolves the ref (or, with ``--upgrade-from-git-base BRANCH``, the
merge base of HEAD and ``origin/BRANCH``, else ``BRANCH``, as ``helm-harness changed``
finds its base), checks that the path is a chart at that commit, writes it out with
``git archive`` and a tar extraction that refuses anything leaving the folder, and runs
``helm dependency build`` when ``Chart.yaml`` lists dependencies missing from ``charts/``.

Every problem is a :class:`~harness.errors.UsageError` of one line naming the ref and the
path, so the upgrade run's ``install[from]`` item fails with it.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from harness.errors import HarnessError, UsageError
from harness.suite import changed
from harness.suite.model import ChartRef, GitChart

SHORT = 7  # characters of a commit id in labels


@dataclass(frozen=True)
class ChartAtRef:
    """A chart written out as it was at a commit."""

    ref: str  # as the suite gives it, or ``merge-base(BRANCH)``
    commit: str
    path: str  # relative to the repository root, "/"-separated ("." for the root)
    folder: Path  # the chart written out, to hand to Helm
    version: str | None  # Chart.yaml's version at that commit

    @property
    def label(self) -> str:
        """``git:main@abc1234``: how reports name it."""
        return f"git:{self.ref}@{self.commit[:SHORT]}"

    def summary(self) -> dict[str, Any]:
        """The record's ``upgrade.from``: chart, version and where in git it came from."""
        return {
            "chart": f"{self.label}:{self.path}",
            "version": self.version,
            "git": {"ref": self.ref, "commit": self.commit, "path": self.path},
        }


def describe(source: GitChart, path: str | None = None) -> str:
    """``upgrade.from {git: main, path: charts/web}``: the start of every message."""
    shown = path or source.path or "the app's chart folder"
    return f"upgrade.from {{git: {source.ref}, path: {shown}}}"


def materialise(
    source: GitChart,
    *,
    app_chart: ChartRef,
    into: Path,
    base_branch: str | None = None,
    build_dependencies: Callable[[Path], None] | None = None,
) -> ChartAtRef:
    """Write the chart ``source`` names out under ``into`` (a fresh folder the caller
    removes). ``app_chart`` is the app's own chart, whose folder is the default path;
    ``base_branch`` replaces the ref by the merge base of HEAD and that branch;
    ``build_dependencies`` runs ``helm dependency build`` in a chart folder."""
    where = describe(source)
    try:
        root = changed.repository_root(source.folder)
    except UsageError as exc:
        raise UsageError(f"{where}: not a git repository: {exc}") from exc
    path = source.path or _own_path(source, app_chart, root)
    where = describe(source, path)
    ref, commit = _commit(root, source.ref, base_branch, where)
    where = f"{where} at {ref}@{commit[:SHORT]}"
    _check_chart(root, commit, path, where)
    folder = _extract(root, commit, path, into, where)
    chart = _chart_yaml(folder, where)
    if build_dependencies is not None and _missing_dependencies(folder, chart):
        try:
            build_dependencies(folder)
        except HarnessError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise UsageError(
                f"{where}: dependencies missing from charts/, and helm dependency build "
                f"failed: {reason}"
            ) from exc
    version = chart.get("version")
    return ChartAtRef(
        ref=ref,
        commit=commit,
        path=path,
        folder=folder,
        version=str(version) if version is not None else None,
    )


def scratch_folder(run_id: str) -> Path:
    """A fresh temporary folder for one chart of run ``run_id``."""
    return Path(tempfile.mkdtemp(prefix=f"helm-harness-{run_id}-git-"))


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _own_path(source: GitChart, app_chart: ChartRef, root: Path) -> str:
    """The app's local chart folder, relative to the repository root."""
    chart = Path(app_chart.chart)
    try:
        relative = chart.resolve().relative_to(root)
    except ValueError:
        raise UsageError(
            f"{describe(source)}: the app's chart {chart} is not in the repository {root}: "
            "give `path`"
        ) from None
    return relative.as_posix() or "."


def _commit(root: Path, ref: str, base_branch: str | None, where: str) -> tuple[str, str]:
    """(the ref as reports name it, its commit)."""
    if base_branch is not None:
        for candidate in (f"origin/{base_branch}", base_branch):
            tip = changed._object(root, candidate, "commit")
            if tip is not None:
                try:
                    base = changed._merge_base(root, candidate, tip)
                except UsageError as exc:
                    raise UsageError(f"{where}: --upgrade-from-git-base: {exc}") from exc
                return f"merge-base({candidate})", base
        raise UsageError(
            f"{where}: --upgrade-from-git-base {base_branch}: neither origin/{base_branch} "
            f"nor {base_branch} is a branch in {root}{_shallow(root)}"
        )
    commit = None if ref.startswith("-") else changed._object(root, ref, "commit")
    if commit is None:
        raise UsageError(f"{where}: no commit {ref!r} in {root}{_shallow(root)}")
    return ref, commit


def _shallow(root: Path) -> str:
    if changed._is_shallow(root):
        return f"; this is a shallow clone: {changed.SHALLOW_HINT}"
    return ""


def _check_chart(root: Path, commit: str, path: str, where: str) -> None:
    spec = f"{commit}:" if path == "." else f"{commit}:{path}"
    kind = changed.git(root, "cat-file", "-t", spec).stdout.strip()
    if not kind:
        raise UsageError(f"{where}: the path {path} is not in that commit")
    if kind != "tree":
        raise UsageError(f"{where}: {path} is a file at that commit, not a chart folder")
    chart_yaml = f"{commit}:Chart.yaml" if path == "." else f"{commit}:{path}/Chart.yaml"
    if changed.git(root, "cat-file", "-t", chart_yaml).stdout.strip() != "blob":
        raise UsageError(f"{where}: {path} is not a Helm chart at that commit: no Chart.yaml")


def _extract(root: Path, commit: str, path: str, into: Path, where: str) -> Path:
    """``git archive`` of ``path`` at ``commit``, extracted under ``into``; symlinks may
    point only inside the chart (a link out of it would be dangling, or worse)."""
    archive = into / "chart.tar"
    proc = changed.git(root, "archive", "--format=tar", "-o", str(archive), commit, "--", path)
    if proc.returncode != 0:
        raise UsageError(f"{where}: git archive failed: {changed._reason(proc)}")
    target = into / "chart"
    target.mkdir()
    prefix = PurePosixPath(path)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.issym() or member.islnk():
                _check_link(member, prefix, where)
        try:
            tar.extractall(target, filter="data")
        except tarfile.FilterError as exc:
            raise UsageError(f"{where}: refused to extract the chart: {exc}") from exc
    archive.unlink()
    return target / path if path != "." else target


def _check_link(member: tarfile.TarInfo, chart: PurePosixPath, where: str) -> None:
    name = PurePosixPath(member.name)
    if member.islnk() or posixpath.isabs(member.linkname):
        pointed = member.linkname
    else:
        pointed = posixpath.normpath(posixpath.join(str(name.parent), member.linkname))
    inside = str(chart) == "." or pointed == str(chart) or pointed.startswith(f"{chart}/")
    if posixpath.isabs(member.linkname) or pointed.startswith("../") or not inside:
        relative = name.relative_to(chart) if str(chart) != "." else name
        raise UsageError(
            f"{where}: the symlink {relative} points outside the chart ({member.linkname}); "
            "only links within the chart folder are followed"
        )


def _chart_yaml(folder: Path, where: str) -> dict[str, Any]:
    try:
        chart = yaml.safe_load((folder / "Chart.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{where}: cannot read its Chart.yaml: {exc}") from exc
    if not isinstance(chart, dict):
        raise UsageError(f"{where}: its Chart.yaml is not a mapping")
    return chart


def _missing_dependencies(folder: Path, chart: dict[str, Any]) -> list[str]:
    """The dependencies ``Chart.yaml`` (or a v1 chart's ``requirements.yaml``) lists that
    ``charts/`` does not hold, as a folder or a packaged ``NAME-VERSION.tgz``."""
    listed = chart.get("dependencies")
    if listed is None and (folder / "requirements.yaml").is_file():
        try:
            listed = (yaml.safe_load((folder / "requirements.yaml").read_text()) or {}).get(
                "dependencies"
            )
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
            listed = None
    names = [str(dep["name"]) for dep in listed or [] if isinstance(dep, dict) and "name" in dep]
    vendored = folder / "charts"
    folders: set[str] = set()
    packages: list[str] = []
    for entry in sorted(vendored.iterdir()) if vendored.is_dir() else []:
        if entry.is_dir():
            folders.add(entry.name)
            try:
                sub = yaml.safe_load((entry / "Chart.yaml").read_text(encoding="utf-8"))
                folders.add(str(sub.get("name")))
            except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
                pass
        elif entry.name.endswith(".tgz"):
            packages.append(entry.name)
    return [
        name
        for name in names
        if name not in folders
        and not any(re.fullmatch(rf"{re.escape(name)}-\d.*\.tgz", package) for package in packages)
    ]
