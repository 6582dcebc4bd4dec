"""The run's reports: ``junit.xml``, ``results.json``, ``report.html`` and ``report.md`` in
the report dir.

:class:`ReportPlugin` is registered by the main plugin on the controller only (never on an
xdist worker), like pytest's own junitxml. Everything it writes comes from test reports
(``pytest_runtest_logreport``), so a run with ``-n N`` gives the same files: each suite
item's flat ``user_properties`` (suite, app, chart, namespace, bundle, runbook, ...) and,
on the teardown report of the last item of an app's dependency group, the app's record
(:data:`harness.plugin.state.APP_RECORD`, the JSON of ``AppRun.summary()``).

The builders (:class:`~harness.report.recorder.RunRecorder`,
:func:`~harness.report.results.build_results`, :func:`~harness.report.junit.junit_xml`,
:func:`write_reports`) take plain data, so the benchmark and the tests can feed them
synthetic reports. ``results.json`` is described in ``docs/results-schema.md``; the page
and the Markdown summary are rendered by :mod:`harness.report.html` and
:mod:`harness.report.markdown` from it alone (``helm-harness report DIR``).

Secrets: values are never in the inputs (only their digest), and as a second line of
defence every text is scrubbed of the values the run's suites put under secret-looking
keys and of ``NAME=value`` pairs whose name looks secret.
"""

from __future__ import annotations

import getpass
import json
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.files import write_atomic
from harness.plugin.state import session_key
from harness.redact import redact_args
from harness.report.junit import junit_xml
from harness.report.recorder import RunRecorder, stable_nodeid
from harness.report.results import (
    RunInfo,
    scrubbed_results,
    suite_secrets,
    write_results,
)

if TYPE_CHECKING:
    from harness.plugin.state import HarnessSession
    from harness.report.history import AppTrend


PROGRESS_EVERY = 1.0  # seconds between the records written while a run goes


REPORT_FILES = ("junit.xml", "results.json", "report.html", "report.md")


def write_reports(
    recorder: RunRecorder, info: RunInfo, report_dir: Path, *, secrets: Iterable[str] = ()
) -> list[Path]:
    """Write junit.xml, results.json, report.html and report.md into ``report_dir``; return
    them (in the order of REPORT_FILES)."""
    from harness.report.merge import write_pages

    results, apps, tests = scrubbed_results(recorder, info, report_dir, secrets)
    return [
        write_atomic(report_dir / "junit.xml", junit_xml(results, apps, tests)),
        write_results(report_dir, results),
        *write_pages(report_dir, results),
    ]


def write_progress(
    recorder: RunRecorder, info: RunInfo, report_dir: Path, *, secrets: Iterable[str] = ()
) -> Path:
    """results.json as the run goes (``complete: false``), so that a run killed outright
    still leaves a record of what it saw; the end of the run replaces it."""
    results, _apps, _tests = scrubbed_results(recorder, info, report_dir, secrets)
    return write_results(report_dir, results)


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
        self.history_id: str | None = None  # the run's record id in the history store
        self.history_error: str | None = None
        self.trends: dict[tuple[str, str], AppTrend] = {}  # of this run's apps, by (suite, app)
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
            return
        if harness.options.history:
            self._append_history(harness.options.history)

    def _append_history(self, spec: str) -> None:
        """The run's record into the history store (before the alerts, which use it); a
        problem with the store is a line in the summary, never the run's outcome."""
        from harness.report.history import (
            HistoryError,
            git_sha,
            open_store,
            rerender_with_trends,
            statuses,
        )

        record = next(p for p in self.written if p.name == "results.json")
        try:
            results = json.loads(record.read_text(encoding="utf-8"))
            store = open_store(spec)
            self.history_id = store.append(results, git_sha=git_sha(Path(self.config.rootpath)))
            self.trends = statuses(store, results)
            rerender_with_trends(record.parent, list(self.trends.values()))
        except HistoryError as exc:
            self.history_error = f"helm-harness: warning: {exc}"
        except (OSError, ValueError) as exc:
            self.history_error = f"helm-harness: warning: history not written: {exc}"

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
            serialised=dict(harness.serialised),
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
        if self.history_error:
            terminalreporter.write_line(self.history_error, yellow=True, bold=True)
        elif self.history_id:
            spec = str(self.config.option.harness_history)
            terminalreporter.write_line(f"helm-harness: run appended to the history {_shown(spec)}")


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


def _shown(spec: str) -> str:
    """A history store as messages show it: a URL without its credentials."""
    from harness.redact import url_origin

    return url_origin(spec) if "://" in spec else spec


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


__all__ = ["PROGRESS_EVERY", "REPORT_FILES", "ReportPlugin", "write_progress", "write_reports"]
