"""``report.html``: one self-contained page rendered from a run record (``results.json``).

Inline CSS and inline SVG only: no scripts, fonts or images from anywhere, so the page
opens from a CI artifact or a mail attachment as it is. The markup is in the jinja2
templates of ``harness/report/templates``; this module turns the record into plain view
data (strings, numbers, lists and dicts: nothing pre-rendered, nothing marked safe) and the
templates render it with autoescape on, so every text from the record is HTML-escaped.
Links are made only for http(s) runbooks and for bundle files inside the report dir
(relative paths). jinja2 is imported on the first render, not with this module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    import jinja2

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
EVIDENCE_LINES = 8  # lines of a failure's explanation shown open; the rest is in the bundle
PHASES = ("from", "to", "rollback")  # of an upgrade run, in order
TEXT = "#1f2328"


def render(results: Mapping[str, Any], *, trends: Mapping[str, Any] | None = None) -> str:
    """The whole page for a run record; with ``trends`` (view data from
    :func:`harness.report.history.trend_view`), a trend strip per app from the history."""
    apps = [app for app in _list(results.get("apps")) if isinstance(app, Mapping)]
    tests = [test for test in _list(results.get("tests")) if isinstance(test, Mapping)]
    counts = _mapping(results.get("outcomes"))
    bad = _bad_count(counts)
    status = "failed" if bad else "passed"
    failures = _failures(apps, tests)
    page = {
        "title": f"helm-harness report {results.get('run_id') or ''}".strip(),
        "header": _header(results, status),
        "summary": _summary(results, counts, bad),
        "apps": _app_rows(apps),
        "show_owners": any(_owners(app) for app in apps),
        "charts": _charts(apps) if apps else None,
        "failures": failures,
        "by_owner": _by_owner(failures),
        "tests": _test_rows(tests),
        "footer": _footer(results),
        "trends": trends,
    }
    return _environment().get_template("report.html.j2").render(page=page)


def outcome_bar(counts: Mapping[str, Any]) -> str:
    """One stacked bar (inline SVG): the share of each outcome."""
    return str(_charts_module().outcome_bar(_outcome_bar(counts)))


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str,
) -> str:
    """Horizontal bars (inline SVG), one row per label and one bar per series in it."""
    return str(_charts_module().bar_chart(_bar_chart(title, labels, series, unit)))


# --- templates -------------------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: "" if value is None else value,
    )


def _charts_module() -> Any:
    return _environment().get_template("charts.html.j2").module


# --- helpers --------------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _bad_count(counts: Mapping[str, Any]) -> int:
    return sum(int(counts.get(outcome) or 0) for outcome in BAD_OUTCOMES)


def _seconds(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.2f} s"


def _chip(text: str, outcome: str, title: str = "") -> dict[str, str]:
    return {
        "text": text,
        "outcome": outcome,
        "color": COLORS.get(outcome, "#6e7781"),
        "title": title,
    }


def _runbook(url: object) -> dict[str, str | None] | None:
    """A link for an http(s) runbook; plain text for anything else; None for none."""
    if not url:
        return None
    text = str(url)
    return {"text": text, "href": text if urlsplit(text).scheme in ("http", "https") else None}


def _file(path: object) -> dict[str, str | None]:
    """A link to a file in the report dir; plain text for anything else."""
    text = str(path)
    pure = PurePosixPath(text)
    outside = pure.is_absolute() or ".." in pure.parts or urlsplit(text).scheme
    return {"text": text, "href": None if outside else quote(text)}


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


def recorded_cpu_millicores(metrics: Any) -> float | None:
    """The CPU figure of a snapshot as results.json records it (any record version)."""
    return figure(metrics, ("cpu_millicores", "cpu_m"))


def recorded_memory_mib(metrics: Any) -> float | None:
    """The memory figure of a snapshot as results.json records it, in MiB."""
    mib = figure(metrics, ("memory_mib",))
    if mib is not None:
        return mib
    raw = figure(metrics, ("memory_bytes",))
    return None if raw is None else raw / MIB


def ready_failed(app: Mapping[str, Any]) -> bool:
    """Whether a ``ready`` item of the app failed: it then has no time to ready."""
    return any(
        isinstance(item, Mapping)
        and item.get("outcome") in BAD_OUTCOMES
        and item.get("check") == "ready"
        for item in _list(app.get("items"))
    )


def upgrade_versions(app: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(from, to)``: the versions of an upgrade run's app (``?`` where the record does
    not know one); None for an app of a run without upgrade."""
    upgrade = _mapping(app.get("upgrade"))
    if not upgrade:
        return None
    # chart_version is what the first install installed: the released version
    old = _mapping(upgrade.get("from")).get("version") or app.get("chart_version") or "?"
    new = _mapping(upgrade.get("to")).get("version") or "?"
    return str(old), str(new)


