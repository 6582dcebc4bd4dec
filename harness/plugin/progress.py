"""Progress for ``helm-harness run``: the cluster's start and each app's phase as they
happen. On a terminal one status line is rewritten in place, with a line per finished app;
elsewhere (CI logs) every event is a plain line."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import pytest

from harness.plugin.state import session_of


class Progress:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self.apps: dict[str, list[str]] = {}  # app -> outcomes of its items
        self._status_shown = False

    def _stamp(self) -> str:
        return f"[{time.monotonic() - self.started:6.1f}s]"

    def say(self, text: str) -> None:
        if self.live and self._status_shown:
            self.stream.write("\r\x1b[2K")
            self._status_shown = False
        self.stream.write(f"{self._stamp()} {text}\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        if not self.live:
            self.say(text)
            return
        self.stream.write(f"\r\x1b[2K{self._stamp()} {text}")
        self.stream.flush()
        self._status_shown = True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from harness.plugin.items import HarnessItem  # the suite layer, once there is a run

        suite_items = [item for item in session.items if isinstance(item, HarnessItem)]
        apps = {f"{item.suite.name}::{item.app.name}" for item in suite_items}
        self.say(f"collected {len(session.items)} items, {len(apps)} apps")
        if not session.items or hasattr(session.config, "workerinput"):
            return
        harness = session_of(session.config)
        opts = harness.options
        if harness.info is None and harness.cluster_error is None:
            self.status(f"starting {opts.cluster} cluster {opts.cluster_name} ...")
            began = time.monotonic()
            try:
                info = harness.cluster()
            except Exception as exc:  # reported by the items that need it
                self.say(f"cluster: could not start: {str(exc).splitlines()[0]}")
                return
            verb = "created" if info.created else "using"
            self.say(
                f"{verb} {info.provider} cluster {info.name} ({time.monotonic() - began:.1f}s)"
            )

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        parts = nodeid.split("::")
        if len(parts) >= 3:
            self.status(f"{parts[-2]}: {parts[-1]} ...")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        parts = report.nodeid.split("::")
        if len(parts) < 3:
            return
        app, item = parts[-2], parts[-1]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcome = report.outcome.upper() if report.outcome != "passed" else "ok"
            self.apps.setdefault(app, []).append(outcome)
            if report.outcome != "passed" or item.startswith(("install", "upgrade", "rollback")):
                self.say(f"{app}: {item} {outcome} ({report.duration:.1f}s)")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for app, outcomes in sorted(self.apps.items()):
            bad = [o for o in outcomes if o not in ("ok", "SKIPPED")]
            skipped = outcomes.count("SKIPPED")
            verdict = "healthy" if not bad else f"{len(bad)} of {len(outcomes)} not ok"
            if skipped:
                verdict += f" ({skipped} skipped)"
            self.say(f"app {app}: {verdict}")
