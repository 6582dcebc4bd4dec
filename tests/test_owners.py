"""``owners`` of an app (or of a suite's ``defaults``): loading and its errors (no cluster),
and where the owners show: the failure text, junit.xml properties, results.json and
report.html (failures by owner), from synthetic reports and from a real run on the
session's kwok cluster."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import junitparser
import pytest

from harness.clusters.base import ClusterInfo
from harness.plugin.state import APP_RECORD
from harness.report.html import render
from harness.report.plugin import write_reports
from harness.report.recorder import RunRecorder
from harness.report.results import RunInfo
from harness.suite.model import load_suite
from tests.conftest import FIXTURE_CHARTS
from tests.test_reports import app_reports, props_of, run
from tests.test_suite_loader import HEAD, project, suite_error, write

__all__ = ["project"]  # the fixture, used here

APP = "  - name: web\n    chart: ../fixtures/charts/web\n"


# --- loading --------------------------------------------------------------------------------


def test_owners_come_from_the_app_else_from_defaults(project: Path) -> None:
    path = write(
        project,
        HEAD
        + "defaults: {owners: [team-platform, ops@example.org]}\n"
        + "apps:\n"
        + APP
        + "  - name: db\n    chart: ../fixtures/charts/db\n    owners: ['@db-team', Data Team]\n"
        + "  - name: cache\n    chart: ../fixtures/charts/db\n    owners: []\n",
    )
    apps = {app.name: app for app in load_suite(path).apps}
    assert apps["web"].owners == ("team-platform", "ops@example.org")
    assert apps["db"].owners == ("@db-team", "Data Team")  # the app's own list replaces
    assert apps["cache"].owners == ()  # [] for none
    plain = write(project, HEAD + "apps:\n" + APP, "plain.suite.yaml")
    assert load_suite(plain).apps[0].owners == ()


@pytest.mark.parametrize(
    ("owners", "line", "key", "fragment"),
    [
        pytest.param(
            "owners: team-a",
            6,
            "apps[0].owners",
            "expected a list, got the text 'team-a'; write a list, even of one: `owners: [team-a]`",
            id="text",
        ),
        pytest.param(
            "owners: [team-a, bob, team-a]",
            6,
            "apps[0].owners",
            'lists "team-a" twice',
            id="twice",
        ),
        pytest.param(
            'owners: ["team-a, team-b"]',
            6,
            "apps[0].owners[0]",
            "an owner is a team name, a handle or an e-mail address: one line, no commas",
            id="comma",
        ),
        pytest.param(
            'owners: [""]',
            6,
            "apps[0].owners[0]",
            "an owner is a team name",
            id="empty",
        ),
        pytest.param(
            "owners:\n      - team-a\n      - |\n        two\n        lines\n",
            8,
            "apps[0].owners[1]",
            "an owner is a team name",
            id="multi-line",
        ),
        pytest.param(
            "owners:\n      - |\n        team-b\n",
            7,
            "apps[0].owners[0]",
            'no spaces at either end; got "team-b\\n"',
            id="line-break-at-the-end",
        ),
        pytest.param(
            "owners: [42]", 6, "apps[0].owners[0]", "expected text, got the number 42", id="number"
        ),
        pytest.param(
            "owner: [team-a]", 6, "apps[0].owner", "(did you mean 'owners'?)", id="misspelt"
        ),
    ],
)
def test_owner_errors_name_file_line_and_key(
    project: Path, owners: str, line: int, key: str, fragment: str
) -> None:
    path = write(project, HEAD + "apps:\n" + APP + f"    {owners}\n")
    error = suite_error(path)
    assert (error.path, error.line, error.key) == (path, line, key), str(error)
    assert fragment in error.problem, str(error)


def test_owners_in_defaults_are_checked_where_they_are_written(project: Path) -> None:
    path = write(project, HEAD + "defaults:\n  owners: team-a\napps:\n" + APP)
    error = suite_error(path)
    assert (error.line, error.key) == (4, "defaults.owners"), str(error)


# --- reports from synthetic test reports ----------------------------------------------------


def owned_app_reports(app: str, owners: list[str], *, fail: bool) -> Iterator[pytest.TestReport]:
    """An app's reports as the plugin makes them (tests/test_reports.py), with owners."""
    for report in app_reports("shop", app, fail=fail, metrics=None):
        props = [
            (name, json.dumps({**json.loads(str(value)), "owners": owners}))
            if name == APP_RECORD
            else (name, value)
            for name, value in report.user_properties
        ]
        if owners and report.when != "setup":
            props.append(("owners", ", ".join(owners)))
        report.user_properties = props
        yield report


