"""Progress for ``helm-harness run``: the cluster's start, what each worker is doing now and
for how long, failures with their cause as they happen, and a summary at the end.

On a terminal a rich ``Live`` region at the bottom shows one row per worker (one row in a
single process): ``gw0 shop::web: ready ... waiting for ready 3.2s``, with a running timer,
and a footer with the run's counts; finished installs and failures are printed above it.
Elsewhere (CI logs) the same events come as plain timestamped lines, one per finished item.
Both write to the stream pytest's terminal writer uses, and honour ``--color`` and
``NO_COLOR`` as pytest does (through the writer's ``hasmarkup``).

pytest's own per-item output (the dots, file names and percentages) would run into the
region, so while items run it is left out: a ``pytest_report_teststatus`` wrapper blanks
the letter and word (the category, which the summary counts, is kept) and the file names
are turned off. With ``-v`` pytest's per-item lines are kept and progress comes as lines.

Under xdist this runs in the controller: reports name their worker (``worker_id``); an
item's start does not, so it is looked up in the scheduler's assignment (the harness's
scheduler, and xdist's scope schedulers, keep one); else the item's row gets its worker
with the setup report. The phase of a suite item is what the item does (``install`` is
installing, ``ready`` waiting for ready, ``helmTest`` running helm test, ...), known from
its id, so the controller needs nothing from the workers. The region's refresh thread is
stopped at the session's end, on Ctrl-C, and at unconfigure.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from harness.plugin.state import HarnessSession, session_key

SUITE_SUFFIXES = (".yaml", ".yml")
REFRESH_PER_SECOND = 4
HARNESS_FIXTURES = frozenset({"harness_cluster", "k8s", "helm", "harness_app"})
STEPS = ("install", "upgrade", "rollback")  # finished ones get a line on a terminal too
PHASES = {  # what a suite item of each kind is doing
    "lint": "linting",
    "install": "installing",
    "upgrade": "upgrading",
    "rollback": "rolling back",
    "crd-drift": "comparing CRDs",
    "ready": "waiting for ready",
    "wait": "waiting",
    "http": "probing over HTTP",
    "logs": "reading logs",
    "helmTest": "running helm test",
    "noRestarts": "counting restarts",
    "events": "reading events",
    "metrics": "reading metrics",
    "rbac": "checking RBAC",
    "security": "checking security settings",
    "python": "running a python check",
}
WORSE = {"ok": 0, "skipped": 1, "failed": 2, "error": 2}


@dataclass(frozen=True)
class ItemId:
    """What a nodeid says: the suite file and app of a suite item, and the item's name."""

    nodeid: str
    file: str | None
    app: str | None
    name: str

    @classmethod
    def parse(cls, nodeid: str) -> ItemId:
        parts = nodeid.split("::", 2)
        if len(parts) == 3 and parts[0].endswith(SUITE_SUFFIXES):
            return cls(nodeid, parts[0], parts[1], parts[2])
        return cls(nodeid, None, None, nodeid)

    @property
    def kind(self) -> str:
        return re.split(r"[\[@]", self.name, maxsplit=1)[0]


@dataclass
class Row:
    """A line of the live region: what a worker is doing, since when."""

    what: str
    phase: str
    since: float
    nodeid: str = ""
    worker: str = ""  # under xdist, once known
    spinner: Spinner | None = None


@dataclass
class AppTally:
    suite: str
    items: dict[str, str] = field(default_factory=dict)  # nodeid -> its worst outcome
    seconds: float = 0.0


