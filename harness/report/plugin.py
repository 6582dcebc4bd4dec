"""The run's reports: ``junit.xml``, ``results.json`` and ``report.html`` in the report dir.

:class:`ReportPlugin` is registered by the main plugin on the controller only (never on an
xdist worker), like pytest's own junitxml. Everything it writes comes from test reports
(``pytest_runtest_logreport``), so a run with ``-n N`` gives the same files: each suite
item's flat ``user_properties`` (suite, app, chart, namespace, bundle, runbook, ...) and,
on the teardown report of the last item of an app's dependency group, the app's record
(:data:`harness.plugin.APP_RECORD`, the JSON of ``AppRun.summary()``).

The builders (:class:`RunRecorder`, :func:`build_results`, :func:`junit_xml`,
:func:`write_reports`) take plain data, so the benchmark and the tests can feed them
synthetic reports. ``results.json`` is described in ``docs/results-schema.md``; the page
is rendered by :mod:`harness.report.html` from it alone (``helm-harness report DIR``).

Secrets: values are never in the inputs (only their digest), and as a second line of
defence every text is scrubbed of the values the run's suites put under secret-looking
keys and of ``NAME=value`` pairs whose name looks secret.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.plugin import APP_RECORD, session_key
from harness.redact import MASK, Scrubber, looks_secret, redact_args, value_secrets

if TYPE_CHECKING:
    from harness.plugin.state import HarnessSession

RESULTS_SCHEMA = "helm-harness/results/v1"
PROGRESS_EVERY = 1.0  # seconds between the records written while a run goes
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
REPORT_FILES = ("junit.xml", "results.json", "report.html")
MAX_BUNDLE_FILES = 200
# Flat properties every suite item carries; the rest of an app's record is not per item.
_APP_FIELDS = ("suite", "app", "chart", "chart_version", "release", "namespace", "runbook")
_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<value>[^\s,;&'\"]+)")
_WORKER_LINE = re.compile(r"\A\[[^\]\n]+\] [^\n]* -- Python [^\n]*\n?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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


@dataclass
class RunInfo:
    """Facts about the run as a whole."""

    run_id: str
    started: float  # epoch seconds
    finished: float
    host: str | None = None
    user: str | None = None
    args: list[str] = field(default_factory=list)
    cluster: dict[str, Any] | None = None  # provider, name, kubernetes_version
    helm_version: str | None = None
    exit_status: int | None = None
    complete: bool = True  # False for the record written while the run goes


def iso_utc(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def metric_figures(metrics: Any) -> dict[str, str]:
    """An app's metric snapshot as flat ``metrics.NAME`` figures (per-pod and
    per-container detail left out: that is in ``metrics/<suite>/<app>.json``)."""
    figures: dict[str, str] = {}

    def walk(prefix: str, node: Any, depth: int) -> None:
        if isinstance(node, Mapping):
            if depth >= 3:
                return
            for key, value in node.items():
                if not (str(key) in ("pods", "containers") and isinstance(value, Mapping)):
                    walk(f"{prefix}.{key}", value, depth + 1)
        elif isinstance(node, bool):
            figures[prefix] = "true" if node else "false"
        elif isinstance(node, int | float | str):
            figures[prefix] = str(node)

    walk("metrics", metrics, 0)
    return figures


def _relative(path: str | None, report_dir: Path) -> str | None:
    """A path inside the report dir relative to it (as the page links it); else as given."""
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(report_dir.resolve()).as_posix()
    except ValueError:
        return path


def _bundle_files(bundle: str | None, report_dir: Path) -> list[str]:
    if not bundle or Path(bundle).is_absolute():
        return []
    folder = report_dir / bundle
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file())[:MAX_BUNDLE_FILES]
    return [p.relative_to(report_dir).as_posix() for p in files]


@dataclass
class AppResult:
    record: dict[str, Any]
    items: list[ItemResult]

    @property
    def status(self) -> str:
        outcomes = {item.outcome for item in self.items}
        if outcomes & {"failed", "error"} or self.record.get("failed"):
            return "failed"
        if self.items and outcomes <= {"skipped", "xfailed"}:
            return "skipped"
        return "passed"


def group_apps(recorder: RunRecorder) -> tuple[list[AppResult], list[ItemResult]]:
    """Suite items by app (in the order their first report came), and the other tests."""
    by_app: dict[tuple[str, str], list[ItemResult]] = {}
    tests: list[ItemResult] = []
    for item in recorder.items.values():
        key = item.app_key
        if key is None:
            tests.append(item)
        else:
            by_app.setdefault(key, []).append(item)
    for key in recorder.records:
        by_app.setdefault(key, [])
    apps = []
    for key, items in by_app.items():
        record = recorder.records.get(key) or _record_from_items(key, items)
        apps.append(AppResult(record, items))
    return apps, tests


def _record_from_items(key: tuple[str, str], items: list[ItemResult]) -> dict[str, Any]:
    """An app's record when its own never came (an interrupted run): what its items say."""
    first = items[0]
    record: dict[str, Any] = {field_: first.prop(field_) for field_ in _APP_FIELDS}
    record.update(suite=key[0], app=key[1])
    record.update(
        suite_file=None,
        values_digest=None,
        timings={},
        installed=None,
        install_error=None,
        failed=any(item.outcome in ("failed", "error") for item in items),
        metrics=None,
    )
    return record