class OwnerIndex(HTMLParser):
    """report.html's failures-by-owner rows: owner -> the anchors its row links to; and
    the ids of the failure blocks."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.ids: list[str] = []
        self._row: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("class") == "owner":
            self._row = str(found.get("data-owner"))
            self.rows[self._row] = []
        elif tag == "a" and self._row is not None:
            self.rows[self._row].append(str(found.get("href")))
        elif tag == "div" and "failure" in str(found.get("class")) and found.get("id"):
            self.ids.append(str(found["id"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None


def test_owners_reach_junit_results_and_the_page_grouped_by_owner(tmp_path: Path) -> None:
    recorder = RunRecorder()
    for app, owners, fail in [
        ("cart", ["team-shop", "alice@example.org"], True),
        ("search", ["team-shop"], True),
        ("db", ["team-data"], False),
        ("legacy", [], True),
    ]:
        for report in owned_app_reports(app, owners, fail=fail):
            recorder.add(report)
    info = RunInfo(run_id="owned", started=1_700_000_000.0, finished=1_700_000_005.0)
    out = tmp_path / "report"
    write_reports(recorder, info, out)

    (suite,) = junitparser.JUnitXml.fromfile(str(out / "junit.xml"))
    cases = {(case.classname, case.name): case for case in suite}
    assert props_of(cases[("shop::cart", "ready")])["owners"] == "team-shop, alice@example.org"
    assert props_of(cases[("shop::db", "install")])["owners"] == "team-data"
    assert "owners" not in props_of(cases[("shop::legacy", "ready")])

    results = json.loads((out / "results.json").read_text())
    by_app = {app["app"]: app["owners"] for app in results["apps"]}
    assert by_app == {
        "cart": ["team-shop", "alice@example.org"],
        "search": ["team-shop"],
        "db": ["team-data"],
        "legacy": [],
    }

    html = (out / "report.html").read_text()
    index = OwnerIndex(html)
    # One row per owner (an app of two owners under both), the failures of no owner last;
    # each row links to failure blocks that are on the page.
    assert list(index.rows) == ["alice@example.org", "team-shop", ""]
    blocks = {anchor: html.index(f'id="{anchor}"') for anchor in index.ids}
    team_shop = [link.removeprefix("#") for link in index.rows["team-shop"]]
    assert len(team_shop) == 2 and set(team_shop) <= set(blocks)
    (alice,) = index.rows["alice@example.org"]
    assert alice in index.rows["team-shop"]
    cart_block = html[blocks[alice[1:]] :]
    assert cart_block.split("</h3>")[0].endswith("shop/cart")
    assert "owners: team-shop, alice@example.org" in cart_block.split("</div>", 1)[0]
    legacy = index.rows[""][0][1:]
    assert html[blocks[legacy] :].split("</h3>")[0].endswith("shop/legacy")
    assert "no owner" in html and "<th>owners</th>" in html  # the apps table has the column


def test_without_owners_the_page_has_no_owner_index_and_no_column() -> None:
    app = {"suite": "s", "app": "a", "status": "failed", "items": [], "install_error": "boom"}
    html = render({"apps": [app], "tests": [], "outcomes": {"failed": 1}})
    assert OwnerIndex(html).rows == {} and "<th>owners</th>" not in html
    assert "boom" in html


def test_an_interrupted_app_without_its_record_keeps_its_owners(tmp_path: Path) -> None:
    recorder = RunRecorder()
    for report in owned_app_reports("cart", ["team-shop", "bob"], fail=True):
        if report.when == "teardown":
            report.user_properties = [p for p in report.user_properties if p[0] != APP_RECORD]
        recorder.add(report)
    info = RunInfo(run_id="cut", started=1_700_000_000.0, finished=1_700_000_001.0)
    write_reports(recorder, info, tmp_path)
    (app,) = json.loads((tmp_path / "results.json").read_text())["apps"]
    assert app["owners"] == ["team-shop", "bob"] and app["suite_file"] is None


# --- a real run -----------------------------------------------------------------------------


def test_a_failing_run_shows_the_owners_with_the_failure(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    (pytester.path / "shop.suite.yaml").write_text(
        textwrap.dedent(
            f"""
            apiVersion: helm-harness/v1
            kind: Suite
            defaults: {{owners: [team-platform]}}
            apps:
              - name: web
                chart: {FIXTURE_CHARTS / "web"}
                checks: [{{ready: {{}}}}]
              - name: broken
                chart: {FIXTURE_CHARTS / "web"}
                owners: [team-shop, alice@example.org]
                checks:
                  - wait: {{resource: configmap/never, for: create}}
                    timeout: 1s
                    name: never
            """
        ).lstrip()
    )
    result = run(pytester, harness_cluster, "--report-dir=out", "-rf")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["owners: team-shop, alice@example.org"])
    out = pytester.path / "out"
    (suite,) = junitparser.JUnitXml.fromfile(str(out / "junit.xml"))
    cases = {(case.classname, case.name): case for case in suite}
    never = cases[("shop::broken", "never")]
    assert props_of(never)["owners"] == "team-shop, alice@example.org"
    assert "owners: team-shop, alice@example.org" in str(never.result[0].text)
    assert props_of(cases[("shop::web", "ready")])["owners"] == "team-platform"
    results = json.loads((out / "results.json").read_text())
    apps = {app["app"]: app for app in results["apps"]}
    assert apps["broken"]["owners"] == ["team-shop", "alice@example.org"]
    assert apps["web"]["owners"] == ["team-platform"]
    assert "owners: team-shop, alice@example.org" in apps["broken"]["items"][1]["details"]
    index = OwnerIndex((out / "report.html").read_text())
    assert set(index.rows) == {"team-shop", "alice@example.org"}
