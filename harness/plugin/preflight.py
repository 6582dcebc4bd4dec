"""What is checked once per run before anything installs: every suite file valid, no two
suite files whose apps would share a namespace, no two apps rendering the same
cluster-scoped object.

Without xdist, the checks run on the collected items. Under ``-n N`` they run on the xdist
controller, never in the workers (which would repeat them, and whose usage error would end
the run as an INTERNALERROR): the suite files when the session starts, before a worker or
a cluster exists (:func:`check_suite_files`), and the clash check on the ids the workers
collected, before any is scheduled (:func:`plan_clashes`, from the scheduler). A problem
is a usage error: exit code 4 with the message, either way. Apps that render the same
cluster-scoped object are not a problem: they run one after another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.plugin.state import session_of

if TYPE_CHECKING:
    from harness.deploy.clashes import Clash
    from harness.suite.model import App, Suite

SUITE_SUFFIXES = (".yaml", ".yml")
CONTROLLER_CHECKS = "helm_harness_controller_checks"  # xdist workerinput key


def runs_on_controller(config: pytest.Config) -> bool:
    """Whether this process is an xdist controller whose scheduler runs the checks."""
    return (
        not hasattr(config, "workerinput")
        and config.pluginmanager.get_plugin("dsession") is not None
        and config.getvalue("dist") in ("load", "loadgroup")
    )


def checked_by_controller(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker whose controller runs the checks."""
    workerinput = getattr(config, "workerinput", None)
    return bool(workerinput and workerinput.get(CONTROLLER_CHECKS))


def suite_files_of_args(config: pytest.Config) -> list[Path]:
    """The suite files the run's paths name or hold (what pytest will collect from them)."""
    from harness.suite.model import find_suite_files, is_suite_file

    found: dict[Path, None] = {}
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0])
        if path.is_dir():
            found.update(dict.fromkeys(find_suite_files(path)))
        elif path.suffix in SUITE_SUFFIXES and is_suite_file(path):
            found[path] = None
    return list(found)


def check_suite_files(config: pytest.Config) -> None:
    """The controller, at session start: every suite file loads, and no two would share a
    namespace; else a usage error."""
    from harness.suite.model import SuiteError, load_suite

    suites, errors = [], []
    for path in suite_files_of_args(config):
        try:
            suites.append(load_suite(path))
        except SuiteError as exc:
            errors.append(str(exc))
    if errors:
        raise pytest.UsageError("invalid suite file(s):\n" + "\n".join(errors))
    name_problems(suites)


def name_problems(suites: Iterable[Suite]) -> None:
    """Two suite files whose apps would share a namespace: a usage error naming both."""
    from harness.suite.model import name_collisions

    unique = {str(suite.path): suite for suite in suites}
    problems = name_collisions(list(unique.values()))
    if problems:
        raise pytest.UsageError("suites that cannot run together:\n" + "\n".join(problems))


def apps_of_ids(rootpath: Path, ids: Sequence[str]) -> list[tuple[Suite, App]]:
    """The suite apps behind collected item ids (``<file>::<app>::<item>``)."""
    from harness.suite.model import SuiteError, load_suite

    wanted: dict[Path, set[str]] = {}
    for nodeid in ids:
        parts = nodeid.split("@", 1)[0].split("::")
        if len(parts) >= 3 and parts[0].endswith(SUITE_SUFFIXES):
            wanted.setdefault(rootpath / parts[0], set()).add(parts[1])
    apps = []
    for path, names in wanted.items():
        try:
            suite = load_suite(path)
        except SuiteError:
            continue  # checked at session start
        apps += [(suite, app) for app in suite.apps if app.name in names]
    return apps


def plan_clashes(config: pytest.Config, apps: Sequence[tuple[Suite, App]]) -> list[Clash]:
    """Render each app once. Apps rendering the same cluster-scoped object run one after
    another: the clashes are returned (the xdist scheduler keeps each pair on one worker),
    said in the run's notes and kept for the report. Two that dependsOn joins cannot: a
    usage error. An app Helm cannot render is named in the notes (its install says why)."""
    from harness.deploy.clashes import find_clashes
    from harness.errors import HarnessError, MissingBinariesError
    from harness.helm.client import Helm
    from harness.tools import find_helm

    harness = session_of(config)
    if len(apps) < 2 or harness.options.lint_only:  # lint installs nothing: no clash
        return []
    try:
        helm = Helm(find_helm(harness.options.helm))
    except MissingBinariesError:
        return []  # the items themselves will say helm is missing
    try:
        found = find_clashes(helm, apps)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from exc
    harness.notes.extend(found.unrendered)
    joined = [clash for clash in found.clashes if clash.same_group()]
    if joined:
        raise pytest.UsageError(
            "apps that cannot share the cluster:\n"
            + "\n".join(
                f"{clash.describe()}, and dependsOn joins them, so they cannot run one after "
                "another (Helm lets one release own it): give one of them values that rename "
                "it, or run them in separate runs"
                for clash in joined
            )
        )
    for clash in found.clashes:
        first, second = clash.labels
        harness.serialised.setdefault(first, []).append(f"{second} ({clash.obj})")
        harness.serialised.setdefault(second, []).append(f"{first} ({clash.obj})")
        harness.notes.append(f"{clash.describe()}: they run one after another")
    return found.clashes


def check_collected(session: pytest.Session) -> None:
    """Without xdist (or in a worker checking for itself): the checks on the items."""
    from harness.plugin.items import HarnessItem

    errors = session_of(session.config).suite_errors
    if errors:
        raise pytest.UsageError("invalid suite file(s):\n" + "\n".join(errors))
    items = [item for item in session.items if isinstance(item, HarnessItem)]
    name_problems(item.suite for item in items)
    apps = {(str(item.suite.path), item.app.name): (item.suite, item.app) for item in items}
    plan_clashes(session.config, list(apps.values()))  # one process: apps run in turn
