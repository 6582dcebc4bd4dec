"""``valuesMatrix``: one app of a suite file becomes one app per values file of its chart.

chart-testing's convention is a chart's ``ci/*-values.yaml`` files, each a configuration
to install and test on its own. ``valuesMatrix: ci/*-values.yaml`` (a glob relative to the
app's local chart folder) turns the app ``web`` into ``web[small]``, ``web[large]``, ... one
per matching file (sorted), each with that file as its last values file, its own release
(``<release>-<stem>``) and, from its name, its own namespace (``h-<run>-<suite>-web-small``).

``dependsOn: [web]`` in another app means every variant of ``web``. Problems are
:class:`MatrixError` (the builder in :mod:`harness.suite.model` adds file, line and key).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.suite.model import App, ChartRef

RELEASE_MAX = 53  # Helm's limit on release names
CHART_TESTING_GLOB = "ci/*-values.yaml"  # chart-testing's convention
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SUFFIXES = ("-values.yaml", "-values.yml", ".yaml", ".yml")


class MatrixError(ValueError):
    """A values matrix that cannot be expanded; ``app`` is the name of the app it is on."""

    def __init__(self, app: str, message: str) -> None:
        super().__init__(message)
        self.app = app


def stem(path: Path) -> str:
    """A values file's variant name: its file name without ``-values.yaml`` or ``.yaml``
    (chart-testing's ``ci/small-values.yaml`` is ``small``)."""
    name = path.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def slug(text: str) -> str:
    """``text`` as it goes into release and namespace names: lower case, runs of anything
    but letters and digits as one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def variant_name(app: str, variant: str) -> str:
    return f"{app}[{variant}]"


def matrix_files(app: str, source: ChartRef, pattern: str) -> list[Path]:
    """The files ``pattern`` matches in the app's chart folder, sorted by their path in it."""
    if not source.is_local:
        raise MatrixError(
            app,
            f"the chart {source.chart} comes from a repository, so it has no folder to glob "
            "values files in: list them in valuesFiles instead",
        )
    chart = Path(source.chart)
    if not chart.is_dir():
        raise MatrixError(
            app,
            f"the chart {chart} is a packaged .tgz, not a folder to glob values files in: "
            "point chart at the unpacked folder or list the files in valuesFiles",
        )
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise MatrixError(
            app, f"{pattern!r} is not a glob inside the chart folder (e.g. ci/*-values.yaml)"
        )
    found = sorted(
        (path for path in chart.glob(pattern) if path.is_file()),
        key=lambda path: path.relative_to(chart).as_posix(),
    )
    if not found:
        raise MatrixError(app, f"{pattern!r} matches no file in the chart folder {chart}")
    return found


def expand(apps: Sequence[App], matrices: Mapping[str, Sequence[Path]]) -> tuple[App, ...]:
    """``apps`` with each app named in ``matrices`` replaced by its variants, one per file
    in order; ``dependsOn`` naming such an app then names all its variants."""
    variants = {name: _variants(_by_name(apps, name), files) for name, files in matrices.items()}
    names = {name: tuple(v.name for v in found) for name, found in variants.items()}
    expanded: list[App] = []
    for app in apps:
        for one in variants.get(app.name, (app,)):
            depends_on = tuple(
                name
                for dependency in one.depends_on
                for name in names.get(dependency, (dependency,))
            )
            expanded.append(dataclasses.replace(one, depends_on=depends_on))
    _check_places(expanded, {v: app for app, found in names.items() for v in found})
    return tuple(expanded)


def _by_name(apps: Sequence[App], name: str) -> App:
    return next(app for app in apps if app.name == name)


def _variants(app: App, files: Sequence[Path]) -> list[App]:
    seen: dict[str, Path] = {}
    found: list[App] = []
    for path in files:
        variant = stem(path)
        if not _STEM.fullmatch(variant):
            raise MatrixError(
                app.name,
                f"{path}: a variant's name is its file name without -values.yaml, here "
                f"{variant!r}; it goes into test ids, so it takes letters, digits, '.', '_' "
                "and '-' only, starting with a letter or digit: rename the file",
            )
        key = slug(variant)
        if key in seen:
            raise MatrixError(
                app.name,
                f"{seen[key]} and {path} both give the variant name {key!r} (in release and "
                "namespace names): rename one of them",
            )
        seen[key] = path
        release = f"{app.release}-{key}"
        if len(release) > RELEASE_MAX:
            raise MatrixError(
                app.name,
                f"the release of variant {variant!r}, {release!r}, is {len(release)} characters "
                f"and Helm takes at most {RELEASE_MAX}: give the app a shorter `release` or "
                "the file a shorter name",
            )
        found.append(
            dataclasses.replace(
                app,
                name=variant_name(app.name, variant),
                release=release,
                values_files=(*app.values_files, path),
            )
        )
    return found


def _check_places(apps: Sequence[App], origin: Mapping[str, str]) -> None:
    """No variant shares a namespace (one of its own, from its name) or a release in a
    given namespace with another app."""
    places: dict[tuple[str, str], str] = {}
    for app in apps:
        place = (app.namespace, app.release) if app.namespace else ("", slug(app.name))
        other = places.setdefault(place, app.name)
        variant = app.name if app.name in origin else other
        if other == app.name or variant not in origin:
            continue  # apps of the file itself: checked when it was read
        what = (
            f"release {app.release!r} in namespace {app.namespace!r}"
            if app.namespace
            else f"the namespace h-<run>-<suite>-{place[1]}"
        )
        raise MatrixError(origin[variant], f"{other} and {app.name} would both have {what}")
