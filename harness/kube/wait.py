"""Waiting for the cluster to reach a state: one deadline around a list-then-watch loop.

``wait_for`` lists the objects once, tests the condition, then follows a watch from the
list's resourceVersion, re-testing on every event, until the condition holds or the
deadline passes. A watch that ends early (server timeout, 410 Gone) is followed by a fresh
list. Transient API errors (connection resets, 429, 5xx) are retried with tenacity until
the same deadline; anything else is raised at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from harness import stopping
from harness.errors import Gone, Stopped, WaitTimeout
from harness.kube.client import CLIENT_ERRORS, api_error, is_transient

Obj = dict[str, Any]
Condition = Callable[[list[Obj]], bool]
ListFn = Callable[..., Any]


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def describe(objects: list[Obj]) -> str:
    """A one-line account of objects' status for timeout messages."""
    if not objects:
        return "no matching objects"
    parts = []
    for obj in objects[:5]:
        status = obj.get("status") or {}
        conditions = ", ".join(
            f"{c.get('type')}={c.get('status')}"
            + (
                f" ({c.get('reason')}: {c.get('message')})"
                if c.get("status") != "True" and c.get("reason")
                else ""
            )
            for c in status.get("conditions") or []
        )
        phase = status.get("phase")
        counts = " ".join(
            f"{field}={status[field]}"
            for field in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas")
            if field in status
        )
        summary = " ".join(x for x in (f"phase={phase}" if phase else "", counts, conditions) if x)
        parts.append(
            f"{obj.get('kind', '')}/{obj.get('metadata', {}).get('name')}: {summary or 'no status'}"
        )
    more = f" (+{len(objects) - 5} more)" if len(objects) > 5 else ""
    return "; ".join(parts) + more


class _Observed:
    """The last state seen, kept across list/watch rounds for the timeout message."""

    def __init__(self) -> None:
        self.items: dict[str, Obj] = {}

    def values(self) -> list[Obj]:
        return list(self.items.values())


def wait_for(
    list_fn: ListFn,
    until: Condition,
    *,
    expected: str,
    timeout: float,
    observe: Callable[[list[Obj]], str] = describe,
    kind: str = "",
    probe: Callable[[], None] | None = None,
    probe_every: float = 1.0,
    **list_kwargs: Any,
) -> list[Obj]:
    """Wait until ``until(objects)`` holds for the objects ``list_fn(**list_kwargs)`` lists.

    ``list_fn`` is a typed-client list method (``CoreV1Api.list_namespaced_pod``, ...);
    objects are plain dicts as the API server sends them. Returns the objects that
    satisfied the condition; raises WaitTimeout with the last observed state.

    ``probe``, when given, is called every ``probe_every`` seconds while waiting (the
    watch is then followed in rounds that long): it raises to stop the wait at once, when
    something else shows that the condition cannot come to hold.
    """
    deadline = time.monotonic() + timeout
    observed = _Observed()
    # A thread working ahead (harness.stopping) looks at its stop event between rounds.
    stoppable = stopping.stop_event() is not None
    in_rounds = probe is not None or stoppable
    every = min(probe_every, stopping.CHECK_EVERY) if stoppable else probe_every

    def remaining() -> float:
        return deadline - time.monotonic()

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=0.1, max=2),
        stop=stop_after_delay(max(timeout, 0.0)),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                while remaining() > 0:
                    stopping.check()
                    if probe is not None:
                        probe()
                    window = (lambda: min(remaining(), every)) if in_rounds else remaining
                    result = _list_then_watch(list_fn, until, observed, window, kind, list_kwargs)
                    if result is not None:
                        return result
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise WaitTimeout(
            expected, f"{observe(observed.values())} (last error: {exc})", timeout
        ) from exc
    raise WaitTimeout(expected, observe(observed.values()), timeout)


def _list_then_watch(
    list_fn: ListFn,
    until: Condition,
    observed: _Observed,
    remaining: Callable[[], float],
    kind: str,
    list_kwargs: dict[str, Any],
) -> list[Obj] | None:
    response = list_fn(**list_kwargs, _preload_content=False, _request_timeout=max(remaining(), 10))
    body = json.loads(response.data)
    item_kind = kind or body.get("kind", "").removesuffix("List")
    observed.items = {}
    for obj in body.get("items", []):
        obj.setdefault("kind", item_kind)
        observed.items[object_key(obj)] = obj
    if until(observed.values()):
        return observed.values()
    version = body.get("metadata", {}).get("resourceVersion")
    stream = watch.Watch()
    try:
        for event in stream.stream(
            list_fn,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(int(remaining()), 1),
            _request_timeout=max(remaining(), 1) + 5,
            **list_kwargs,
        ):
            kind_of_event = event["type"]
            obj = event["raw_object"]
            if kind_of_event == "BOOKMARK":
                continue
            if kind_of_event == "ERROR":
                return None  # e.g. 410 Gone: list again
            obj.setdefault("kind", item_kind)
            if kind_of_event == "DELETED":
                observed.items.pop(object_key(obj), None)
            else:
                observed.items[object_key(obj)] = obj
            if until(observed.values()):
                return observed.values()
            if remaining() <= 0:
                return None
    except CLIENT_ERRORS as exc:
        error = api_error(exc, "watch")
        if isinstance(error, Gone):
            return None  # list again
        raise error from exc
    finally:
        stream.stop()
    return None


# -- conditions ------------------------------------------------------------------------------


def condition_is(obj: Obj, name: str, value: str = "True") -> bool:
    return any(
        c.get("type") == name and c.get("status") == value
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def all_have_condition(name: str, value: str = "True", *, at_least: int = 1) -> Condition:
    """Condition: at least ``at_least`` objects, and every one has condition ``name=value``."""

    def check(objects: list[Obj]) -> bool:
        return len(objects) >= at_least and all(condition_is(o, name, value) for o in objects)

    return check


def retry_until(
    attempt: Callable[[], None], *, timeout: float, retry_on: type[BaseException]
) -> None:
    """Call ``attempt`` until it returns, retrying when it raises ``retry_on``, for things
    that cannot be watched (an HTTP answer, a log line); the last ``retry_on`` error is
    raised when ``timeout`` passes. Backs off from 0.1 s to 1 s between attempts."""
    for try_ in Retrying(
        retry=retry_if_exception(
            lambda exc: isinstance(exc, retry_on) and not isinstance(exc, Stopped)
        ),
        wait=wait_exponential(multiplier=0.1, max=1),
        stop=stop_after_delay(timeout),
        reraise=True,
    ):
        with try_:
            stopping.check()
            attempt()
