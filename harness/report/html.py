"""``report.html``: one self-contained page rendered from a run record (``results.json``).

Inline CSS and inline SVG only: no scripts, fonts or images from anywhere, so the page
opens from a CI artifact or a mail attachment as it is. Every text from the record is
HTML-escaped; links are made only for http(s) runbooks and for bundle files inside the
report dir (relative paths). Standard library only, so ``helm-harness report DIR`` stays
light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from harness.errors import UsageError

BAD_OUTCOMES = ("failed", "error")
COLORS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "error": "#9a3412",
    "skipped": "#6e7781",
    "xfailed": "#8c959f",
    "xpassed": "#bf8700",
}
SERIES = ("#0969da", "#8250df")
MIB = 1024 * 1024

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}
h3{font-size:15px;margin:16px 0 6px}
.muted{color:#59636e}.mono,code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
header{display:flex;justify-content:space-between;align-items:flex-start;gap:16px;flex-wrap:wrap}
.badge{display:inline-block;padding:6px 14px;border-radius:6px;color:#fff;font-weight:600;
font-size:16px;letter-spacing:.03em}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:16px}
.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:10px 14px;min-width:96px}
.card b{display:block;font-size:22px}
.card span{color:#59636e;font-size:12px;text-transform:uppercase}
.panel{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:14px;margin-top:12px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #d1d9e0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600;font-size:12px;text-transform:uppercase;color:#59636e}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.chip{display:inline-block;margin:1px 3px 1px 0;padding:1px 8px;border-radius:10px;color:#fff;
font-size:12px;white-space:nowrap}
.charts{display:flex;gap:16px;flex-wrap:wrap}.charts .panel{flex:1 1 520px}
.failure{border-left:4px solid #cf222e}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #d1d9e0;
border-radius:6px;padding:8px;margin:6px 0;font-size:12px}
ul.files{columns:2;margin:6px 0;padding-left:18px}
a{color:#0969da}
footer{margin:32px 0 8px;color:#59636e;font-size:12px}
"""


def render(results: Mapping[str, Any]) -> str:
    """The whole page for a run record."""
    apps = [app for app in _list(results.get("apps")) if isinstance(app, Mapping)]
    tests = [test for test in _list(results.get("tests")) if isinstance(test, Mapping)]
    counts = _mapping(results.get("outcomes"))
    bad = sum(int(counts.get(outcome) or 0) for outcome in BAD_OUTCOMES)
    status = "failed" if bad else "passed"
    title = f"helm-harness report {results.get('run_id') or ''}".strip()
    body = [
        _header(results, status),
        _summary(results, counts),
        _apps_table(apps),
        _charts(apps),
        _failures(apps, tests),
        _tests_table(tests),
        _footer(results),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>\n{''.join(body)}</main></body></html>\n"
    )


def rerender(folder: Path) -> Path:
    """Render ``folder/report.html`` again from ``folder/results.json``; UsageError when
    there is no results.json or it is not a run record."""
    source = folder / "results.json"
    if not source.is_file():
        raise UsageError(f"{folder}: no results.json here (is it a helm-harness report dir?)")
    try:
        results = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{source}: not readable JSON: {exc}") from exc
    problem = _not_a_record(results)
    if problem:
        raise UsageError(f"{source}: not a helm-harness run record: {problem}")
    try:
        page = render(results)
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{source}: malformed run record: {exc}") from exc
    target = folder / "report.html"
    partial = folder / ".report.html.partial"
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, target)
    return target


def _not_a_record(results: Any) -> str:
    if not isinstance(results, dict):
        return f"expected a JSON object, found {type(results).__name__}"
    schema = results.get("schema")
    if not isinstance(schema, str) or not schema.startswith("helm-harness/results/"):
        return f"'schema' is {schema!r}, expected 'helm-harness/results/v1'"
    for key, kind in (("outcomes", dict), ("apps", list), ("tests", list)):
        if not isinstance(results.get(key), kind):
            return f"'{key}' is missing or not a{'n object' if kind is dict else ' list'}"
    return ""


# --- helpers --------------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _seconds(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.2f} s"


def _chip(text: str, outcome: str, title: str = "") -> str:
    color = COLORS.get(outcome, "#6e7781")
    hint = f' title="{_e(title)}"' if title else ""
    return f'<span class="chip {_e(outcome)}" style="background:{color}"{hint}>{_e(text)}</span>'


def _runbook_link(url: object) -> str:
    if not url:
        return ""
    text = str(url)
    if urlsplit(text).scheme in ("http", "https"):
        return f'<a href="{_e(text)}" rel="noopener">{_e(text)}</a>'
    return f'<span class="mono">{_e(text)}</span>'


