"""The run as pytest reports it: one :class:`ItemResult` per item (its outcome, problems,
properties, duration) and the apps' records, kept by :class:`RunRecorder` from the test
reports (so ``-n N`` gives the same), with ids that keep upgrade phases apart
(:func:`stable_nodeid`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.plugin.state import APP_RECORD, OWNERS_SEPARATOR

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


# Flat properties every suite item carries; the rest of an app's record is not per item.
APP_FIELDS = ("suite", "app", "chart", "chart_version", "release", "namespace", "runbook")


_WORKER_LINE = re.compile(r"\A\[[^\]\n]+\] [^\n]* -- Python [^\n]*\n?")


@dataclass
class Problem:
    """What went wrong (or why it was skipped) in one phase of an item."""

    tag: str  # the JUnit element: failure, error or skipped
    message: str  # its first line
    text: str  # all of it
    kind: str = ""  # JUnit type attribute, e.g. pytest.skip


@dataclass
class ItemResult:
    """One test item, from its setup, call and teardown reports."""

    nodeid: str
    file: str
    outcome: str = "passed"  # one of OUTCOMES
    duration: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]

    @property
    def message(self) -> str:
        return self.problems[0].message if self.problems else ""

    def prop(self, name: str) -> str | None:
        found = [value for key, value in self.properties if key == name]
        return found[-1] if found else None

    @property
    def owners(self) -> list[str]:
        """The app's owners, from the item's ``owners`` property."""
        return [owner for owner in (self.prop("owners") or "").split(OWNERS_SEPARATOR) if owner]

    @property
    def app_key(self) -> tuple[str, str] | None:
        """(suite, app) for an item of a suite file; None for a plain Python test."""
        props = dict(self.properties)
        if all(key in props for key in ("suite", "app", "release", "namespace")):
            return props["suite"], props["app"]
        return None


class RunRecorder:
    """Collects test reports into items and app records."""

    def __init__(self) -> None:
        self.items: dict[str, ItemResult] = {}
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, report: pytest.TestReport) -> None:
        nodeid = stable_nodeid(report)
        item = self.items.get(nodeid)
        if item is None:
            item = self.items[nodeid] = ItemResult(nodeid, report.location[0])
        item.duration += report.duration
        for name, value in report.user_properties:
            if name == APP_RECORD:
                self._add_record(value)
            elif (str(name), str(value)) not in item.properties:
                item.properties.append((str(name), str(value)))
        if report.when == "call":
            self._call(item, report)
        elif report.failed:
            text = _longrepr_text(report)
            message = f"failed on {report.when}: {_crash_message(report)}"
            item.problems.append(Problem("error", message, text))
            if report.when == "setup" or item.outcome != "failed":
                item.outcome = "error"
        elif report.skipped:
            self._skipped(item, report)

    def _call(self, item: ItemResult, report: pytest.TestReport) -> None:
        if report.failed:
            item.outcome = "failed"
            item.problems.append(Problem("failure", _crash_message(report), _longrepr_text(report)))
        elif report.skipped:
            self._skipped(item, report)
        elif hasattr(report, "wasxfail"):
            item.outcome = "xpassed"

    def _skipped(self, item: ItemResult, report: pytest.TestReport) -> None:
        if hasattr(report, "wasxfail"):
            item.outcome = "xfailed"
            reason = f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
            item.problems.append(Problem("skipped", _first_line(reason), reason, "pytest.xfail"))
            return
        item.outcome = "skipped"
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else _longrepr_text(report)
        reason = reason.removeprefix("Skipped: ")
        item.problems.append(Problem("skipped", _first_line(reason), reason, "pytest.skip"))

    def add_collect_error(self, report: pytest.CollectReport) -> None:
        text = _longrepr_text(report)
        message = f"collection failure: {_first_line(text)}"
        self.items[report.nodeid] = ItemResult(
            report.nodeid,
            report.nodeid.split("::")[0],
            outcome="error",
            problems=[Problem("error", message, text)],
        )

    def _add_record(self, value: object) -> None:
        try:
            record = json.loads(str(value))
        except ValueError:
            return
        if isinstance(record, dict) and "suite" in record and "app" in record:
            self.records[(str(record["suite"]), str(record["app"]))] = record

    def redact(self, scrub: Callable[[str], str]) -> None:
        """Pass every text and property value (and the app records) through ``scrub``."""
        for item in self.items.values():
            item.properties = [(key, scrub(value)) for key, value in item.properties]
            for problem in item.problems:
                problem.message = scrub(problem.message)
                problem.text = scrub(problem.text)
        for key, record in self.records.items():
            self.records[key] = _map_strings(record, scrub)


def stable_nodeid(report: pytest.TestReport) -> str:
    """The item's id without the ``@group`` that xdist's ``--dist loadgroup`` appends. A
    suite item's group is ``<suite>::<app>``; an ``@`` in a suite item's own name is part
    of its id (the upgrade phases: ``ready@from``, ``ready@to``, ``ready@rollback``) and
    is kept, so that every phase reports under its own id."""
    nodeid = report.nodeid
    if "xdist_group" not in report.keywords or "@" not in nodeid:
        return nodeid
    base, _, suffix = nodeid.rpartition("@")
    if "::" in suffix or not base.split("::", 1)[0].endswith((".yaml", ".yml")):
        return base
    return nodeid


def _longrepr_text(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The report's failure text, without the worker line xdist's reports start with."""
    text = report.longreprtext
    if hasattr(report, "node"):
        text = _WORKER_LINE.sub("", text, count=1)
    return text


def _crash_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    return _first_line(str(message) if message else _longrepr_text(report))


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    return value
