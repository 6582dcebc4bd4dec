"""``report.md``: the run in Markdown, for a CI job summary (``cat report.md >>
$GITHUB_STEP_SUMMARY``) or any page that shows Markdown, rendered from a run record
(``results.json``) alone, so a live run, ``helm-harness report DIR`` and merged shards
give the same.

A headline (counts, cluster, duration, upgrade run or not), a table of the apps (failed
first) and the failures: each failed item's one-line cause, owners, runbook and evidence
bundle. Everything from the record is text, never markup: names are backslash-escaped,
causes and paths are code spans, table cells have their pipes escaped and their line
breaks made ``<br>``. The whole stays under GitHub's 1 MiB job summary limit: the
failures and app rows shown are capped (the rest counted), and halved again while the
text is too large.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from harness.report.html import (
    BAD_OUTCOMES,
    _clip,
    _list,
    _mapping,
    _number,
    _short_chart,
    ready_failed,
    time_to_ready,
    upgrade_versions,
)

SIZE_LIMIT = 1_000_000  # bytes; GitHub takes at most 1 MiB per step summary
MAX_FAILURES = 50
MAX_APPS = 1000
CELL_CHARS = 200
CAUSE_CHARS = 500

MARKS = {"passed": "✅", "failed": "❌", "error": "❌", "skipped": "⏭️"}

# Markdown's inline punctuation, and an underscore that could open or close emphasis
_ACTIVE = re.compile(r"[\\`*\[\]<>|~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_AUTOLINK_SAFE = re.compile(r"[^\s<>]+")


def render(
    results: Mapping[str, Any],
    *,
    max_failures: int = MAX_FAILURES,
    max_apps: int = MAX_APPS,
    size_limit: int = SIZE_LIMIT,
) -> str:
    """The Markdown summary of a run record, at most ``size_limit`` bytes."""
    apps = [app for app in _list(results.get("apps")) if isinstance(app, Mapping)]
    tests = [test for test in _list(results.get("tests")) if isinstance(test, Mapping)]
    failures = _failures(apps, tests)
    while True:
        text = "\n".join(
            [
                *_headline(results, apps),
                *_app_table(apps, max_apps),
                *_failure_section(failures, max_failures),
                *_expected_section(apps, max_failures),
            ]
        )
        if len(text.encode("utf-8")) <= size_limit or (max_apps == 0 and max_failures == 0):
            return text
        max_apps, max_failures = max_apps // 2, max_failures // 2


# --- text ------------------------------------------------------------------------------------


def _text(value: object, *, newline: str = " ") -> str:
    """Plain text in Markdown: its markup characters escaped, on one line."""
    escaped = _ACTIVE.sub(lambda m: "\\" + m.group(), str(value))
    return newline.join(line.strip() for line in escaped.splitlines() if line.strip())


def _cell(value: object) -> str:
    """A table cell: text, its line breaks as ``<br>``."""
    if value is None or value == "":
        return ""
    return _text(_clip(str(value), CELL_CHARS), newline="<br>")


def _code(value: object, *, in_table: bool = False) -> str:
    """A code span of ``value`` on one line (a fence longer than any backticks in it)."""
    text = " ".join(str(value).split())
    if not text:
        return ""
    if in_table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _link(url: object) -> str:
    """An http(s) URL as an autolink; anything else as text."""
    text = str(url).strip()
    if urlsplit(text).scheme in ("http", "https") and _AUTOLINK_SAFE.fullmatch(text):
        return f"<{text}>"
    return _text(text)


def _duration(seconds: object) -> str:
    number = _number(seconds)
    if number is None:
        return ""
    if number < 60:
        return f"{number:.1f} s"
    minutes, secs = divmod(round(number), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- headline --------------------------------------------------------------------------------


def _headline(results: Mapping[str, Any], apps: list[Mapping[str, Any]]) -> list[str]:
    counts = _mapping(results.get("outcomes"))
    total = int(counts.get("total") or 0)
    bad = sum(int(counts.get(outcome) or 0) for outcome in BAD_OUTCOMES)
    parts = [
        f"{int(counts.get(outcome) or 0)} {outcome}"
        for outcome in ("failed", "error", "passed", "skipped", "xfailed", "xpassed")
        if counts.get(outcome) or outcome in ("failed", "passed")
    ]
    if not total:
        title = "helm-harness: no items ran"
    elif not bad and int(counts.get("passed") or 0) == total:
        title = f"✅ helm-harness: all {_plural(total, 'item')} passed"
    else:
        mark = "❌" if bad else "✅"
        title = f"{mark} helm-harness: {', '.join(parts)} of {_plural(total, 'item')}"
    lines = [f"## {title}", ""]
    lines.append(f"- cluster: {_cluster(results)}")
    started = f", started {_text(results['started'])}" if results.get("started") else ""
    lines.append(f"- duration: {_duration(results.get('duration_s')) or 'unknown'}{started}")
    upgraded = sum(1 for app in apps if _mapping(app.get("upgrade")))
    lines.append(
        f"- upgrade run: yes, {_plural(upgraded, 'app')} upgraded"
        if upgraded
        else "- upgrade run: no"
    )
    run = f"- run: {_code(results.get('run_id') or '?')}"
    shards = _list(results.get("shards"))
    if shards:
        run += f", merged from {_plural(len(shards), 'shard')}"
    lines.append(run)
    if results.get("complete") is False:
        lines.append("- incomplete: written while the run went (it did not finish)")
    return [*lines, ""]


def _cluster(results: Mapping[str, Any]) -> str:
    cluster = _mapping(results.get("cluster"))
    parts = []
    if cluster:
        where = _text(cluster.get("provider") or "?")
        if cluster.get("name"):
            where += f" {_code(cluster['name'])}"
        parts.append(where)
        parts.append(f"Kubernetes {_text(cluster.get('kubernetes_version') or 'unknown')}")
    else:
        parts.append("none recorded")
    if results.get("helm_version"):
        parts.append(f"Helm {_text(results['helm_version'])}")
    return ", ".join(parts)


# --- apps ------------------------------------------------------------------------------------


def _app_table(apps: list[Mapping[str, Any]], max_apps: int) -> list[str]:
    if not apps:
        return []
    # Failed apps first: in a run of hundreds of apps they are what a reader looks for.
    ordered = sorted(apps, key=lambda app: app.get("status") != "failed")
    lines = [
        "### Apps",
        "",
        "| suite | app | chart | version | outcome | time to ready | duration |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_app_row(app) for app in ordered[:max_apps]]
    hidden = ordered[max_apps:]
    if hidden:
        failed = sum(1 for app in hidden if app.get("status") == "failed")
        lines += [
            "",
            f"… and {_plural(len(hidden), 'more app')} ({failed} failed) not shown: "
            "see report.html or results.json.",
        ]
    return [*lines, ""]


def _app_row(app: Mapping[str, Any]) -> str:
    chart, version = _chart_and_version(app)
    status = str(app.get("status") or "passed")
    items = [item for item in _list(app.get("items")) if isinstance(item, Mapping)]
    bad = sum(1 for item in items if item.get("outcome") in BAD_OUTCOMES)
    outcome = f"{MARKS.get(status, '')} {status}".strip()
    if bad:
        outcome += f" ({bad} of {_plural(len(items), 'item')})"
    ready = "" if ready_failed(app) else _duration(time_to_ready(app))
    spent = sum(_number(item.get("duration_s")) or 0.0 for item in items)
    cells = [
        _cell(app.get("suite")),
        _cell(app.get("app")),
        chart,
        version,
        _cell(outcome),
        ready,
        _duration(spent) if items else "",
    ]
    return "| " + " | ".join(cells) + " |"


def _chart_and_version(app: Mapping[str, Any]) -> tuple[str, str]:
    """The chart and version cells: ``from → to`` on an upgrade run."""
    chart = _short_chart(app.get("chart"))
    upgrade = _mapping(app.get("upgrade"))
    versions = upgrade_versions(app)
    if versions is None:
        return _cell(chart), _cell(app.get("chart_version"))
    source = _mapping(upgrade.get("from"))
    target = _mapping(upgrade.get("to"))
    old_chart = _short_chart(source.get("chart")) if source.get("chart") else chart
    new_chart = _short_chart(target.get("chart")) if target.get("chart") else chart
    old, new = versions
    charts = (
        old_chart if old_chart == new_chart else f"{_clip(old_chart, 90)} → {_clip(new_chart, 90)}"
    )
    return _cell(charts), _cell(f"{old} → {new}")


# --- failures --------------------------------------------------------------------------------


def _failures(apps: list[Mapping[str, Any]], tests: list[Mapping[str, Any]]) -> list[list[str]]:
    """Each failure as its lines (a list item and its sub-items)."""
    entries: list[list[str]] = []
    for app in apps:
        label = f"**{_text(app.get('suite'))} / {_text(app.get('app'))}**"
        failed = [
            item
            for item in _list(app.get("items"))
            if isinstance(item, Mapping) and item.get("outcome") in BAD_OUTCOMES
        ]
        if not failed and app.get("install_error"):
            entry = [
                f"- ❌ {label} · install (failed)",
                f"  - cause: {_cause(app.get('install_error'))}",
            ]
            entries.append(entry + _context(app, {}))
        for item in failed:
            name = _code(item.get("name") or item.get("id") or "?")
            entry = [
                f"- ❌ {label} · {name} ({_text(item.get('outcome'))})",
                f"  - cause: {_cause(item.get('message') or item.get('details'))}",
            ]
            entries.append(entry + _context(app, item))
    for test in tests:
        if test.get("outcome") in BAD_OUTCOMES:
            entries.append(
                [
                    f"- ❌ {_code(test.get('id') or test.get('name') or '?')}"
                    f" ({_text(test.get('outcome'))})",
                    f"  - cause: {_cause(test.get('message') or test.get('details'))}",
                ]
            )
    return entries


def _cause(text: object) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return _code(_clip(lines[0], CAUSE_CHARS)) if lines else "(no message)"


def _context(app: Mapping[str, Any], item: Mapping[str, Any]) -> list[str]:
    """Owners, runbook and bundle of a failed item (the item's own, else its app's)."""
    lines = []
    owners = _owners(item.get("owners")) or _owners(app.get("owners"))
    if owners:
        lines.append(f"  - owners: {', '.join(_text(owner) for owner in owners)}")
    runbook = item.get("runbook") or app.get("runbook")
    if runbook:
        lines.append(f"  - runbook: {_link(runbook)}")
    bundle = item.get("bundle") or app.get("bundle")
    if bundle:
        first = f"{str(bundle).rstrip('/')}/failure.txt"
        start = f" (start with {_code(first)})" if first in _list(app.get("bundle_files")) else ""
        lines.append(f"  - bundle: {_code(bundle)}{start}")
    return lines


def _owners(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list | tuple):
        return [str(owner) for owner in value if str(owner).strip()]
    return []


def _failure_section(failures: list[list[str]], max_failures: int) -> list[str]:
    if not failures:
        return []
    lines = ["### Failures", ""]
    for entry in failures[:max_failures]:
        lines += entry
    hidden = len(failures) - max_failures
    if hidden > 0:
        lines += ["", f"… and {_plural(hidden, 'more failure')} not shown: see report.html."]
    return [*lines, ""]


def _expected_section(apps: list[Mapping[str, Any]], max_items: int) -> list[str]:
    """Items expected to fail (``xfail``): those that did, and those that passed after all."""
    entries = [
        f"- {_text(app.get('suite'))} / {_text(app.get('app'))} · "
        f"{_code(item.get('name') or item.get('id') or '?')} ({_text(item.get('outcome'))}): "
        f"{_text(item.get('xfail') or item.get('message') or '')}"
        for app in apps
        for item in _list(app.get("items"))
        if isinstance(item, Mapping) and item.get("outcome") in ("xfailed", "xpassed")
    ]
    if not entries:
        return []
    lines = ["### Expected failures", "", *entries[:max_items]]
    if len(entries) > max_items:
        lines += ["", f"… and {len(entries) - max_items} more not shown: see report.html."]
    return [*lines, ""]


__all__ = ["MAX_FAILURES", "SIZE_LIMIT", "render"]
