"""Apps installed and checked ahead of their items, so that the cluster brings several up
at once.

pytest runs items one after another; an app's install item would start its Helm install
only when the items before it are done, and its ``ready`` would then wait for pods that
could have been starting all along, its ``helm test`` for test pods that could have run.
While items run, the :class:`Prefetcher` keeps the next ``--max-parallel N`` apps of the
run (after ``-k``/``--lf``/``--shard`` selection) under way in threads of their own: each
is installed, then its selected checks run in order, and, when it ran them all, its metric
snapshot is taken. Items keep their order, ids and reports: an app's install item finds
its install done (or waits for the one under way), a check item finds its check's outcome
(or waits for it), and reports it, a failure or a skip included, as if it had run it. A
check that fails ends the work ahead for that app: its later checks run in their items, as
without work ahead. The user's ``python`` checks always run in their items (pytest's main
thread). ``--max-parallel 1`` does everything in the items, as before.

Not done ahead: apps that render a cluster-scoped object another app of the run renders
(they run one after another); the checks of upgrade runs (their phases are steps in item
order). Under xdist each worker works ahead on the apps it was given (the scheduler keeps
several queued on it and writes the controller's clash plan for it: :mod:`.xdist`). An
install ahead that meets an object another release holds gives way (its own install item
installs it in turn). At the end of the run, or when it stops early (``-x``, Ctrl-C),
nothing more is handed out and the work under way stops within about a second
(:mod:`harness.stopping`: waits raise, Helm is terminated); what was made is removed with
the rest of the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness import stopping
from harness.checks import KINDS

if TYPE_CHECKING:
    from harness.deploy.deployer import AppRun, Deployer
    from harness.suite.model import App, Check, Suite

log = logging.getLogger("harness.prefetch")
AppKey = tuple[str, str]  # (suite file, app name)


@dataclass(frozen=True)
class Planned:
    """An app of the run as the items want it: an upgrade run or not, whether it may go
    ahead at all, and its selected checks in item order."""

    suite: Suite
    app: App
    upgrade: bool
    eligible: bool
    checks: tuple[Check, ...] = ()

    @property
    def key(self) -> AppKey:
        return (str(self.suite.path), self.app.name)


Upcoming = list[Planned]


@dataclass(frozen=True)
class Outcome:
    """A check run ahead of its item: how long it took, and what it raised (a failure or
    pytest's skip), for the item to report."""

    seconds: float
    raised: BaseException | None = None


def run_and_time(run: AppRun, check: Check) -> None:
    """Run ``check`` on the installed ``run``, with its catch and finally steps; a passing
    ``ready`` records the app's time to ready (from the start of its install)."""
    from harness.checks.steps import run_with_steps

    assert run.ctx is not None
    run_with_steps(run.ctx, check)
    if check.kind == "ready" and "ready" not in run.timings:
        run.timings["ready"] = time.monotonic() - run.started


class Prefetcher:
    """``upcoming(suite, app)`` says which apps come from ``app`` on in this process, in
    order, ``app`` first. ``checked(run)`` is called (in a thread) for an app whose checks
    all ran ahead: its metric snapshot."""

    def __init__(
        self,
        deployer: Deployer,
        upcoming: Callable[[Suite, App], Upcoming],
        *,
        at_once: int,
        checked: Callable[[AppRun], None] | None = None,
    ) -> None:
        self.deployer = deployer
        self.upcoming = upcoming
        self.at_once = at_once
        self.checked = checked
        self.submitted: dict[AppKey, Future[None]] = {}
        self.pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="hh-ahead")
        # Metric snapshots wait for figures newer than the pods' start: on threads of their
        # own, so that an app waiting for its figures never holds up the next app's install.
        self.snapshot_pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="hh-snap")
        self.lock = threading.RLock()  # a done callback may run in the thread that submits
        self.stopped = False
        self.stop_event = threading.Event()
        # the outcome of each check run ahead (its seconds, or what it raised), and the
        # checks whose items came first and run them themselves
        self.outcomes: dict[tuple[AppKey, str], Future[Outcome]] = {}
        self.taken: set[tuple[AppKey, str]] = set()
        self.snapshots: dict[AppKey, Future[None]] = {}
        self.position: tuple[Suite, App] | None = None  # the app whose items run now

    def reached(self, suite: Suite, app: App) -> None:
        """The items of ``app`` are running (or its teardown has begun, for the next app):
        keep the apps from it on under way."""
        with self.lock:
            self.position = (suite, app)
            self._refill()

    def _refill(self) -> None:
        """Keep ``at_once`` apps under way, in order, from the app whose items run now:
        an app whose work is done (waiting for its items, its metric figures or its
        removal) makes room for the next one, but no app starts more than ``2 * at_once``
        apps after the items' position, so that a slow item does not leave half the run
        installed at once. Called with the lock held."""
        if self.stopped or self.position is None:
            return
        under_way = 0
        for planned in self.upcoming(*self.position)[: 2 * self.at_once]:
            if under_way >= self.at_once:
                return
            future = self.submitted.get(planned.key)
            if future is None and planned.eligible:
                future = self.submitted[planned.key] = self.pool.submit(self._work, planned)
                future.add_done_callback(self._done)
            if future is not None and not future.done():
                under_way += 1

    def _done(self, future: Future[None]) -> None:
        with self.lock:
            self._refill()

    def outcome(self, suite: Suite, app: App, check: Check) -> Future[Outcome] | None:
        """For ``check``'s item: the future of its run ahead (its :class:`Outcome`);
        ``None``: the item runs it, and from now on nothing runs ahead for it."""
        slot = ((str(suite.path), app.name), check.id)
        with self.lock:
            future = self.outcomes.get(slot)
            if future is None:
                self.taken.add(slot)
            return future

    def snapshot_done(self, run: AppRun) -> None:
        """Wait until the work ahead for ``run``'s app is over, its metric snapshot
        included (called from the app's teardown; the work never waits for an item)."""
        with self.lock:
            future = self.snapshots.get((str(run.suite.path), run.app.name))
        if future is not None:
            future.result()

    def _claim(self, key: AppKey, check: Check) -> Future[Outcome] | None:
        with self.lock:
            slot = (key, check.id)
            if self.stopped or slot in self.taken:
                return None
            future: Future[Outcome] = Future()
            self.outcomes[slot] = future
            return future

    def _work(self, planned: Planned) -> None:
        stopping.stop_with(self.stop_event)
        try:
            if self.stopped:
                return
            # The install's outcome, a failure included, is kept on the app's run: its
            # install item reports it as if it had installed the app itself.
            run = self.deployer.ensure_installed_quietly(
                planned.suite, planned.app, upgrade=planned.upgrade, ahead=True
            )
            if planned.upgrade or run.ctx is None or run.error is not None:
                return
            # Registered before the app's last check reports: its teardown, which would
            # take the snapshot itself, waits for this one.
            snapshot: Future[None] = Future()
            with self.lock:
                self.snapshots[planned.key] = snapshot
            try:
                if self._check(run, planned) and planned.checks and self.checked is not None:
                    self.snapshot_pool.submit(self._snapshot, run, snapshot)
                    return
            except BaseException:
                snapshot.set_result(None)
                raise
            snapshot.set_result(None)
        finally:
            stopping.stop_with(None)

    def _snapshot(self, run: AppRun, done: Future[None]) -> None:
        stopping.stop_with(self.stop_event)
        try:
            if self.checked is not None and not self.stopped:
                self.checked(run)
        finally:
            done.set_result(None)
            stopping.stop_with(None)

    def _check(self, run: AppRun, planned: Planned) -> bool:
        """Run the app's checks in order while they may go ahead and pass (or skip); whether
        all of them ran."""
        for check in planned.checks:
            if not KINDS[check.kind].ahead:
                return False
            future = self._claim(planned.key, check)
            if future is None:
                return False
            started = time.monotonic()
            try:
                run_and_time(run, check)
            except BaseException as exc:  # pytest's skip is one: the item raises it again
                future.set_result(Outcome(time.monotonic() - started, exc))
                if not _is_skip(exc):
                    return False
            else:
                future.set_result(Outcome(time.monotonic() - started))
        return True

    def stop(self) -> None:
        """Nothing more ahead; the work under way stops (its waits and Helm within about a
        second) and is waited for."""
        with self.lock:
            self.stopped = True
            self.stop_event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.snapshot_pool.shutdown(wait=True, cancel_futures=True)
        with self.lock:  # a snapshot cancelled before it began: nobody waits for it
            for future in self.snapshots.values():
                if not future.done():
                    future.set_result(None)


def _is_skip(exc: BaseException) -> bool:
    import pytest

    return isinstance(exc, pytest.skip.Exception)


def in_order(apps: Upcoming) -> Callable[[Suite, App], Upcoming]:
    """An app and what comes after it in a run's list of apps (one process, no xdist)."""
    index = {planned.key: i for i, planned in enumerate(apps)}

    def from_here(suite: Suite, app: App) -> Upcoming:
        position = index.get((str(suite.path), app.name))
        return [] if position is None else apps[position:]

    return from_here