def _item_phase(name: str) -> str:
    """The upgrade phase of an item by its name: ``install[from]``, ``ready@to``,
    ``upgrade`` and ``crd-drift`` (to), ``rollback``."""
    if "@" in name:
        return name.rpartition("@")[2]
    if name in ("upgrade", "crd-drift"):
        return "to"
    return "rollback" if name == "rollback" else "from"


def _version(app: Mapping[str, Any]) -> dict[str, Any]:
    """The version cell: the installed version, or on an upgrade run ``from → to`` and
    each phase reached with the version it ran and whether an item of it failed."""
    versions = upgrade_versions(app)
    if versions is None:
        return {"text": str(app.get("chart_version") or "–"), "phases": []}
    upgrade = _mapping(app.get("upgrade"))
    reached = str(upgrade.get("phase_reached") or "from")
    errors = _mapping(upgrade.get("errors"))
    git = _mapping(_mapping(upgrade.get("from")).get("git"))  # upgrade.from {git: ...}
    origin = f" (git:{git.get('ref')}@{str(git.get('commit'))[:7]})" if git else ""
    phases = []
    for phase in PHASES[: PHASES.index(reached) + 1] if reached in PHASES else PHASES[:1]:
        bad = [
            str(item.get("name"))
            for item in _list(app.get("items"))
            if isinstance(item, Mapping)
            and item.get("outcome") in BAD_OUTCOMES
            and _item_phase(str(item.get("name") or "")) == phase
        ]
        why = str(errors.get(phase) or "") or (f"failed: {', '.join(bad)}" if bad else "")
        phases.append(
            {
                "phase": phase,
                "version": versions[1] if phase == "to" else versions[0] + origin,
                "bad": bool(why),
                "title": why,
            }
        )
    return {"text": f"{versions[0]} → {versions[1]}", "phases": phases}


def time_to_ready(app: Mapping[str, Any]) -> float | None:
    ready = _number(_mapping(app.get("timings")).get("ready"))
    return ready if ready is not None else figure(app.get("metrics"), ("time_to_ready_s",))


def _owners(app: Mapping[str, Any]) -> list[str]:
    return [str(owner) for owner in _list(app.get("owners")) if owner]


def _app_label(app: Mapping[str, Any]) -> str:
    return f"{app.get('suite')}/{app.get('app')}"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


# --- view data of the sections (templates/report.html.j2) -----------------------------------


def _header(results: Mapping[str, Any], status: str) -> dict[str, Any]:
    return {
        "run_id": results.get("run_id"),
        "started": results.get("started"),
        "finished": results.get("finished"),
        "who": [v for v in (results.get("user"), results.get("host")) if v],
        "status": status.upper(),
        "color": COLORS[status],
    }


