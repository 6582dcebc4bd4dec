"""Alerts (``--notify URL``): one message per run that had failures, to each URL, sent by
the controller at the very end of the run (after the reports are written and the cluster
is released), built from the run record (``results.json``, already scrubbed of secrets).

A target's body is Slack's (``{"text": ..., "blocks": [...]}``) for
``https://hooks.slack.com/services/...`` and for any URL written ``slack+https://...``
(Mattermost, Rocket.Chat and others take Slack's body too); the generic JSON
(:data:`NOTIFICATION_SCHEMA`, in ``docs/alerts.md``) for any other, or when written
``json+https://...``.

Sending never fails the run nor holds it up: each target is sent to in a daemon thread,
retried (tenacity: no connection, no answer, 429 and 5xx; exponential back-off, a
``Retry-After`` honoured) with a timeout per attempt, and the run waits for all of them
for at most ``--notify-timeout``; what did not arrive is a warning in the terminal summary.
Ctrl-C ends the wait. A webhook's URL carries its token: it is shown as scheme and host
only (:attr:`Target.shown`), in messages, records and reprs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pytest

from harness.errors import HarnessError, TemporaryError
from harness.redact import MASK, url_origin
from harness.report.html import _clip, _list, _mapping

if TYPE_CHECKING:
    import urllib.request

    from tenacity import RetryCallState

    from harness.report.plugin import ReportPlugin

NOTIFICATION_SCHEMA = "helm-harness/notification/v1"
FORMATS = ("slack", "json")
BAD_OUTCOMES = ("failed", "error")
ATTEMPT_TIMEOUT = 10.0  # seconds one attempt may take (less when the bound is nearer)
MIN_ATTEMPT = 1.0  # seconds: no attempt starts with less time than this left
MAX_ATTEMPTS = 5
MAX_BACKOFF = 8.0  # seconds between attempts, at most (a Retry-After up to MAX_RETRY_AFTER)
MAX_RETRY_AFTER = 30.0
MAX_LISTED = 200  # failed apps (and tests) in a generic body; the rest are counted
MAX_SLACK_APPS = 20  # failed apps in a Slack message (Slack takes 50 blocks at most)
MAX_CAUSE = 300  # characters of a cause
WARNING = "helm-harness: warning: "
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Target:
    """Where an alert goes and in which body; its URL (token and all) is never shown."""

    format: str  # one of FORMATS
    url: str = field(repr=False)  # what is POSTed to, without the format prefix

    @property
    def shown(self) -> str:
        """``scheme://host[:port]``: the URL as messages show it."""
        return url_origin(self.url)

    def __str__(self) -> str:
        return self.shown


def parse_target(text: str) -> Target:
    """A ``--notify`` value: an http(s) URL, optionally with ``slack+`` or ``json+`` in
    front. ValueError (whose message never quotes the URL) for anything else."""
    scheme, sep, rest = text.strip().partition("://")
    prefix = None
    if "+" in scheme:
        prefix, _, scheme = scheme.partition("+")
        if prefix not in FORMATS:
            shown = f"{prefix}+" if prefix.isalnum() and len(prefix) <= 10 else "the prefix"
            raise ValueError(
                f"{shown} in front of an alert URL is no format: write slack+ or json+ "
                "(or nothing: Slack's body for hooks.slack.com/services URLs, JSON otherwise)"
            )
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError(
            "an alert URL is an http:// or https:// URL (with slack+ or json+ in front to "
            "choose the body)"
        )
    url = f"{scheme}://{rest}"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise ValueError(f"an alert URL for {scheme}:// has a malformed host or port") from None
    if not host:
        raise ValueError(f"an alert URL needs a host after {scheme}://")
    if prefix is None:
        slack = host == "hooks.slack.com" and parts.path.startswith("/services/")
        prefix = "slack" if slack else "json"
    return Target(prefix, url)


class NotifyError(HarnessError):
    """An alert did not reach its target: the target (shown as scheme and host) and why."""

    def __init__(self, target: Target, reason: str) -> None:
        self.target = target
        self.reason = _without_url(reason, target)
        super().__init__(f"{target.shown}: {self.reason}")


class NotifyUnavailable(NotifyError, TemporaryError):
    """No connection, no answer, or 429/5xx: worth another attempt."""

    def __init__(self, target: Target, reason: str, retry_after: float | None = None) -> None:
        super().__init__(target, reason)
        self.retry_after = retry_after


def _without_url(text: str, target: Target) -> str:
    parts = urlsplit(target.url)
    for secret in (target.url, parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, MASK)
    return text


# --- what is sent ----------------------------------------------------------------------------


