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

SUITE_SUFFIXES = (".yaml", ".yml")


@lru_cache(maxsize=256)
def _groups(path: Path) -> dict[str, str]:
    from harness.plugin.items import dependency_groups
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


def make_scheduler(config: pytest.Config, log: object) -> AppGroupScheduling | None:
    if config.getvalue("dist") in ("load", "loadgroup"):
        return AppGroupScheduling(config, log)
    return None