def _file_link(path: object) -> str:
    """A link to a file in the report dir; plain text for anything else."""
    text = str(path)
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts or urlsplit(text).scheme:
        return f'<span class="mono">{_e(text)}</span>'
    return f'<a class="mono" href="{_e(quote(text))}">{_e(text)}</a>'


def _short_chart(chart: object) -> str:
    text = str(chart or "")
    if "://" in text or not text.startswith("/"):
        return text
    return PurePosixPath(text).name or text


def figure(metrics: Any, names: Sequence[str]) -> float | None:
    """A number from a metric snapshot: the least nested key among ``names``."""
    best: tuple[int, float] | None = None

    def walk(node: Any, depth: int) -> None:
        nonlocal best
        if not isinstance(node, Mapping) or depth > 3:
            return
        for key, value in node.items():
            number = _number(value)
            if number is not None and key in names and (best is None or depth < best[0]):
                best = (depth, number)
            elif isinstance(value, Mapping) and key not in ("pods", "containers"):
                walk(value, depth + 1)

    walk(metrics, 0)
    return None if best is None else best[1]


def cpu_millicores(metrics: Any) -> float | None:
    return figure(metrics, ("cpu_millicores", "cpu_m"))


def memory_mib(metrics: Any) -> float | None:
    mib = figure(metrics, ("memory_mib",))
    if mib is not None:
        return mib
    raw = figure(metrics, ("memory_bytes",))
    return None if raw is None else raw / MIB


def time_to_ready(app: Mapping[str, Any]) -> float | None:
    ready = _number(_mapping(app.get("timings")).get("ready"))
    return ready if ready is not None else figure(app.get("metrics"), ("time_to_ready_s",))


def _app_label(app: Mapping[str, Any]) -> str:
    return f"{app.get('suite')}/{app.get('app')}"


# --- sections ---------------------------------------------------------------------------


def _header(results: Mapping[str, Any], status: str) -> str:
    who = " · ".join(_e(v) for v in (results.get("user"), results.get("host")) if v)
    return (
        "<header><div>"
        "<h1>helm-harness report</h1>"
        f'<div class="muted">run <span class="mono">{_e(results.get("run_id"))}</span>'
        f" · started {_e(results.get('started'))} · finished {_e(results.get('finished'))}"
        f"{' · ' + who if who else ''}</div></div>"
        f'<div class="badge" style="background:{COLORS[status]}">{status.upper()}</div>'
        "</header>\n"
    )


def _summary(results: Mapping[str, Any], counts: Mapping[str, Any]) -> str:
    cluster = _mapping(results.get("cluster"))
    cards = [("total", counts.get("total", 0), "#1f2328")]
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        if outcome in ("passed", "failed") or counts.get(outcome):
            cards.append((outcome, counts.get(outcome, 0), COLORS[outcome]))
    cards.append(("duration", _seconds(results.get("duration_s")), "#1f2328"))
    html = ['<h2>Summary</h2><div class="cards">']
    for label, value, color in cards:
        html.append(
            f'<div class="card"><b style="color:{color}">{_e(value)}</b><span>{_e(label)}</span>'
            "</div>"
        )
    if cluster:
        where = f"{cluster.get('provider') or '?'}: {cluster.get('name') or '?'}"
        html.append(
            f'<div class="card"><b class="mono" style="font-size:15px">{_e(where)}</b>'
            "<span>cluster</span></div>"
            f'<div class="card"><b class="mono" style="font-size:15px">'
            f"{_e(cluster.get('kubernetes_version') or 'unknown')}</b><span>Kubernetes</span></div>"
        )
    if results.get("helm_version"):
        html.append(
            f'<div class="card"><b class="mono" style="font-size:15px">'
            f"{_e(results.get('helm_version'))}</b><span>Helm</span></div>"
        )
    html.append("</div>")
    html.append(f'<div class="panel">{outcome_bar(counts)}')
    bad = sum(int(counts.get(outcome) or 0) for outcome in BAD_OUTCOMES)
    if bad:
        html.append(f'<a href="#failures">{bad} failed or errored: see the failures</a>')
    html.append("</div>\n")
    return "".join(html)


