"""The ``dependsOn`` graph of a suite's apps: its cycles and its groups.

A graph maps each app's name to the names it depends on, in file order (apps first to last,
each app's ``dependsOn`` as written)::

    {"web": ("db",), "db": ("cache",), "cache": ()}

Cycles are found by :class:`graphlib.TopologicalSorter`. A group is a set of apps joined
by ``dependsOn`` in either direction: its items share one xdist group (one worker) and one
shard.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.suite.model import App, Suite

Graph = Mapping[str, Collection[str]]


def find_cycle(graph: Graph) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]``, each app depending on the next, starting at the app
    that comes first in ``graph``; None when there is none. ``[a, a]``: ``a`` depends on
    itself."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        # graphlib lists each node before the nodes depending on it: reverse to dependsOn.
        cycle: list[str] = list(reversed(exc.args[1][:-1]))
        order = {name: position for position, name in enumerate(graph)}
        first = min(range(len(cycle)), key=lambda i: order.get(cycle[i], len(order)))
        cycle = cycle[first:] + cycle[:first]
        return [*cycle, cycle[0]]
    return None


def groups(graph: Graph) -> dict[str, str]:
    """Name -> the name of its group: the group's first app (in ``graph``'s order) that
    depends on nothing (the first app of the group when every app depends on one, which
    only a cycle allows). Names ``graph`` does not hold as keys are left out."""
    neighbours: dict[str, set[str]] = {name: set() for name in graph}
    for name, dependencies in graph.items():
        for dependency in dependencies:
            if dependency in neighbours and dependency != name:
                neighbours[name].add(dependency)
                neighbours[dependency].add(name)
    roots = [name for name, dependencies in graph.items() if not dependencies]
    group: dict[str, str] = {}
    for start in [*roots, *graph]:
        if start in group:
            continue
        group[start] = start
        todo = [start]
        while todo:
            for other in neighbours[todo.pop()]:
                if other not in group:
                    group[other] = start
                    todo.append(other)
    return {name: group[name] for name in graph}


def depends_on(suite: Suite) -> dict[str, tuple[str, ...]]:
    """The graph of ``suite``'s apps."""
    return {app.name: app.depends_on for app in suite.apps}


def dependency_groups(suite: Suite) -> dict[str, str]:
    """App name -> the name of its ``dependsOn``-connected group (see :func:`groups`)."""
    return groups(depends_on(suite))


def install_order(suite: Suite) -> list[App]:
    """Apps with every dependency before its dependents, file order otherwise."""
    by_name = {app.name: app for app in suite.apps}
    done: list[App] = []
    seen: set[str] = set()

    def visit(app: App) -> None:
        if app.name in seen:
            return
        seen.add(app.name)
        for dependency in app.depends_on:
            visit(by_name[dependency])
        done.append(app)

    for app in suite.apps:
        visit(app)
    return done