def has_failures(results: Mapping[str, Any]) -> bool:
    """Whether a run record tells of something that failed: an item failed or errored, or
    an app did."""
    counts = _mapping(results.get("outcomes"))
    if any(int(counts.get(outcome) or 0) for outcome in BAD_OUTCOMES):
        return True
    return any(_mapping(app).get("status") == "failed" for app in _list(results.get("apps")))


def failed_apps(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per failed app: suite, app, owners, the first failing item (id and check kind), its
    cause in one line, the runbook (the item's, else the app's), the evidence bundle and
    every failing item's id."""
    rows = []
    for app in map(_mapping, _list(results.get("apps"))):
        if app.get("status") != "failed":
            continue
        failed = [
            item
            for item in map(_mapping, _list(app.get("items")))
            if item.get("outcome") in BAD_OUTCOMES
        ]
        first = failed[0] if failed else {}
        rows.append(
            {
                "suite": app.get("suite"),
                "app": app.get("app"),
                "owners": [str(owner) for owner in _list(app.get("owners"))],
                "item": first.get("id"),
                "check": first.get("check"),
                "cause": one_line(first.get("message") or app.get("install_error") or "failed"),
                "runbook": first.get("runbook") or app.get("runbook"),
                "bundle": app.get("bundle"),
                "failed_items": [item.get("id") for item in failed],
                "history": app.get("history"),
            }
        )
    return rows


def failed_tests(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plain Python tests (and collection errors) that failed: id and cause."""
    return [
        {"test": test.get("id"), "cause": one_line(test.get("message") or test.get("outcome"))}
        for test in map(_mapping, _list(results.get("tests")))
        if test.get("outcome") in BAD_OUTCOMES
    ]


def headline(results: Mapping[str, Any]) -> str:
    """``helm-harness run 1a2b3c4d: 2 failed, 1 error, 9 passed of 12 items``."""
    counts = _mapping(results.get("outcomes"))
    parts = [
        f"{counts.get(outcome)} {outcome}"
        for outcome in ("failed", "error", "passed", "skipped")
        if counts.get(outcome)
    ]
    total = counts.get("total", 0)
    return f"helm-harness run {results.get('run_id')}: {', '.join(parts)} of {total} items"


def ci_run_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The CI run this process belongs to (GitHub Actions, GitLab CI, Jenkins), if any."""
    env = os.environ if environ is None else environ
    github = [env.get(key) for key in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if all(github):
        return f"{github[0]}/{github[1]}/actions/runs/{github[2]}"
    return env.get("CI_JOB_URL") or env.get("BUILD_URL") or None


def report_location(report_dir: Path) -> dict[str, str | None]:
    return {
        "dir": str(report_dir),
        "html": str(report_dir / "report.html"),
        "results": str(report_dir / "results.json"),
        "run_url": ci_run_url(),
    }


def json_body(results: Mapping[str, Any], report_dir: Path) -> dict[str, Any]:
    """The generic body (docs/alerts.md)."""
    apps, tests = failed_apps(results), failed_tests(results)
    return {
        "schema": NOTIFICATION_SCHEMA,
        "text": headline(results),
        "run_id": results.get("run_id"),
        "outcome": "failed",
        "exit_status": results.get("exit_status"),
        "started": results.get("started"),
        "finished": results.get("finished"),
        "duration_s": results.get("duration_s"),
        "counts": dict(_mapping(results.get("outcomes"))),
        "cluster": results.get("cluster"),
        "report": report_location(report_dir),
        "failed_apps": apps[:MAX_LISTED],
        "failed_apps_omitted": max(0, len(apps) - MAX_LISTED),
        "failed_tests": tests[:MAX_LISTED],
        "failed_tests_omitted": max(0, len(tests) - MAX_LISTED),
    }


def slack_body(results: Mapping[str, Any], report_dir: Path) -> dict[str, Any]:
    """Slack's incoming-webhook body: ``text`` (the notification's fallback) and blocks: a
    header, a section per failed app, the failed tests, where the report is."""
    apps, tests = failed_apps(results), failed_tests(results)
    title = headline(results)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}}
    ]
    blocks += [_section(_slack_app(app)) for app in apps[:MAX_SLACK_APPS]]
    if len(apps) > MAX_SLACK_APPS:
        blocks.append(_context(f"and {len(apps) - MAX_SLACK_APPS} more failed apps"))
    if tests:
        lines = [f"`{_code(test['test'])}`: {_slack(test['cause'])}" for test in tests[:10]]
        more = f"\n(and {len(tests) - 10} more)" if len(tests) > 10 else ""
        blocks.append(_section("*failed tests*\n" + "\n".join(lines) + more))
    where = report_location(report_dir)
    location = f"report: `{_code(where['html'])}`"
    if where["run_url"]:
        location += f" · {_slack_link(str(where['run_url']), 'CI run')}"
    blocks.append(_context(location))
    return {"text": f"{_slack(title)} — {location}", "blocks": blocks}