def outcome_bar(counts: Mapping[str, Any]) -> str:
    """One stacked bar: the share of each outcome."""
    width, height = 1000, 28
    total = sum(int(counts.get(o) or 0) for o in COLORS)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 22}" '
        f'width="100%" role="img" aria-label="outcomes"><title>Outcomes</title>'
    ]
    x = 0.0
    legend_x = 0
    for outcome, color in COLORS.items():
        count = int(counts.get(outcome) or 0)
        if total and count:
            share = width * count / total
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{share:.1f}" height="{height}" fill="{color}">'
                f"<title>{_e(outcome)}: {count}</title></rect>"
            )
            x += share
        if count:
            parts.append(
                f'<rect x="{legend_x}" y="{height + 8}" width="10" height="10" fill="{color}"/>'
                f'<text x="{legend_x + 14}" y="{height + 17}" font-size="12" fill="#1f2328">'
                f"{_e(outcome)} {count}</text>"
            )
            legend_x += 110
    if not total:
        parts.append(
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#d1d9e0"/>'
            f'<text x="8" y="19" font-size="13" fill="#1f2328">no tests ran</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _apps_table(apps: list[Mapping[str, Any]]) -> str:
    if not apps:
        return '<h2>Apps</h2><p class="muted">No suite apps ran.</p>\n'
    rows = []
    # Failed apps first: in a run of hundreds of apps they are what a reader looks for.
    for app in sorted(apps, key=lambda app: app.get("status") != "failed"):
        status = str(app.get("status") or "passed")
        chips = " ".join(
            _chip(str(item.get("name")), str(item.get("outcome")), str(item.get("message") or ""))
            for item in _list(app.get("items"))
            if isinstance(item, Mapping)
        )
        timings = _mapping(app.get("timings"))
        rows.append(
            f'<tr class="app" data-app="{_e(app.get("suite"))}::{_e(app.get("app"))}">'
            f"<td>{_e(app.get('suite'))}</td><td><b>{_e(app.get('app'))}</b></td>"
            f'<td title="{_e(app.get("chart"))}">{_e(_short_chart(app.get("chart")))}</td>'
            f"<td>{_e(app.get('chart_version') or '–')}</td>"
            f'<td class="mono">{_e(app.get("namespace"))}</td>'
            f"<td>{_chip(status, status, str(app.get('install_error') or ''))}</td>"
            f'<td class="num">{_seconds(timings.get("install"))}</td>'
            f'<td class="num">{_seconds(time_to_ready(app))}</td>'
            f"<td>{chips}</td></tr>"
        )
    return (
        "<h2>Apps</h2><table><thead><tr><th>suite</th><th>app</th><th>chart</th>"
        "<th>version</th><th>namespace</th><th>status</th><th>install</th>"
        "<th>time to ready</th><th>checks</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>\n"
    )


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str,
) -> str:
    """Horizontal bars, one row per label and one bar per series in it."""
    width, label_width, value_width = 560, 170, 80
    bar_height, gap = 14, 10
    row_height = bar_height * len(series) + gap
    legend = 22 if len(series) > 1 else 0
    height = legend + row_height * len(labels) + 6
    values = [v for _, column in series for v in column if v is not None]
    top = max(values) if values and max(values) > 0 else 1.0
    span = width - label_width - value_width
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" role="img" aria-label="{_e(title)}">'
        f"<title>{_e(title)}</title>"
    ]
    if legend:
        for index, (name, _) in enumerate(series):
            x = label_width + index * 120
            parts.append(
                f'<rect x="{x}" y="4" width="10" height="10" fill="{SERIES[index % 2]}"/>'
                f'<text x="{x + 14}" y="13" font-size="11" fill="#1f2328">{_e(name)}</text>'
            )
    for row, label in enumerate(labels):
        y0 = legend + row * row_height
        middle = y0 + (bar_height * len(series)) / 2 + 4
        parts.append(
            f'<text x="{label_width - 8}" y="{middle:.1f}" font-size="12" text-anchor="end" '
            f'fill="#1f2328">{_e(_clip(label, 26))}<title>{_e(label)}</title></text>'
        )
        for index, (name, column) in enumerate(series):
            value = column[row]
            y = y0 + index * bar_height
            if value is None:
                parts.append(
                    f'<text x="{label_width + 4}" y="{y + 11}" font-size="11" '
                    f'fill="#59636e">no data</text>'
                )
                continue
            length = max(span * value / top, 1.0)
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height - 2}" '
                f'rx="2" fill="{SERIES[index % 2]}"><title>{_e(label)} {_e(name)}: '
                f"{_fmt(value)} {_e(unit)}</title></rect>"
                f'<text x="{label_width + length + 4:.1f}" y="{y + 11}" font-size="11" '
                f'fill="#1f2328">{_fmt(value)} {_e(unit)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _charts(apps: list[Mapping[str, Any]]) -> str:
    html = ["<h2>Timings and metrics</h2>"]
    if not apps:
        return html[0] + '<p class="muted">No suite apps ran.</p>\n'
    labels = [_app_label(app) for app in apps]
    installs = [_number(_mapping(app.get("timings")).get("install")) for app in apps]
    ready = [time_to_ready(app) for app in apps]
    html.append('<div class="charts">')
    cpu = [cpu_millicores(app.get("metrics")) for app in apps]
    memory = [memory_mib(app.get("metrics")) for app in apps]
    if any(v is not None for v in cpu + memory):
        html.append(
            '<div class="panel"><h3>CPU (millicores)</h3>'
            + bar_chart("CPU per app", labels, [("cpu", cpu)], "m")
            + "</div>"
            '<div class="panel"><h3>Memory (MiB)</h3>'
            + bar_chart("memory per app", labels, [("memory", memory)], "MiB")
            + "</div>"
        )
    else:
        html.append(
            '<div class="panel"><h3>CPU and memory</h3><p class="muted">No metric snapshots in '
            "this run: CPU and memory charts need the apps' metric snapshots "
            "(metrics/&lt;suite&gt;/&lt;app&gt;.json).</p></div>"
        )
    files = [
        (_app_label(app), _mapping(app.get("metrics")).get("file"))
        for app in apps
        if _mapping(app.get("metrics")).get("file")
    ]
    if files:
        links = " · ".join(f"{_e(label)}: {_file_link(path)}" for label, path in files)
        html.append(f'<div class="panel" style="flex-basis:100%">snapshots: {links}</div>')
    series = [("install", installs), ("ready", ready)]
    html.append(
        '<div class="panel"><h3>Install and time to ready (s)</h3>'
        + bar_chart("install and time to ready", labels, series, "s")
        + "</div>"
    )
    html.append("</div>\n")
    return "".join(html)