def _summary(results: Mapping[str, Any], counts: Mapping[str, Any], bad: int) -> dict[str, Any]:
    cards = [{"label": "total", "value": counts.get("total", 0), "color": TEXT}]
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        if outcome in ("passed", "failed") or counts.get(outcome):
            cards.append(
                {"label": outcome, "value": counts.get(outcome, 0), "color": COLORS[outcome]}
            )
    cards.append({"label": "duration", "value": _seconds(results.get("duration_s")), "color": TEXT})
    facts: list[dict[str, Any]] = []  # cards with a name or a version
    cluster = _mapping(results.get("cluster"))
    if cluster:
        where = f"{cluster.get('provider') or '?'}: {cluster.get('name') or '?'}"
        facts.append({"label": "cluster", "value": where})
        version = cluster.get("kubernetes_version") or "unknown"
        facts.append({"label": "Kubernetes", "value": version})
    if results.get("helm_version"):
        facts.append({"label": "Helm", "value": results.get("helm_version")})
    return {"cards": cards, "facts": facts, "bar": _outcome_bar(counts), "bad": bad}


def _outcome_bar(counts: Mapping[str, Any]) -> dict[str, Any]:
    width, height = 1000, 28
    total = sum(int(counts.get(o) or 0) for o in COLORS)
    parts = []  # per outcome: its segment of the bar and its legend entry, either may be None
    x = 0.0
    legend_x = 0
    for outcome, color in COLORS.items():
        count = int(counts.get(outcome) or 0)
        segment = legend = None
        if total and count:
            share = width * count / total
            segment = {"x": f"{x:.1f}", "width": f"{share:.1f}"}
            x += share
        if count:
            legend = {"x": legend_x, "text_x": legend_x + 14}
            legend_x += 110
        if segment or legend:
            parts.append(
                {
                    "outcome": outcome,
                    "color": color,
                    "count": count,
                    "segment": segment,
                    "legend": legend,
                }
            )
    return {"width": width, "height": height, "parts": parts, "empty": not total}


def _bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str,
) -> dict[str, Any]:
    width, label_width, value_width = 560, 170, 80
    bar_height, gap = 14, 10
    row_height = bar_height * len(series) + gap
    legend_height = 22 if len(series) > 1 else 0
    height = legend_height + row_height * len(labels) + 6
    values = [v for _, column in series for v in column if v is not None]
    top = max(values) if values and max(values) > 0 else 1.0
    span = width - label_width - value_width
    legend = []
    if legend_height:
        for index, (name, _) in enumerate(series):
            x = label_width + index * 120
            legend.append({"x": x, "text_x": x + 14, "name": name, "color": SERIES[index % 2]})
    rows = []
    for row, label in enumerate(labels):
        y0 = legend_height + row * row_height
        bars = []
        for index, (name, column) in enumerate(series):
            value = column[row]
            y = y0 + index * bar_height
            bar: dict[str, Any] = {"y": y, "text_y": y + 11, "name": name, "value": None}
            if value is not None:
                length = max(span * value / top, 1.0)
                bar |= {
                    "length": f"{length:.1f}",
                    "text_x": f"{label_width + length + 4:.1f}",
                    "color": SERIES[index % 2],
                    "value": _fmt(value),
                }
            bars.append(bar)
        middle = y0 + (bar_height * len(series)) / 2 + 4
        rows.append({"label": label, "short": _clip(label, 26), "y": f"{middle:.1f}", "bars": bars})
    return {
        "title": title,
        "unit": unit,
        "width": width,
        "height": height,
        "label_width": label_width,
        "bar_height": bar_height,
        "legend": legend,
        "rows": rows,
    }


def _item_note(item: Mapping[str, Any]) -> str:
    """An item's message, or for one expected to fail that passed, why it was expected to."""
    if item.get("message"):
        return str(item["message"])
    return f"expected to fail: {item['xfail']}" if item.get("xfail") else ""


