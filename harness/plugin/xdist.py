"""How pytest-xdist spreads a run over workers: every item of an app, and of apps joined
by ``dependsOn``, goes to one worker, in order; plain Python tests spread one by one as
with ``--dist load``.

pytest-xdist's ``loadgroup`` reads ``xdist_group`` marks through a nodeid rewrite that
current pytest no longer honours, so the harness brings its own scheduler: xdist's scope
scheduler with the scope of a suite item read from its suite file (the controller does
not collect items; it gets nodeids, from which the suite file and app are known).

Workers work ahead as one process does (:mod:`harness.plugin.prefetch`), on the apps they
were given: the scheduler keeps up to ``--max-parallel`` apps queued on each worker (no more
than its share of the run), and writes its clash plan to a file the workers read (their
``workerinput`` is fixed before the plan exists), so that apps that must run one after
another are never installed ahead there either.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from xdist.scheduler.loadscope import LoadScopeScheduling

from harness.plugin.preflight import apps_of_ids, plan_clashes
from harness.plugin.state import session_of

if TYPE_CHECKING:
    from harness.deploy.clashes import Clash
    from harness.plugin.prefetch import Upcoming
    from harness.suite.model import App, Suite

SUITE_SUFFIXES = (".yaml", ".yml")
WORKER_PLAN = "helm_harness_plan"  # workerinput: where the controller writes its clash plan
# items and the clash plan -> their apps in order (harness.plugin.items.apps_in_order)
PlanOf = Callable[[list[pytest.Item], dict[str, list[str]]], "Upcoming"]


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
    queued: int | None = None  # apps (scopes) each worker is kept supplied with

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
            write_plan(self.config)
        super().schedule()

    def _reschedule(self, node: Any) -> None:
        """xdist's rule (another scope once at most two items are left) unless the worker
        works ahead: then it is kept supplied with as many apps as it works on at once, but
        no more than its share of the run's apps, so that no worker hoards the run."""
        if self.queued is None:
            self.queued = self._queued()
        if not self.queued:
            super()._reschedule(node)
            return
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        while self.workqueue and self._pending_scopes(node) < self.queued:
            self._assign_work_unit(node)

    def _queued(self) -> int:
        """Apps to keep queued on each worker; 0: xdist's own rule (nothing goes ahead, or
        the run has no suite items)."""
        at_once = session_of(self.config).options.max_parallel
        scopes = self._scopes()
        if at_once <= 1 or not any(
            scope.split("::")[0].endswith(SUITE_SUFFIXES) for scope in scopes
        ):
            return 0
        share = math.ceil(len(scopes) / max(len(self.nodes), 1))
        return max(1, min(at_once, share))

    def _scopes(self) -> list[str]:
        assigned = [scope for work in self.assigned_work.values() for scope in work]
        return [*assigned, *self.workqueue]

    def _pending_scopes(self, node: Any) -> int:
        work = self.assigned_work.get(node, {})
        return sum(1 for unit in work.values() if not all(unit.values()))


def plan_path(config: pytest.Config) -> Path:
    """The controller's file for its clash plan (made once per run, removed at its end)."""
    harness = session_of(config)
    if harness.plan_dir is None:
        harness.plan_dir = Path(
            tempfile.mkdtemp(prefix=f"helm-harness-{harness.options.run_id}-plan-")
        )
    return harness.plan_dir / "serialised.json"


def write_plan(config: pytest.Config) -> None:
    """The apps that run one after another (``serialised``), for the workers: written whole
    before the first item is handed out."""
    path = plan_path(config)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(session_of(config).serialised), encoding="utf-8")
    os.replace(partial, path)


class WorkerQueue:
    """A worker's apps from a given one on, in order: the items it runs now and those
    queued for it (xdist's worker loop keeps their indices), each app with its selected
    checks; apps of the controller's clash plan are not to go ahead."""

    def __init__(
        self, session: pytest.Session, interactor: Any, plan: Path, plan_of: PlanOf
    ) -> None:
        self.session = session
        self.interactor = interactor
        self.plan = plan
        self.plan_of = plan_of  # items -> their apps in order, with their checks
        self.serialised: dict[str, list[str]] | None = None

    def _plan(self) -> dict[str, list[str]] | None:
        if self.serialised is None:
            try:
                self.serialised = json.loads(self.plan.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None  # not written (yet): nothing goes ahead
        return self.serialised

    def __call__(self, suite: Suite, app: App) -> Upcoming:
        serialised = self._plan()
        if serialised is None:
            return []
        worker = self.interactor
        with worker.torun.lock() as queue:
            indices = [getattr(worker, "item_index", None), worker.nextitem_index, *queue]
        items = self.session.items
        upcoming = self.plan_of(
            [items[i] for i in indices if isinstance(i, int) and 0 <= i < len(items)],
            serialised,
        )
        keys = [planned.key for planned in upcoming]
        key = (str(suite.path), app.name)
        return upcoming[keys.index(key) :] if key in keys else []


def worker_queue(
    session: pytest.Session, plan_of: PlanOf
) -> Callable[[Suite, App], Upcoming] | None:
    """In an xdist worker: its :class:`WorkerQueue`, or None when it cannot know its next
    apps (no plan from the controller, or an xdist whose worker loop looks otherwise)."""
    plan = getattr(session.config, "workerinput", {}).get(WORKER_PLAN)
    interactor = next(
        (
            plugin
            for plugin in session.config.pluginmanager.get_plugins()
            if hasattr(plugin, "torun") and hasattr(plugin, "nextitem_index")
        ),
        None,
    )
    if not plan or interactor is None or not hasattr(interactor.torun, "lock"):
        return None
    return WorkerQueue(session, interactor, Path(plan), plan_of)


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
