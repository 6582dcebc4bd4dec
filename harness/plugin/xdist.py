"""How pytest-xdist spreads a run over workers: every item of an app, and of apps joined
by ``dependsOn``, goes to one worker, in order; plain Python tests spread one by one as
with ``--dist load``.

pytest-xdist's ``loadgroup`` reads ``xdist_group`` marks through a nodeid rewrite that
current pytest no longer honours, so the harness brings its own scheduler: xdist's scope
scheduler with the scope of a suite item read from its suite file (the controller does
not collect items; it gets nodeids, from which the suite file and app are known).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from xdist.scheduler.loadscope import LoadScopeScheduling

from harness.plugin.preflight import apps_of_ids, plan_clashes
from harness.plugin.state import session_of

if TYPE_CHECKING:
    from harness.deploy.clashes import Clash
    from harness.suite.model import App, Suite

SUITE_SUFFIXES = (".yaml", ".yml")


@lru_cache(maxsize=256)
def _groups(path: Path) -> dict[str, str]:
    from harness.suite.graph import dependency_groups
    from harness.suite.model import SuiteError, load_suite

    try:
        return dependency_groups(load_suite(path))
    except SuiteError:
        return {}


def scope_of(nodeid: str, rootpath: Path) -> str:
    """``<suite file>::<group's first app>`` for suite items, else the nodeid itself."""
    base = nodeid.split("@", 1)[0]
    parts = base.split("::")
    if len(parts) >= 3 and parts[0].endswith(SUITE_SUFFIXES):
        groups = _groups(rootpath / parts[0])
        return f"{parts[0]}::{groups.get(parts[1], parts[1])}"
    return base


class AppGroupScheduling(LoadScopeScheduling):
    """Scopes are apps joined by dependsOn, and apps that render the same cluster-scoped
    object (so that they run one after another on one worker)."""

    merged: dict[str, str] | None = None  # scope -> the scope it runs with

    def _split_scope(self, nodeid: str) -> str:
        scope = scope_of(nodeid, self.config.rootpath)
        return (self.merged or {}).get(scope, scope)

    def schedule(self) -> None:
        """Before the first item is handed out: the run's clash check, once, on what the
        workers collected (see :mod:`harness.plugin.preflight`). A usage error schedules
        nothing and stops the run."""
        if self.collection is None and self._check_nodes_have_same_collection():
            ids = list(next(iter(self.registered_collections.values()), []))
            try:
                clashes = plan_clashes(self.config, apps_of_ids(self.config.rootpath, ids))
            except pytest.UsageError as exc:
                session_of(self.config).usage_error = str(exc)
                dsession = self.config.pluginmanager.get_plugin("dsession")
                dsession.shouldstop = "helm-harness: usage error (see ERROR above)"
                return
            self.merged = merged_scopes(self.config.rootpath, clashes)
        super().schedule()


def merged_scopes(rootpath: Path, clashes: list[Clash]) -> dict[str, str]:
    """Scope -> the first scope of the clashing scopes it belongs with."""
    parent: dict[str, str] = {}

    def root(scope: str) -> str:
        while parent.get(scope, scope) != scope:
            scope = parent[scope]
        return scope

    for clash in clashes:
        first, second = (_scope_of_app(rootpath, *pair) for pair in (clash.first, clash.second))
        a, b = root(first), root(second)
        if a != b:
            parent[b] = a
    return {scope: root(scope) for scope in parent}


def _scope_of_app(rootpath: Path, suite: Suite, app: App) -> str:
    try:
        relative = str(suite.path.relative_to(rootpath))
    except ValueError:
        relative = str(suite.path)
    return f"{relative}::{_groups(suite.path).get(app.name, app.name)}"


def make_scheduler(config: pytest.Config, log: object) -> AppGroupScheduling | None:
    if config.getvalue("dist") in ("load", "loadgroup"):
        return AppGroupScheduling(config, log)
    return None