def build_results(
    recorder: RunRecorder, info: RunInfo, report_dir: Path
) -> tuple[dict[str, Any], list[AppResult], list[ItemResult]]:
    """The run record written as results.json (see docs/results-schema.md)."""
    apps, tests = group_apps(recorder)
    counts = dict.fromkeys(OUTCOMES, 0)
    for item in recorder.items.values():
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    counts["total"] = len(recorder.items)
    app_rows = []
    for app in apps:
        items = [_item_row(item, report_dir) for item in app.items]
        bundle = next((row["bundle"] for row in items if row["bundle"]), None)
        row = dict(app.record)
        row.update(
            status=app.status,
            bundle=bundle,
            bundle_files=_bundle_files(bundle, report_dir),
            items=items,
        )
        app_rows.append(row)
    results = {
        "schema": RESULTS_SCHEMA,
        "run_id": info.run_id,
        "started": iso_utc(info.started),
        "finished": iso_utc(info.finished),
        "duration_s": round(info.finished - info.started, 3),
        "host": info.host,
        "user": info.user,
        "pytest_args": info.args,
        "exit_status": info.exit_status,
        "complete": info.complete,
        "cluster": info.cluster,
        "helm_version": info.helm_version,
        "outcomes": counts,
        "apps": app_rows,
        "tests": [_test_row(item) for item in tests],
    }
    return results, apps, tests


def _item_row(item: ItemResult, report_dir: Path) -> dict[str, Any]:
    return {
        "id": item.nodeid,
        "name": item.name,
        "check": item.prop("check"),
        "outcome": item.outcome,
        "duration_s": round(item.duration, 3),
        "message": item.message or None,
        "details": _details(item),
        "bundle": _relative(item.prop("bundle"), report_dir),
        "runbook": item.prop("runbook"),
    }


def _test_row(item: ItemResult) -> dict[str, Any]:
    return {
        "id": item.nodeid,
        "name": item.name,
        "file": item.file,
        "outcome": item.outcome,
        "duration_s": round(item.duration, 3),
        "message": item.message or None,
        "details": _details(item),
    }


def _details(item: ItemResult) -> str | None:
    texts = [p.text.strip() for p in item.problems if p.tag != "skipped" and p.text.strip()]
    return "\n\n".join(texts) or None


# --- junit.xml ---------------------------------------------------------------------------


