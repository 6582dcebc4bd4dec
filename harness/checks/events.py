"""``events``: no Warning events in the app's namespace, except those whose reason is in
``allow`` (exact, case-sensitive match: ``BackOff``, ``FailedMount``...).

Every Warning event in the namespace counts, whatever object it is about (hook and test
pods included); the namespace is fresh per run unless the suite names one, so these are the
app's. Events elsewhere (cluster-scoped objects, other namespaces) are not looked at. The
check reads the events once; ``noWarnings: false`` turns it off."""

from __future__ import annotations

from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError
from harness.kube.resources import ResourceType
from harness.kube.wait import Obj
from harness.suite.model import Check

EVENTS = ResourceType("", "v1", "Event", "events", namespaced=True)
SHOWN = 10  # events listed in a failure; the rest are counted


def run(ctx: AppContext, check: Check) -> None:
    no_warnings, allowed = _parse(check.spec)
    if not no_warnings:
        return
    events = ctx.lister_for(EVENTS)(namespace=ctx.namespace)["items"]
    warnings = [e for e in events if e.get("type") == "Warning" and e.get("reason") not in allowed]
    if not warnings:
        return
    warnings.sort(key=lambda e: (_last_seen(e), e["metadata"]["name"]), reverse=True)
    lines = [f"  {_describe(e)}" for e in warnings[:SHOWN]]
    if len(warnings) > SHOWN:
        lines.append(f"  +{len(warnings) - SHOWN} more")
    reasons = sorted({str(e.get("reason")) for e in warnings})
    except_text = f" other than {', '.join(sorted(allowed))}" if allowed else ""
    raise CheckFailed(
        f"no Warning events in namespace {ctx.namespace}{except_text}",
        f"{len(warnings)} Warning event{'s' if len(warnings) != 1 else ''} ({', '.join(reasons)})",
        details="\n".join(lines),
    )


def _parse(spec: dict[str, Any]) -> tuple[bool, frozenset[str]]:
    unknown = set(spec) - {"noWarnings", "allow"}
    if unknown:
        raise UsageError(
            f"events: unknown key(s) {', '.join(sorted(unknown))} (allowed: noWarnings, allow)"
        )
    no_warnings = spec.get("noWarnings", True)
    if not isinstance(no_warnings, bool):
        raise UsageError(f"events.noWarnings must be true or false, not {no_warnings!r}")
    allow = spec.get("allow") or []
    if not isinstance(allow, list) or not all(isinstance(r, str) and r for r in allow):
        raise UsageError(f"events.allow must be a list of event reasons, not {allow!r}")
    return no_warnings, frozenset(allow)


def _last_seen(event: Obj) -> str:
    series = event.get("series") or {}
    return str(
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _describe(event: Obj) -> str:
    """``BackOff Pod/web-1 (x5): Back-off restarting failed container``."""
    about = event.get("involvedObject") or {}
    count = (event.get("series") or {}).get("count") or event.get("count") or 1
    message = " ".join(str(event.get("message") or "").split())
    return f"{event.get('reason')} {about.get('kind')}/{about.get('name')} (x{count}): {message}"
