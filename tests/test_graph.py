"""The dependsOn graph of a suite (harness.suite.graph): cycles and groups. Pure: no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.suite.graph import dependency_groups, find_cycle, groups
from harness.suite.model import SuiteError, load_suite

CHAIN = {"web": ("api",), "api": ("db",), "db": ()}
DIAMOND = {"top": ("left", "right"), "left": ("base",), "right": ("base",), "base": ()}


def test_a_chain_has_no_cycle_and_is_one_group() -> None:
    assert find_cycle(CHAIN) is None
    assert groups(CHAIN) == {"web": "db", "api": "db", "db": "db"}


def test_a_diamond_has_no_cycle_and_is_one_group() -> None:
    assert find_cycle(DIAMOND) is None
    assert set(groups(DIAMOND).values()) == {"base"}


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        pytest.param(
            {"web": ("db",), "db": ("cache",), "cache": ("web",)},
            ["web", "db", "cache", "web"],
            id="three",
        ),
        pytest.param(
            {"cache": ("web",), "web": ("db",), "db": ("cache",)},
            ["cache", "web", "db", "cache"],
            id="starts-at-the-first-app",
        ),
        pytest.param(
            {"ok": (), "a": ("ok", "b"), "b": ("a",)},
            ["a", "b", "a"],
            id="two-beside-a-good-app",
        ),
        pytest.param({"web": ("web",)}, ["web", "web"], id="self"),
    ],
)
def test_a_cycle_is_given_in_dependson_order(
    graph: dict[str, tuple[str, ...]], cycle: list[str]
) -> None:
    found = find_cycle(graph)
    assert found == cycle
    for app, dependency in zip(found, found[1:], strict=False):
        assert dependency in graph[app]  # each app depends on the next


def test_disconnected_apps_are_groups_of_their_own() -> None:
    graph = {**CHAIN, **DIAMOND, "alone": (), "pair": ("mate",), "mate": ()}
    assert find_cycle(graph) is None
    assert groups(graph) == {
        "web": "db",
        "api": "db",
        "db": "db",
        "top": "base",
        "left": "base",
        "right": "base",
        "base": "base",
        "alone": "alone",
        "pair": "mate",
        "mate": "mate",
    }


def test_a_group_is_named_after_its_first_app_that_depends_on_nothing() -> None:
    # two apps without dependencies joined by a third: the first of them in file order
    joined = {"front": ("a", "b"), "b": (), "a": ()}
    assert groups(joined) == {"front": "b", "b": "b", "a": "b"}
    # every app in a cycle depends on one: its first app
    assert groups({"x": ("y",), "y": ("x",), "z": ()}) == {"x": "x", "y": "x", "z": "z"}


def write_suite(folder: Path, apps: str) -> Path:
    (folder / "chart").mkdir()
    (folder / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    path = folder / "g.suite.yaml"
    path.write_text("apiVersion: helm-harness/v1\nkind: Suite\napps:\n" + apps)
    return path


def test_dependency_groups_of_a_suite(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(
            tmp_path,
            "  - {name: front, chart: ./chart, dependsOn: [back]}\n"
            "  - {name: back, chart: ./chart}\n"
            "  - {name: alone, chart: ./chart}\n",
        )
    )
    assert dependency_groups(suite) == {"front": "back", "back": "back", "alone": "alone"}


def test_a_suite_with_a_cycle_names_the_file_app_and_cycle(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        "  - {name: web, chart: ./chart}\n"
        "  - {name: api, chart: ./chart, dependsOn: [web, db]}\n"
        "  - {name: db, chart: ./chart, dependsOn: [api]}\n",
    )
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert str(path) in message or path.name in message
    assert "apps[1].dependsOn[1]" in message  # api's `db`: where the cycle starts
    assert "dependsOn has a cycle: api -> db -> api" in message