BODIES: dict[str, Callable[[Mapping[str, Any], Path], dict[str, Any]]] = {
    "slack": slack_body,
    "json": json_body,
}


def _slack_app(app: Mapping[str, Any]) -> str:
    item = str(app.get("item") or "")
    where = f" at `{_code(item.split('::')[-1])}`" if item else ""
    since = f" ({_slack(app['history'])})" if app.get("history") else ""
    lines = [f"*{_slack(app.get('suite'))}/{_slack(app.get('app'))}* failed{where}{since}"]
    lines.append(f"> {_slack(app.get('cause'))}")
    facts = []
    if app.get("owners"):
        facts.append("owners: " + ", ".join(_slack(owner) for owner in app["owners"]))
    runbook = app.get("runbook")
    if runbook:
        facts.append(f"runbook: {_slack_link(str(runbook), str(runbook))}")
    if app.get("bundle"):
        facts.append(f"bundle: `{_code(app['bundle'])}`")
    if facts:
        lines.append(" · ".join(facts))
    return "\n".join(lines)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, 2900)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, 2900)}]}


def _slack(text: object) -> str:
    """Text as Slack's mrkdwn shows it literally: its three control characters escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: object) -> str:
    return _slack(str(text).replace("`", "'"))


def _slack_link(url: str, label: str) -> str:
    """A link for an http(s) URL, plain text for anything else (a runbook may be a note)."""
    if urlsplit(url).scheme not in ("http", "https"):
        return _slack(label)
    return f"<{_slack(quote(url, safe=':/?#[]@!$&()*+,;=%~-._'))}|{_slack(label)}>"


def one_line(text: object) -> str:
    """The first non-blank line of ``text``, without colour codes, at most MAX_CAUSE long."""
    lines = [line.strip() for line in _ANSI.sub("", str(text)).splitlines() if line.strip()]
    return _clip(lines[0] if lines else "", MAX_CAUSE)


# --- sending ---------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One target's alert: attempts so far, then the outcome (set once, by its thread)."""

    target: Target
    attempts: int = 0
    outcome: tuple[bool, NotifyError | None] | None = None  # (delivered, why not)


def send(
    targets: Sequence[Target], results: Mapping[str, Any], report_dir: Path, *, bound: float
) -> list[Delivery]:
    """Send the run's alert to every target at once and wait for them for at most
    ``bound`` seconds in all; a delivery whose ``outcome`` is still None got no answer in
    time. Ctrl-C ends the wait (KeyboardInterrupt), the threads are left to the exit."""
    bodies = {
        fmt: json.dumps(BODIES[fmt](results, report_dir)).encode()
        for fmt in {target.format for target in targets}
    }
    deadline = time.monotonic() + bound
    deliveries = [Delivery(target) for target in targets]
    threads = [
        threading.Thread(
            target=_deliver,
            args=(delivery, bodies[delivery.target.format], deadline),
            name=f"helm-harness-notify-{index}",
            daemon=True,
        )
        for index, delivery in enumerate(deliveries)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return deliveries


def _deliver(delivery: Delivery, body: bytes, deadline: float) -> None:
    from tenacity import Retrying, retry_if_exception_type

    def attempt() -> None:
        delivery.attempts += 1
        timeout = min(ATTEMPT_TIMEOUT, max(deadline - time.monotonic(), MIN_ATTEMPT / 2))
        post(delivery.target, body, timeout)

    def stop(state: RetryCallState) -> bool:
        """Enough attempts, or too little time left after the wait for another."""
        waiting = state.upcoming_sleep or 0.0
        late = time.monotonic() + waiting + MIN_ATTEMPT > deadline
        return state.attempt_number >= MAX_ATTEMPTS or late

    retrying = Retrying(
        retry=retry_if_exception_type(NotifyUnavailable),
        stop=stop,
        wait=_backoff,
        reraise=True,
    )
    try:
        retrying(attempt)
    except NotifyError as exc:
        delivery.outcome = (False, exc)
    except Exception as exc:  # a thread never ends in a traceback: say what it was
        delivery.outcome = (False, NotifyError(delivery.target, one_line(exc) or repr(exc)))
    else:
        delivery.outcome = (True, None)


def _backoff(state: RetryCallState) -> float:
    """0.5 s, 1 s, 2 s, ... up to MAX_BACKOFF; longer when the answer asked for it."""
    seconds = min(0.5 * 2.0 ** (state.attempt_number - 1), MAX_BACKOFF)
    failure = state.outcome.exception() if state.outcome is not None else None
    asked = failure.retry_after if isinstance(failure, NotifyUnavailable) else None
    return max(seconds, min(asked, MAX_RETRY_AFTER)) if asked else seconds


def post(target: Target, body: bytes, timeout: float) -> None:
    """POST ``body`` to the target once; NotifyUnavailable for what may pass (no
    connection, no answer, 429, 5xx), NotifyError for the rest (other 4xx, a redirect,
    which is not followed)."""
    import http.client
    import urllib.error
    import urllib.request

    from harness import __version__

    request = urllib.request.Request(
        target.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"helm-harness/{__version__}",
        },
    )
    try:
        with _opener().open(request, timeout=timeout) as answer:
            answer.read(65536)
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code} {exc.reason}".strip()
        if exc.code == 429 or exc.code >= 500:
            raise NotifyUnavailable(target, reason, _retry_after(exc.headers)) from exc
        if 300 <= exc.code < 400:
            reason += " (redirects are not followed: give the URL it moved to)"
        raise NotifyError(target, reason) from exc
    except urllib.error.URLError as exc:
        raise NotifyUnavailable(target, _network_reason(exc.reason, timeout)) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise NotifyUnavailable(target, _network_reason(exc, timeout)) from exc


