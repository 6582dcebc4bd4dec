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

import pytest
from xdist.scheduler.loadscope import LoadScopeScheduling

from harness.plugin.preflight import apps_of_ids, clash_problems
from harness.plugin.state import session_of

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
    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid, self.config.rootpath)

    def schedule(self) -> None:
        """Before the first item is handed out: the run's clash check, once, on what the
        workers collected (see :mod:`harness.plugin.preflight`). A clash schedules nothing
        and stops the run, which then ends as a usage error."""
        if self.collection is None and self._check_nodes_have_same_collection():
            ids = list(next(iter(self.registered_collections.values()), []))
            problem = clash_problems(self.config, apps_of_ids(self.config.rootpath, ids))
            if problem is not None:
                session_of(self.config).usage_error = problem
                dsession = self.config.pluginmanager.get_plugin("dsession")
                dsession.shouldstop = "helm-harness: usage error (see ERROR above)"
                return
        super().schedule()


def make_scheduler(config: pytest.Config, log: object) -> AppGroupScheduling | None:
    if config.getvalue("dist") in ("load", "loadgroup"):
        return AppGroupScheduling(config, log)
    return None