def _app_rows(apps: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    # Failed apps first: in a run of hundreds of apps they are what a reader looks for.
    for app in sorted(apps, key=lambda app: app.get("status") != "failed"):
        status = str(app.get("status") or "passed")
        checks = [
            _chip(str(item.get("name")), str(item.get("outcome")), _item_note(item))
            for item in _list(app.get("items"))
            if isinstance(item, Mapping)
        ]
        rows.append(
            {
                "suite": app.get("suite"),
                "app": app.get("app"),
                "chart": app.get("chart"),
                "short_chart": _short_chart(app.get("chart")),
                "version": _version(app),
                "namespace": app.get("namespace"),
                "owners": ", ".join(_owners(app)),
                "status": _chip(status, status, str(app.get("install_error") or "")),
                "install": _seconds(_mapping(app.get("timings")).get("install")),
                "ready": "" if ready_failed(app) else _seconds(time_to_ready(app)),
                "checks": checks,
                "recoveries": recovery_line(app),
            }
        )
    return rows


def recovery_line(app: Mapping[str, Any]) -> str:
    """The app's ``disrupt`` checks and how long it took to recover from each, in a line:
    ``recovery: disrupt[restart] 2.1s (restart of Deployment/web) · ...``."""
    parts = []
    for check_id, recovery in _mapping(app.get("recoveries")).items():
        if not isinstance(recovery, Mapping):
            continue
        seconds = _number(recovery.get("seconds"))
        took = (
            _seconds(seconds)
            if recovery.get("recovered") and seconds is not None
            else f"not recovered within {_seconds(_number(recovery.get('budget_s')))}"
        )
        parts.append(f"{check_id} {took} ({recovery.get('disruption')})")
    return "recovery: " + " · ".join(parts) if parts else ""


def _charts(apps: list[Mapping[str, Any]]) -> dict[str, Any]:
    labels = [_app_label(app) for app in apps]
    cpu = [recorded_cpu_millicores(app.get("metrics")) for app in apps]
    memory = [recorded_memory_mib(app.get("metrics")) for app in apps]
    measured = any(v is not None for v in cpu + memory)
    installs = [_number(_mapping(app.get("timings")).get("install")) for app in apps]
    ready = [None if ready_failed(app) else time_to_ready(app) for app in apps]
    return {
        "cpu": _bar_chart("CPU per app", labels, [("cpu", cpu)], "m") if measured else None,
        "memory": (
            _bar_chart("memory per app", labels, [("memory", memory)], "MiB") if measured else None
        ),
        "snapshots": [
            {"label": _app_label(app), "file": _file(_mapping(app.get("metrics")).get("file"))}
            for app in apps
            if _mapping(app.get("metrics")).get("file")
        ],
        "timings": _bar_chart(
            "install and time to ready", labels, [("install", installs), ("ready", ready)], "s"
        ),
    }


def _failures(
    apps: list[Mapping[str, Any]], tests: list[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for app in apps:
        failed = [
            item
            for item in _list(app.get("items"))
            if isinstance(item, Mapping) and item.get("outcome") in BAD_OUTCOMES
        ]
        if not failed and not app.get("install_error"):
            continue
        runbook = app.get("runbook")
        shared = runbook and all(item.get("runbook") != runbook for item in failed)
        bundle_files = [_file(str(f)) for f in _list(app.get("bundle_files"))]
        blocks.append(
            {
                "title": _app_label(app),
                "owners": _owners(app),
                "mono": False,
                "install_error": None if failed else app.get("install_error") or None,
                "failed": [_failed_item(item, bundle=app.get("bundle")) for item in failed],
                "runbook": _runbook(runbook) if shared else None,
                "bundle": app.get("bundle"),
                "bundle_files": bundle_files,
                "bundle_link": _file(app.get("bundle")) if app.get("bundle") else None,
            }
        )
    for test in tests:
        if test.get("outcome") in BAD_OUTCOMES:
            blocks.append(
                {
                    "title": test.get("id"),
                    "owners": [],
                    "mono": True,
                    "install_error": None,
                    "failed": [_failed_item(test, heading=False)],
                    "runbook": None,
                    "bundle": None,
                    "bundle_files": [],
                    "bundle_link": None,
                }
            )
    # Apps of the same owners side by side; those without owners last (a stable sort: a
    # run without owners keeps its order).
    blocks.sort(key=lambda block: (not block["owners"], block["owners"]))
    for index, block in enumerate(blocks):
        block["anchor"] = f"failure-{index + 1}"
        block["owners_text"] = ", ".join(block["owners"])
    return blocks


def _by_owner(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failures per owner (an app with two owners is under both), for the index at the
    top of the failures; the failures of no owner last. Empty when no failure has one."""
    if not any(block["owners"] for block in blocks):
        return []
    owned: dict[str, list[dict[str, Any]]] = {}
    unowned = []
    for block in blocks:
        link = {"title": block["title"], "anchor": block["anchor"]}
        for owner in block["owners"]:
            owned.setdefault(owner, []).append(link)
        if not block["owners"]:
            unowned.append(link)
    rows: list[dict[str, Any]] = [
        {"owner": owner, "failures": owned[owner]} for owner in sorted(owned, key=str.lower)
    ]
    if unowned:
        rows.append({"owner": None, "failures": unowned})
    return rows


def _failed_item(
    item: Mapping[str, Any], *, heading: bool = True, bundle: object = None
) -> dict[str, Any]:
    outcome = str(item.get("outcome"))
    message = item.get("message")
    details = item.get("details")
    shown = details and str(details).strip() != str(message or "").strip()
    evidence: list[str] = []
    more = 0
    if heading and shown:  # a suite item: its explanation open, the full text folded
        evidence, more = _evidence(str(details), str(message or ""))
    folded = bool(shown) and (not heading or more > 0)
    where = item.get("bundle") or bundle
    return {
        "chip": _chip(outcome, outcome) if heading else None,
        "id": item.get("id"),
        "message": message or "(no message)",
        "evidence": "\n".join(evidence),
        "more": more,
        "more_file": _file(f"{where}/failure.txt") if more and where else None,
        "details": details if folded else None,
        "runbook": _runbook(item.get("runbook")),
    }


def _evidence(details: str, message: str) -> tuple[list[str], int]:
    """The lines of a suite item's failure text that explain it (the pods' states, the
    warning events), without the message and the owners, runbook and evidence lines the
    block shows on its own; at most :data:`EVIDENCE_LINES`, warnings kept first, and how
    many more there are."""
    lines = details.strip("\n").splitlines()
    if lines and message.strip() and message.strip() in lines[0]:
        lines = lines[1:]
    lines = [
        line
        for line in lines
        if line.strip() and not line.startswith(("owners: ", "runbook: ", "evidence: "))
    ]
    if len(lines) <= EVIDENCE_LINES:
        return lines, 0
    pinned = {i for i, line in enumerate(lines) if line.startswith("latest warning:")}
    room = EVIDENCE_LINES - min(len(pinned), EVIDENCE_LINES)
    kept = [i for i in range(len(lines)) if i not in pinned][:room]
    keep = sorted(set(kept) | set(sorted(pinned)[:EVIDENCE_LINES]))
    return [lines[i] for i in keep], len(lines) - len(keep)


def _test_rows(tests: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": test.get("id"),
            "chip": _chip(str(test.get("outcome")), str(test.get("outcome"))),
            "time": _seconds(test.get("duration_s")),
            "message": test.get("message") or "",
        }
        for test in tests
    ]


def _footer(results: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "files": [_file("results.json"), _file("junit.xml")],
        "schema": results.get("schema"),
        "exit_status": results.get("exit_status"),
    }


__all__ = [
    "bar_chart",
    "recorded_cpu_millicores",
    "figure",
    "recorded_memory_mib",
    "outcome_bar",
    "render",
]