class Progress:
    """``stream``: where to write (default: pytest's terminal writer's stream);
    ``terminal``: whether it is a terminal (default: ask it)."""

    def __init__(self, stream: IO[str] | None = None, *, terminal: bool | None = None) -> None:
        self.stream = stream
        self.terminal = terminal
        self.started = time.monotonic()
        self.console = Console(file=sys.stderr)  # replaced in pytest_configure
        self.config: pytest.Config | None = None
        self.quiet = False  # pytest's per-item output is left out while items run
        self.finished = False
        self._lock = threading.Lock()  # the state below; the refresh thread reads it
        self._live: Live | None = None
        self._rows: dict[str, Row] = {}  # worker ("" in one process) -> what it does now
        self._workers: set[str] = set()
        self._ahead: list[tuple[str, Any]] = []  # (app, future): installs ahead (one process)
        self._total = 0
        self._done = 0
        self._failed: set[str] = set()
        self._skipped: set[str] = set()
        self._skips: Counter[str] = Counter()
        self._apps: dict[tuple[str, str], AppTally] = {}
        self._suites: dict[str, str] = {}  # suite file (as in nodeids) -> suite name
        self._collected_line = ""  # said when the first item starts, under xdist
        self._owned: IO[str] | None = None  # the terminal stream this opened
        self._pytest_stream: IO[str] | None = None  # the one pytest writes to, then
        self._spinner = "dots"

    # --- output ----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after the terminal reporter exists
    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config
        writer = config.get_terminal_writer()
        stream = self.stream or getattr(writer, "_file", None) or sys.stdout
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        verbose = config.get_verbosity() > 0
        # A region redrawn from a thread would write over -v's lines, a test's output
        # under -s and the debugger's prompt: lines then.
        interactive = config.getvalue("capture") == "no" or config.getvalue("usepdb")
        if self.terminal is None:
            self.terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.terminal = self.terminal and not (verbose or interactive or config.getvalue("trace"))
        if self.terminal and self.stream is None:
            self._pytest_stream = stream
            stream = self._owned = own_stream(stream)
        self.console = Console(
            file=stream,
            force_terminal=self.terminal or writer.hasmarkup,
            color_system="auto" if writer.hasmarkup else None,
            no_color=not writer.hasmarkup,
            highlight=False,
            emoji=False,
            markup=False,
        )
        self._spinner = "dots" if self.console.encoding.startswith("utf") else "line"
        if reporter is not None and not verbose:
            reporter.showfspath = False
            self.quiet = True

    def _stamp(self) -> Text:
        return Text(f"[{time.monotonic() - self.started:6.1f}s] ", style="dim")

    def say(self, text: str | Text, style: str = "") -> None:
        line = self._stamp() + (Text(text, style=style) if isinstance(text, str) else text)
        self._flush_pytest()
        self.console.print(line, soft_wrap=True)

    def _flush_pytest(self) -> None:
        """What pytest wrote goes out first (on a terminal this writes through a stream
        of its own)."""
        if self._owned is not None and self._pytest_stream is not None:
            self._pytest_stream.flush()

    def _show(self) -> None:
        if self.terminal and self._live is None and not self.finished:
            self._flush_pytest()
            self._live = Live(
                console=self.console,
                get_renderable=self._render,
                refresh_per_second=REFRESH_PER_SECOND,
                transient=True,
                redirect_stdout=False,  # pytest's capture owns sys.stdout and sys.stderr
                redirect_stderr=False,
            )
            self._live.start(refresh=True)

    def _hide(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            refresher = getattr(live, "_refresh_thread", None)  # rich stops it, never joins it
            live.stop()
            if (
                isinstance(refresher, threading.Thread)
                and refresher is not threading.current_thread()
            ):
                refresher.join(timeout=2)  # gone when the run ends, not a moment later

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def _render(self) -> RenderableType:
        now = time.monotonic()
        lines: list[RenderableType] = []
        with self._lock:
            for worker in sorted(self._rows, key=lambda w: (len(w), w)):
                row = self._rows[worker]
                text = Text(no_wrap=True, overflow="ellipsis")
                if row.worker:
                    text.append(f"{row.worker} ", style="bold")
                text.append(f"{row.what} ... " if row.what else "")
                text.append(row.phase, style="cyan")
                text.append(f" {_clock(now - row.since)}", style="dim")
                if row.spinner is None:
                    row.spinner = Spinner(self._spinner, style="cyan")
                row.spinner.update(text=text)
                lines.append(row.spinner)
            ahead = [app for app, future in self._ahead if not future.done()]
            if ahead:
                lines.append(Text(f"  ahead of their items: {', '.join(ahead)}", style="dim"))
            if self._total and (self._done or any(row.nodeid for row in self._rows.values())):
                footer = f"  {self._done}/{self._total} items"
                if self._failed:
                    footer += f", {len(self._failed)} failed"
                if self._skipped:
                    footer += f", {len(self._skipped)} skipped"
                lines.append(Text(f"{footer}, {_clock(now - self.started)}", style="dim"))
        return Group(*lines)

    def _teststatus_blank(self) -> bool:
        return self.quiet and not self.finished

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        status = yield
        if self._teststatus_blank() and isinstance(status, tuple) and len(status) == 3:
            return status[0], "", ""  # the category still counts in pytest's summary
        return status

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        self._hide()
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    # --- the cluster -----------------------------------------------------------------------

    def _start_cluster(self, harness: HarnessSession) -> None:
        what = _cluster_wanted(harness)
        began = time.monotonic()
        if self.terminal:
            with self._lock:
                self._rows["cluster"] = Row(what="", phase=what, since=began)
            self._show()
        else:
            self.say(f"{what} ...")
        try:
            info = harness.cluster()
        except Exception as exc:  # the items that need it report it
            self._hide()
            self.say(f"cluster: {what} failed: {_first_line(str(exc))}", style="red")
            return
        finally:
            with self._lock:
                self._rows.pop("cluster", None)
            self._hide()
        done = "created" if info.created else "using"
        self.say(f"{done} {info.provider} cluster {info.name} ({time.monotonic() - began:.1f}s)")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """One process (the xdist controller does not collect)."""
        items = session.items
        ids = [item.nodeid for item in items]
        self._collected_ids(ids)
        config = session.config
        harness = config.stash.get(session_key, None)
        if harness is None or config.option.collectonly or hasattr(config, "workerinput"):
            return
        needs_cluster = any(
            ItemId.parse(item.nodeid).app is not None
            or HARNESS_FIXTURES & set(getattr(item, "fixturenames", ()))
            for item in items
        )
        if needs_cluster and harness.info is None and harness.cluster_error is None:
            self._start_cluster(harness)

    def _collected_ids(self, ids: list[str], *, now: bool = True) -> None:
        if self._total or not ids:
            return
        self._total = len(ids)
        apps = {(i.file, i.app) for i in map(ItemId.parse, ids) if i.app is not None}
        self._collected_line = f"collected {len(ids)} items, {len(apps)} apps"
        if now:
            self.say(self._collected_line)
            self._collected_line = ""

    @pytest.hookimpl(tryfirst=True, optionalhook=True)  # before the plugin shares the cluster
    def pytest_configure_node(self, node: Any) -> None:
        """The xdist controller makes the cluster the workers share: say so, with a timer."""
        self._workers.add(str(node.gateway.id))
        harness = node.config.stash.get(session_key, None)
        if harness is None or harness.info is not None or harness.cluster_error is not None:
            return
        if harness.options.cluster_per_worker:
            if len(self._workers) == 1:
                self.say(f"each worker starts its own {harness.options.cluster} cluster")
            return
        if self.terminal:
            self._flush_pytest()
            self.console.file.write("\n")  # end xdist's status line ("created: 2/2 workers")
        self._start_cluster(harness)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected_ids(list(ids), now=False)  # xdist's status line is being rewritten

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        worker = str(node.gateway.id)
        with self._lock:
            self._workers.discard(worker)
            self._rows.pop(worker, None)
        self._refresh()

    # --- items -----------------------------------------------------------------------------

    def _suite_name(self, file: str) -> str:
        if file not in self._suites:
            from harness.suite.model import SuiteError, load_suite

            name = Path(file).name.rsplit(".", 1)[0].removesuffix(".suite")
            root = self.config.rootpath if self.config is not None else Path.cwd()
            try:
                name = load_suite(root / file).name
            except (SuiteError, OSError):
                pass  # its items say what is wrong with it
            self._suites[file] = name
        return self._suites[file]

    def _what(self, item: ItemId) -> str:
        """``shop::web: ready`` for a suite item, the nodeid for any other."""
        if item.file is None or item.app is None:
            return item.nodeid
        return f"{self._suite_name(item.file)}::{item.app}: {item.name}"

    def _worker_starting(self, nodeid: str) -> str:
        """The worker an item starting now runs on: "" in one process; under xdist, from
        the scheduler's assignment, or a placeholder until its setup report names it."""
        if self.config is None:
            return ""
        dsession = self.config.pluginmanager.get_plugin("dsession")
        if dsession is None:
            return ""
        assigned = getattr(getattr(dsession, "sched", None), "assigned_work", None) or {}
        for node, scopes in list(assigned.items()):
            if any(nodeid in work for work in list(scopes.values())):
                return str(node.gateway.id)
        return f"?{nodeid}"

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        item = ItemId.parse(nodeid)
        worker = self._worker_starting(nodeid)
        phase = PHASES.get(item.kind, "checking") if item.app is not None else "setting up"
        row = Row(what=self._what(item), phase=phase, since=time.monotonic(), nodeid=nodeid)
        row.worker = worker if worker in self._workers else ""
        with self._lock:
            self._rows[worker] = row
        if self._collected_line:  # under xdist, once its status line is done
            self.say(self._collected_line)
            self._collected_line = ""
        self._show()
        self._refresh()

    @pytest.hookimpl(trylast=True)  # after pytest's own line for it, with -v
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        item = ItemId.parse(report.nodeid)
        lines = self._record(report, item)
        self._move_row(report, item)
        self._refresh()  # before the lines: a line printed redraws the region as last drawn
        worker = getattr(report, "worker_id", None)
        for text, style in lines:
            self.say(f"{worker} {text}" if worker else text, style)

    def _move_row(self, report: pytest.TestReport, item: ItemId) -> None:
        """The row of the item reported, kept up with its phases; gone at its teardown."""
        worker = str(getattr(report, "worker_id", "") or "")
        now = time.monotonic()
        with self._lock:
            placeholder = self._rows.pop(f"?{report.nodeid}", None)
            if placeholder is not None:
                placeholder.worker = worker
                self._rows[worker] = placeholder
            row = self._rows.get(worker)
            if row is None or row.nodeid != report.nodeid:
                return
            if report.when == "teardown":
                del self._rows[worker]
                if worker and self._total and self._done >= self._total:
                    for other in self._workers - set(self._rows):  # all done: they clean up
                        self._rows[other] = Row("", "finishing", since=now, worker=other)
            elif report.when == "call" or not report.passed:
                row.phase, row.since = "tearing down", now
            elif item.app is None:
                row.phase = "running"

    def _record(self, report: pytest.TestReport, item: ItemId) -> list[tuple[str, str]]:
        """Count the report in; the lines it makes (text, style)."""
        what = self._what(item)
        took = f"{report.duration:.1f}s"
        outcome, lines = "ok", []
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
            word = "FAILED" if report.when == "call" else f"ERROR at {report.when}"
            cause = _cause(report, f"{item.app}::{item.name}: ")
            lines.append((f"{what} {word} ({took}): {cause}", "bold red"))
            self._failed.add(report.nodeid)
        elif report.skipped:
            outcome = "skipped"
            self._skips[_skip_reason(report)] += 1
            self._skipped.add(report.nodeid)
        elif report.when == "call":
            if not self.terminal or (item.app is not None and item.kind in STEPS):
                lines.append((f"{what} ok ({took})", "green"))
        if report.when == "teardown":
            self._done += 1
        elif report.when == "setup" and report.passed:
            self._note_ahead()
        if item.file is not None and item.app is not None:
            tally = self._apps.setdefault(
                (item.file, item.app), AppTally(self._suite_name(item.file))
            )
            before = tally.items.get(report.nodeid, "ok")
            tally.items[report.nodeid] = max(before, outcome, key=WORSE.__getitem__)
            tally.seconds += report.duration
        return lines

    def _note_ahead(self) -> None:
        """One process: the apps installed and checked ahead of their items, under way
        (plugin/prefetch.py)."""
        harness = self.config.stash.get(session_key, None) if self.config else None
        prefetcher = getattr(harness, "prefetcher", None)
        if prefetcher is not None:
            with self._lock:
                self._ahead = [(app, future) for (_, app), future in prefetcher.submitted.items()]

    # --- the end ---------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, trylast=True)  # inside the terminal reporter's summary
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        harness = session.config.stash.get(session_key, None)
        cleans = harness is not None and harness.info is not None and not harness.closed
        began = time.monotonic()
        with self._lock:
            self._rows.clear()
            self._ahead = []
            if cleans and self._done:
                self._rows["end"] = Row(what="", phase="cleaning up", since=began)
        if self._rows:
            self._show()
        self._refresh()
        try:
            return (yield)
        finally:
            self._hide()
            self.finished = True
            if cleans:
                self.say(f"cleaned up ({time.monotonic() - began:.1f}s)")
            self._summary()

    def _summary(self) -> None:
        if self._skips:
            total = sum(self._skips.values())
            self.say(f"skipped {total} item{'s' if total != 1 else ''}:", "yellow")
            for reason, count in self._skips.most_common():
                shown = Text(f"  {count} item{'s' if count != 1 else ''}: {reason}", style="yellow")
                self.console.print(shown, soft_wrap=True)
        for (_, app), tally in sorted(self._apps.items(), key=lambda kv: (kv[1].suite, kv[0])):
            outcomes = list(tally.items.values())
            bad = sum(WORSE[o] == 2 for o in outcomes)
            skipped = outcomes.count("skipped")
            verdict = "healthy" if not bad else f"{bad} of {len(outcomes)} not ok"
            if skipped:
                verdict += f", {skipped} skipped"
            detail = f"suite {tally.suite}, {len(outcomes)} items, {tally.seconds:.1f}s"
            self.say(f"app {app}: {verdict} ({detail})", "red" if bad else "green")


def _cluster_wanted(harness: HarnessSession) -> str:
    opts = harness.options
    if opts.kubeconfig is not None and opts.cluster in ("existing", "auto"):
        return f"connecting to the cluster in {opts.kubeconfig}"
    verb = "starting or reusing" if opts.reuse_cluster else "starting"
    if opts.cluster == "auto":
        return f"{verb} cluster {opts.cluster_name} (--cluster auto)"
    return f"{verb} {opts.cluster} cluster {opts.cluster_name}"


def own_stream(stream: IO[str]) -> IO[str]:
    """A stream of its own onto the terminal ``stream`` is: while a test runs, pytest's
    capture points file descriptor 1 elsewhere, and the region's refresh must still reach
    the terminal."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    stream.flush()
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=encoding, errors="replace")


def _clock(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _first_line(text: str) -> str:
    """The first line that says something; one ending in ``:`` (Helm's "1 error
    occurred:") with the line after it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else ""


def _cause(report: pytest.TestReport, prefix: str) -> str:
    """A failure's cause in one line: the harness's message (without the item's name it
    starts with), an exception's message, or the ``E`` line of pytest's report."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if isinstance(message, str) and message.strip():
        cause = _first_line(message)
    else:
        text = str(longrepr or "")
        marked = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
        cause = next((line for line in marked if line), "") or _first_line(text)
    return cause.removeprefix(prefix) or "(no message)"


def _skip_reason(report: pytest.TestReport) -> str:
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        return f"expected to fail: {wasxfail}" if wasxfail else "expected to fail"
    longrepr = report.longrepr
    if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3:
        return _first_line(str(longrepr[2]).removeprefix("Skipped: ")) or "no reason given"
    return _first_line(str(longrepr or "")) or "no reason given"


__all__ = ["Progress"]
