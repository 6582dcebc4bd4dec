"""Work done ahead, in threads, stops when the run stops.

Apps are installed and checked ahead of their items in threads (:mod:`harness.plugin.prefetch`).
When the run ends early (a failure under ``-x``, Ctrl-C, SIGTERM) that work must not keep
the run waiting for a readiness timeout or a ``helm test`` of minutes. A thread that works
ahead names its stop event once (:func:`stop_with`); the long waits check it:
:func:`harness.kube.wait.wait_for` between rounds of at most a second, and
:class:`harness.helm.client.Helm` while Helm runs (Helm is then terminated). Each raises
:class:`~harness.errors.Stopped`. The event is per thread (a context variable): the main
thread's own waits and the clean-up at the end never see it.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

from harness.errors import Stopped

# How often a wait that can be stopped looks at its event, at most (seconds).
CHECK_EVERY = 1.0

_event: ContextVar[threading.Event | None] = ContextVar("harness_stop_event", default=None)


def stop_with(event: threading.Event | None) -> None:
    """From now on, this thread's waits stop when ``event`` is set."""
    _event.set(event)


def stop_event() -> threading.Event | None:
    """This thread's stop event, if it works ahead."""
    return _event.get()


def check() -> None:
    """Raise :class:`Stopped` when this thread's work is to stop."""
    event = _event.get()
    if event is not None and event.is_set():
        raise Stopped("stopped: the run is ending")


__all__ = ["CHECK_EVERY", "check", "stop_event", "stop_with"]