def _network_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:.3g}s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return one_line(reason) or type(reason).__name__


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: not worth parsing for a few seconds' wait
        return None


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """urllib's opener (its proxy settings from the environment included) that follows no
    redirect: a 3xx is an HTTPError. urllib.request is imported here, on the first alert."""
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirects)


# --- the plugin ------------------------------------------------------------------------------


class Notifier:
    """Registered beside the report plugin, on the controller only, when ``--notify`` is
    given: sends the alert once everything else of the run's end is done, and says in
    the terminal summary where it went or why it did not."""

    def __init__(self, reports: ReportPlugin, targets: Sequence[Target], bound: float) -> None:
        self.reports = reports
        self.targets = tuple(targets)
        self.bound = bound
        self.lines: list[tuple[str, bool]] = []  # (line, a warning)

    # Innermost of the wrappers: after every plain sessionfinish (the reports, the clean-up)
    # and before the terminal reporter's, which shows the summary.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Any:
        result = yield
        self.lines = self.notify()
        return result

    def notify(self) -> list[tuple[str, bool]]:
        try:
            return self._notify()
        except KeyboardInterrupt:
            shown = ", ".join(target.shown for target in self.targets)
            return [(f"{WARNING}interrupted while sending the alert to {shown}", True)]

    def _notify(self) -> list[tuple[str, bool]]:
        record = next((p for p in self.reports.written if p.name == "results.json"), None)
        if record is None:
            if self.reports.error:
                return [(f"{WARNING}no alert sent: {self.reports.error}", True)]
            return []  # the run did not use the harness: nothing to tell
        try:
            results = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [(f"{WARNING}no alert sent: cannot read {record}: {exc}", True)]
        if not has_failures(results):
            return []
        with_history(results, self.reports.trends)
        deliveries = send(self.targets, results, record.parent, bound=self.bound)
        return [_said(delivery, self.bound) for delivery in deliveries]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line, warning in self.lines:
            terminalreporter.write_line(line, yellow=warning, bold=warning)


def with_history(results: Mapping[str, Any], trends: Mapping[tuple[str, str], Any]) -> None:
    """Each failed app of ``results`` gains ``history``: "new", "still failing" or "flaky",
    from the trends of the history store (:func:`harness.report.history.statuses`)."""
    for app in _list(results.get("apps")):
        if not isinstance(app, dict) or app.get("status") != "failed":
            continue
        trend = trends.get((str(app.get("suite")), str(app.get("app"))))
        if trend is not None:
            app["history"] = trend.status


def _said(delivery: Delivery, bound: float) -> tuple[str, bool]:
    """The terminal's line on one delivery, and whether it is a warning."""
    target, attempts = delivery.target, delivery.attempts
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if delivery.outcome is None:
        reason = f"no answer within --notify-timeout {bound:g}s"
    elif delivery.outcome[0]:
        return f"helm-harness: alert sent to {target.shown} ({target.format}, {tries})", False
    else:
        error = delivery.outcome[1]
        reason = error.reason if error is not None else "unknown"
    return f"{WARNING}alert to {target.shown} not sent: {reason} ({tries})", True


__all__ = [
    "NOTIFICATION_SCHEMA",
    "Delivery",
    "Notifier",
    "NotifyError",
    "NotifyUnavailable",
    "Target",
    "failed_apps",
    "has_failures",
    "json_body",
    "parse_target",
    "send",
    "slack_body",
]