def _failures(apps: list[Mapping[str, Any]], tests: list[Mapping[str, Any]]) -> str:
    blocks = []
    for app in apps:
        failed = [
            item
            for item in _list(app.get("items"))
            if isinstance(item, Mapping) and item.get("outcome") in BAD_OUTCOMES
        ]
        if not failed and not app.get("install_error"):
            continue
        parts = [f'<div class="panel failure"><h3>{_e(_app_label(app))}</h3>']
        if app.get("install_error") and not failed:
            parts.append(f"<pre>{_e(app.get('install_error'))}</pre>")
        for item in failed:
            parts.append(_failed_item(item))
        if app.get("runbook") and all(i.get("runbook") != app.get("runbook") for i in failed):
            parts.append(f"<div>app runbook: {_runbook_link(app.get('runbook'))}</div>")
        files = [str(f) for f in _list(app.get("bundle_files"))]
        if files:
            parts.append(
                f"<div>evidence bundle <span class='mono'>{_e(app.get('bundle'))}</span>:</div>"
                f'<ul class="files">{"".join(f"<li>{_file_link(f)}</li>" for f in files)}</ul>'
            )
        elif app.get("bundle"):
            parts.append(f"<div>evidence bundle: {_file_link(app.get('bundle'))}</div>")
        parts.append("</div>")
        blocks.append("".join(parts))
    for test in tests:
        if test.get("outcome") in BAD_OUTCOMES:
            blocks.append(
                f'<div class="panel failure"><h3 class="mono">{_e(test.get("id"))}</h3>'
                f"{_failed_item(test, heading=False)}</div>"
            )
    if not blocks:
        return '<h2>Failures</h2><p class="muted">None.</p>\n'
    return f'<h2 id="failures">Failures</h2>{"".join(blocks)}\n'


def _failed_item(item: Mapping[str, Any], *, heading: bool = True) -> str:
    parts = []
    if heading:
        parts.append(
            f"<div>{_chip(str(item.get('outcome')), str(item.get('outcome')))}"
            f'<span class="mono">{_e(item.get("id"))}</span></div>'
        )
    parts.append(f"<p><b>{_e(item.get('message') or '(no message)')}</b></p>")
    details = item.get("details")
    if details and str(details).strip() != str(item.get("message") or "").strip():
        parts.append(f"<details><summary>details</summary><pre>{_e(details)}</pre></details>")
    if item.get("runbook"):
        parts.append(f"<div>runbook: {_runbook_link(item.get('runbook'))}</div>")
    return "".join(parts)


def _tests_table(tests: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        f'<tr><td class="mono">{_e(test.get("id"))}</td>'
        f"<td>{_chip(str(test.get('outcome')), str(test.get('outcome')))}</td>"
        f'<td class="num">{_seconds(test.get("duration_s"))}</td>'
        f"<td>{_e(test.get('message') or '')}</td></tr>"
        for test in tests
    ]
    if not rows:
        return ""
    return (
        "<h2>Python tests</h2><table><thead><tr><th>test</th><th>outcome</th><th>time</th>"
        f"<th>message</th></tr></thead><tbody>{''.join(rows)}</tbody></table>\n"
    )


def _footer(results: Mapping[str, Any]) -> str:
    return (
        "<footer>Files: "
        f"{_file_link('results.json')} · {_file_link('junit.xml')} — "
        f"schema {_e(results.get('schema'))}"
        + (
            f", pytest exit status {_e(results['exit_status'])}"
            if results.get("exit_status") is not None
            else ""
        )
        + "</footer>\n"
    )


__all__ = [
    "bar_chart",
    "cpu_millicores",
    "figure",
    "memory_mib",
    "outcome_bar",
    "render",
    "rerender",
]
