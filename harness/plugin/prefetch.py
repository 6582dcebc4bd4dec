"""Apps installed ahead of their items, so that the cluster brings several up at once.

pytest runs items one after another; an app's install item would start its Helm install
only when the items before it are done, and its ``ready`` would then wait for pods that
could have been starting all along. While items run, the :class:`Prefetcher` keeps the
next ``--max-parallel N`` apps of the run (after ``-k``/``--lf``/``--shard`` selection)
installed, or installing, in threads of their own: their pods start while earlier apps
are checked. Items keep their order, ids and reports; an app's install item then finds
its install done (or waits for the one under way) and its result, a failure included, is
the same as if the item had done it. ``--max-parallel 1`` installs each app when its item
runs, as before.

Not installed ahead: apps that render a cluster-scoped object another app of the run
renders (they run one after another), and anything under xdist: a worker knows neither
which apps it will be given next for sure nor which of them clash (the controller's clash
check keeps such pairs on one worker, in order; installed ahead, the later app could take
the object first). An install ahead that meets an object another release holds gives way
(its own install item installs it in turn). A failing run, ``-x`` or Ctrl-C stops handing
out installs; those under way finish (Helm installs without waiting) and are removed with
the rest of the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.deploy.deployer import Deployer
    from harness.suite.model import App, Suite

log = logging.getLogger("harness.prefetch")
AppKey = tuple[str, str]  # (suite file, app name)


Upcoming = list[tuple["Suite", "App", bool, bool]]  # (suite, app, upgrade run, may go ahead)


class Prefetcher:
    """``upcoming(suite, app)`` says which apps come after ``app`` in this process, in
    order: the run's list without xdist; an xdist worker's own queue of items."""

    def __init__(
        self, deployer: Deployer, upcoming: Callable[[Suite, App], Upcoming], *, ahead: int
    ) -> None:
        self.deployer = deployer
        self.upcoming = upcoming
        self.ahead = ahead
        self.submitted: dict[AppKey, Future[None]] = {}
        self.pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="hh-install")
        self.lock = threading.Lock()
        self.stopped = False

    def reached(self, suite: Suite, app: App) -> None:
        """The items of ``app`` are running: keep the next ``ahead`` apps under way."""
        with self.lock:
            if self.stopped:
                return
            for later_suite, later_app, upgrade, eligible in self.upcoming(suite, app)[
                : self.ahead
            ]:
                key = (str(later_suite.path), later_app.name)
                if eligible and key not in self.submitted:
                    self.submitted[key] = self.pool.submit(
                        self._install, later_suite, later_app, upgrade
                    )

    def _install(self, suite: Suite, app: App, upgrade: bool) -> None:
        if self.stopped:
            return
        # The outcome, a failure included, is kept on the app's run: its install item
        # reports it as if it had installed the app itself.
        self.deployer.ensure_installed_quietly(suite, app, upgrade=upgrade, ahead=True)

    def stop(self) -> None:
        """No more installs ahead; wait for those under way (bounded by Helm's own
        timeout; Helm installs without waiting for readiness)."""
        with self.lock:
            self.stopped = True
        self.pool.shutdown(wait=True, cancel_futures=True)


def in_order(apps: Upcoming) -> Callable[[Suite, App], Upcoming]:
    """What comes after an app in a run's list of apps (one process, no xdist)."""
    index = {(str(s.path), a.name): i for i, (s, a, *_) in enumerate(apps)}

    def after(suite: Suite, app: App) -> Upcoming:
        position = index.get((str(suite.path), app.name))
        return [] if position is None else apps[position + 1 :]

    return after