def _xml(text: object) -> str:
    """Text as XML 1.0 allows it: colour codes dropped, other forbidden characters shown
    as #xNN (as pytest's junitxml does)."""
    clean = _ANSI.sub("", str(text))
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", clean)


def _classname(item: ItemResult) -> str:
    key = item.app_key
    if key is not None:
        return f"{key[0]}::{key[1]}"
    parts = item.nodeid.split("::")[:-1]
    if parts:
        parts[0] = parts[0].replace("/", ".").removesuffix(".py")
    return ".".join(parts)


def junit_xml(results: Mapping[str, Any], apps: list[AppResult], tests: list[ItemResult]) -> bytes:
    """One testsuite; one testcase per item with its properties (its flat user properties,
    the app's phase durations and metric snapshot figures), failure/error/skipped elements
    with the first line as message and the whole text inside."""
    items: list[tuple[ItemResult, Mapping[str, Any] | None]]
    items = [(item, app.record) for app in apps for item in app.items]
    items += [(item, None) for item in tests]
    problems = [p.tag for item, _ in items for p in item.problems]
    counts = {
        "tests": str(len(items)),
        "failures": str(problems.count("failure")),
        "errors": str(problems.count("error")),
    }
    duration = f"{float(results.get('duration_s') or 0):.3f}"
    root = ET.Element("testsuites", {"name": "helm-harness", **counts, "time": duration})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": "helm-harness",
            **counts,
            "skipped": str(problems.count("skipped")),
            "time": duration,
            "timestamp": str(results.get("started") or ""),
            "hostname": _xml(results.get("host") or ""),
        },
    )
    cluster = results.get("cluster") or {}
    suite_props = {
        "run_id": results.get("run_id"),
        "cluster.provider": cluster.get("provider"),
        "cluster.name": cluster.get("name"),
        "kubernetes_version": cluster.get("kubernetes_version"),
        "helm_version": results.get("helm_version"),
    }
    _properties(suite, [(k, str(v)) for k, v in suite_props.items() if v is not None])
    for item, record in items:
        case = ET.SubElement(
            suite,
            "testcase",
            name=_xml(item.name),
            classname=_xml(_classname(item)),
            file=_xml(item.file),
            time=f"{item.duration:.3f}",
        )
        _properties(case, _case_properties(item, record))
        for tag in ("skipped", "error", "failure"):
            for problem in (p for p in item.problems if p.tag == tag):
                node = ET.SubElement(case, tag, message=_xml(problem.message))
                if problem.kind:
                    node.set("type", problem.kind)
                node.text = _xml(problem.text)
        bundle = item.prop("bundle")
        if bundle and item.outcome in ("failed", "error"):
            # GitLab shows [[ATTACHMENT|path]] lines of system-out as the case's attachment.
            out = ET.SubElement(case, "system-out")
            out.text = _xml(f"[[ATTACHMENT|{Path(bundle) / 'failure.txt'}]]")
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def _case_properties(item: ItemResult, record: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    props = list(item.properties)
    if record is not None:
        names = {name for name, _ in props}
        for phase, seconds in (record.get("timings") or {}).items():
            if f"duration_{phase}" not in names:
                props.append((f"duration_{phase}", f"{float(seconds):.3f}"))
        props += list(metric_figures(record.get("metrics")).items())
    return props


def _properties(parent: ET.Element, props: Iterable[tuple[str, str]]) -> None:
    props = list(props)
    if props:
        node = ET.SubElement(parent, "properties")
        for name, value in props:
            ET.SubElement(node, "property", name=_xml(name), value=_xml(value))


# --- writing -----------------------------------------------------------------------------


def text_scrubber(secrets: Iterable[str]) -> Callable[[str], str]:
    """Masks the given secret strings, and the value of any ``NAME=value`` whose name
    looks secret."""
    known = Scrubber(secrets)

    def scrub(text: str) -> str:
        text = known(text)
        return _ASSIGNMENT.sub(
            lambda m: f"{m['name']}={MASK}" if looks_secret(m["name"]) else m.group(), text
        )

    return scrub


def write_reports(
    recorder: RunRecorder, info: RunInfo, report_dir: Path, *, secrets: Iterable[str] = ()
) -> list[Path]:
    """Write junit.xml, results.json and report.html into ``report_dir``; return them."""
    from harness.report.html import render

    results, apps, tests = _scrubbed_results(recorder, info, report_dir, secrets)
    return [
        _write(report_dir / "junit.xml", junit_xml(results, apps, tests)),
        _write_results(report_dir, results),
        _write(report_dir / "report.html", render(results).encode()),
    ]


def write_progress(
    recorder: RunRecorder, info: RunInfo, report_dir: Path, *, secrets: Iterable[str] = ()
) -> Path:
    """results.json as the run goes (``complete: false``), so that a run killed outright
    still leaves a record of what it saw; the end of the run replaces it."""
    results, _apps, _tests = _scrubbed_results(recorder, info, report_dir, secrets)
    return _write_results(report_dir, results)


def _scrubbed_results(
    recorder: RunRecorder, info: RunInfo, report_dir: Path, secrets: Iterable[str]
) -> tuple[dict[str, Any], list[AppResult], list[ItemResult]]:
    """The run record with every text scrubbed of ``secrets``; the report dir made."""
    scrub = text_scrubber(secrets)
    recorder.redact(scrub)
    info.args = [scrub(arg) for arg in info.args]
    report_dir.mkdir(parents=True, exist_ok=True)
    return build_results(recorder, info, report_dir)


def _write_results(report_dir: Path, results: dict[str, Any]) -> Path:
    return _write(report_dir / "results.json", (json.dumps(results, indent=2) + "\n").encode())


def _write(path: Path, data: bytes) -> Path:
    """Replace ``path`` whole, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


def suite_secrets(files: Iterable[Path]) -> set[str]:
    """The values the suites in ``files`` give under secret-looking keys (inline values,
    ``set`` and values files), for scrubbing them from the reports."""
    from harness.suite.model import SuiteError, load_suite

    found: set[str] = set()
    for path in files:
        try:
            suite = load_suite(path)
        except (SuiteError, OSError):
            continue
        for app in suite.apps:
            found |= value_secrets(app.values, app.set_values, app.values_files)
    return found


# --- the pytest plugin -------------------------------------------------------------------


class ReportPlugin:
    """Collects every test report (on the controller) and writes the reports at the end.

    Reports are written when the run used the harness: it had suite items, or this
    process acquired a cluster, or ``--report-dir`` was given. A plain pytest run in an
    environment where helm-harness is merely installed writes nothing."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.recorder = RunRecorder()
        self.started = time.time()
        self.written: list[Path] = []
        self.error: str | None = None
        self._next_progress = 0.0
        self._secrets_of: tuple[frozenset[Path], set[str]] = (frozenset(), set())
        # The record written as the run goes: finished items only, from the hooks or a timer.
        self._lock = threading.RLock()
        self._finished: set[str] = set()
        self._dirty = False
        self._closed = False
        self._timer: threading.Timer | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        with self._lock:
            self.recorder.add(report)
            if report.when != "teardown":
                return
            self._finished.add(stable_nodeid(report))
            self._dirty = True
        self._progress_soon()

    def _progress_soon(self) -> None:
        """The record so far: now, or (to write at most every PROGRESS_EVERY seconds) as
        soon as that much time has passed, even while a long check runs."""
        wait = self._next_progress - time.monotonic()
        if wait <= 0:
            self._write_progress()
        elif self._timer is None:
            self._timer = threading.Timer(wait, self._write_progress)
            self._timer.daemon = True
            self._timer.start()

    def _write_progress(self) -> None:
        with self._lock:
            self._timer = None
            harness = self.config.stash.get(session_key, None)
            if self._closed or not self._dirty or harness is None or not self._wanted(harness):
                return
            self._dirty = False
            self._next_progress = time.monotonic() + PROGRESS_EVERY
            finished = RunRecorder()
            finished.items = {k: v for k, v in self.recorder.items.items() if k in self._finished}
            finished.records = self.recorder.records
            info = self._run_info(harness, exit_status=None, cluster=None, helm_version=None)
            info.complete = False
            try:
                write_progress(finished, info, harness.options.report_dir, secrets=self._secrets())
            except OSError:  # the end of the run says so if the folder stays unwritable
                pass

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.recorder.add_collect_error(report)

    # Before the main plugin's sessionfinish removes the cluster: its version is read here.
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        with self._lock:
            self._closed = True  # no more progress records: the whole one follows
            if self._timer is not None:
                self._timer.cancel()
        harness = self.config.stash.get(session_key, None)
        if harness is None or not self._wanted(harness):
            return
        cluster, helm_version = _cluster_facts(harness)
        info = self._run_info(
            harness, exit_status=int(exitstatus), cluster=cluster, helm_version=helm_version
        )
        try:
            self.written = write_reports(
                self.recorder, info, harness.options.report_dir, secrets=self._secrets()
            )
        except OSError as exc:
            self.error = f"helm-harness could not write its reports: {exc}"

    def _run_info(
        self,
        harness: HarnessSession,
        *,
        exit_status: int | None,
        cluster: dict[str, Any] | None,
        helm_version: str | None,
    ) -> RunInfo:
        return RunInfo(
            run_id=harness.options.run_id,
            started=self.started,
            finished=time.time(),
            host=socket.gethostname(),
            user=_user(),
            args=redact_args([str(arg) for arg in self.config.invocation_params.args]),
            cluster=cluster,
            helm_version=helm_version,
            exit_status=exit_status,
        )

    def _secrets(self) -> set[str]:
        """What the run's suite files say is secret (read again only when files are new)."""
        files = {
            Path(str(self.config.rootpath / item.file))
            for item in self.recorder.items.values()
            if item.app_key is not None
        }
        files |= {
            Path(str(r["suite_file"]))
            for r in self.recorder.records.values()
            if r.get("suite_file")
        }
        key = frozenset(files)
        if key != self._secrets_of[0]:
            self._secrets_of = (key, suite_secrets(files))
        return self._secrets_of[1]

    def _wanted(self, harness: HarnessSession) -> bool:
        if self.config.option.collectonly or not self.recorder.items:
            return False
        if harness.info is not None:
            return True
        if any(item.app_key is not None for item in self.recorder.items.values()):
            return True
        args = [str(arg) for arg in self.config.invocation_params.args]
        return any(arg == "--report-dir" or arg.startswith("--report-dir=") for arg in args)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.error:
            terminalreporter.write_line(self.error, red=True)
        elif self.written:
            folder = self.written[0].parent
            names = ", ".join(path.name for path in self.written)
            terminalreporter.write_sep("-", f"helm-harness reports in {folder}: {names}")


def _cluster_facts(harness: HarnessSession) -> tuple[dict[str, Any] | None, str | None]:
    """The cluster this process used, its Kubernetes version and Helm's, read once."""
    info = harness.info
    if info is None:
        return None, None
    from harness.kube.client import server_version

    cluster: dict[str, Any] = {
        "provider": info.provider,
        "name": info.name,
        "kubernetes_version": None,
    }
    try:
        cluster["kubernetes_version"] = server_version(harness.api)
    except Exception:  # the cluster may be gone (an interrupted run): report without it
        pass
    try:
        helm_version: str | None = harness.helm.version()
    except Exception:
        helm_version = None
    return cluster, helm_version


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


__all__ = [
    "OUTCOMES",
    "RESULTS_SCHEMA",
    "AppResult",
    "ItemResult",
    "ReportPlugin",
    "RunInfo",
    "RunRecorder",
    "build_results",
    "junit_xml",
    "metric_figures",
    "suite_secrets",
    "write_reports",
]
