"""``results.json``: the run's record built from the recorder (:func:`build_results`),
scrubbed of secrets, and described in ``docs/results-schema.md``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.files import write_atomic
from harness.redact import MASK, Scrubber, looks_secret, value_secrets
from harness.report.recorder import APP_FIELDS, OUTCOMES, ItemResult, RunRecorder

RESULTS_SCHEMA = "helm-harness/results/v1"


MAX_BUNDLE_FILES = 200


_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<value>[^\s,;&'\"]+)")


@dataclass
class RunInfo:
    """Facts about the run as a whole."""

    run_id: str
    started: float  # epoch seconds
    finished: float
    host: str | None = None
    user: str | None = None
    args: list[str] = field(default_factory=list)
    cluster: dict[str, Any] | None = None  # provider, name, kubernetes_version
    helm_version: str | None = None
    exit_status: int | None = None
    complete: bool = True  # False for the record written while the run goes
    # "<suite file>::<app>" -> the apps it ran one after another with (a shared object)
    serialised: dict[str, list[str]] = field(default_factory=dict)


def iso_utc(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def metric_figures(metrics: Any) -> dict[str, str]:
    """An app's metric snapshot as flat ``metrics.NAME`` figures (per-pod and
    per-container detail left out: that is in ``metrics/<suite>/<app>.json``)."""
    figures: dict[str, str] = {}

    def walk(prefix: str, node: Any, depth: int) -> None:
        if isinstance(node, Mapping):
            if depth >= 3:
                return
            for key, value in node.items():
                if not (str(key) in ("pods", "containers") and isinstance(value, Mapping)):
                    walk(f"{prefix}.{key}", value, depth + 1)
        elif isinstance(node, bool):
            figures[prefix] = "true" if node else "false"
        elif isinstance(node, int | float | str):
            figures[prefix] = str(node)

    walk("metrics", metrics, 0)
    return figures


def _relative(path: str | None, report_dir: Path) -> str | None:
    """A path inside the report dir relative to it (as the page links it); else as given."""
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(report_dir.resolve()).as_posix()
    except ValueError:
        return path


def _bundle_files(bundle: str | None, report_dir: Path) -> list[str]:
    if not bundle or Path(bundle).is_absolute():
        return []
    folder = report_dir / bundle
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file())[:MAX_BUNDLE_FILES]
    return [p.relative_to(report_dir).as_posix() for p in files]


@dataclass
class AppResult:
    record: dict[str, Any]
    items: list[ItemResult]

    @property
    def status(self) -> str:
        outcomes = {item.outcome for item in self.items}
        if outcomes & {"failed", "error"} or self.record.get("failed"):
            return "failed"
        if self.items and outcomes <= {"skipped", "xfailed"}:
            return "skipped"
        return "passed"


def group_apps(recorder: RunRecorder) -> tuple[list[AppResult], list[ItemResult]]:
    """Suite items by app (in the order their first report came), and the other tests."""
    by_app: dict[tuple[str, str], list[ItemResult]] = {}
    tests: list[ItemResult] = []
    for item in recorder.items.values():
        key = item.app_key
        if key is None:
            tests.append(item)
        else:
            by_app.setdefault(key, []).append(item)
    for key in recorder.records:
        by_app.setdefault(key, [])
    apps = []
    for key, items in by_app.items():
        record = recorder.records.get(key) or _record_from_items(key, items)
        apps.append(AppResult(record, items))
    return apps, tests


def _record_from_items(key: tuple[str, str], items: list[ItemResult]) -> dict[str, Any]:
    """An app's record when its own never came (an interrupted run): what its items say."""
    first = items[0]
    record: dict[str, Any] = {field_: first.prop(field_) for field_ in APP_FIELDS}
    record.update(suite=key[0], app=key[1])
    record.update(
        suite_file=None,
        values_digest=None,
        timings={},
        installed=None,
        install_error=None,
        failed=any(item.outcome in ("failed", "error") for item in items),
        metrics=None,
        owners=first.owners,
    )
    return record


def build_results(
    recorder: RunRecorder, info: RunInfo, report_dir: Path
) -> tuple[dict[str, Any], list[AppResult], list[ItemResult]]:
    """The run record written as results.json (see docs/results-schema.md)."""
    apps, tests = group_apps(recorder)
    counts = dict.fromkeys(OUTCOMES, 0)
    for item in recorder.items.values():
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    counts["total"] = len(recorder.items)
    app_rows = []
    for app in apps:
        items = [_item_row(item, report_dir) for item in app.items]
        bundle = next((row["bundle"] for row in items if row["bundle"]), None)
        row = dict(app.record)
        label = f"{Path(str(row.get('suite_file') or '')).name}::{row.get('app')}"
        row.update(
            status=app.status,
            bundle=bundle,
            bundle_files=_bundle_files(bundle, report_dir),
            items=items,
            serialised_with=info.serialised.get(label, []),
        )
        app_rows.append(row)
    results = {
        "schema": RESULTS_SCHEMA,
        "run_id": info.run_id,
        "started": iso_utc(info.started),
        "finished": iso_utc(info.finished),
        "duration_s": round(info.finished - info.started, 3),
        "host": info.host,
        "user": info.user,
        "pytest_args": info.args,
        "exit_status": info.exit_status,
        "complete": info.complete,
        "cluster": info.cluster,
        "helm_version": info.helm_version,
        "outcomes": counts,
        "apps": app_rows,
        "tests": [_test_row(item) for item in tests],
    }
    return results, apps, tests


def _item_row(item: ItemResult, report_dir: Path) -> dict[str, Any]:
    return {
        "id": item.nodeid,
        "name": item.name,
        "check": item.prop("check"),
        "outcome": item.outcome,
        "duration_s": round(item.duration, 3),
        "message": item.message or None,
        "details": _details(item),
        "bundle": _relative(item.prop("bundle"), report_dir),
        "runbook": item.prop("runbook"),
        "xfail": item.prop("xfail"),
    }


def _test_row(item: ItemResult) -> dict[str, Any]:
    return {
        "id": item.nodeid,
        "name": item.name,
        "file": item.file,
        "outcome": item.outcome,
        "duration_s": round(item.duration, 3),
        "message": item.message or None,
        "details": _details(item),
    }


def _details(item: ItemResult) -> str | None:
    texts = [p.text.strip() for p in item.problems if p.tag != "skipped" and p.text.strip()]
    return "\n\n".join(texts) or None


def text_scrubber(secrets: Iterable[str]) -> Callable[[str], str]:
    """Masks the given secret strings, and the value of any ``NAME=value`` whose name
    looks secret."""
    known = Scrubber(secrets)

    def scrub(text: str) -> str:
        text = known(text)
        return _ASSIGNMENT.sub(
            lambda m: f"{m['name']}={MASK}" if looks_secret(m["name"]) else m.group(), text
        )

    return scrub


def scrubbed_results(
    recorder: RunRecorder, info: RunInfo, report_dir: Path, secrets: Iterable[str]
) -> tuple[dict[str, Any], list[AppResult], list[ItemResult]]:
    """The run record with every text scrubbed of ``secrets``; the report dir made."""
    scrub = text_scrubber(secrets)
    recorder.redact(scrub)
    info.args = [scrub(arg) for arg in info.args]
    report_dir.mkdir(parents=True, exist_ok=True)
    return build_results(recorder, info, report_dir)


def write_results(report_dir: Path, results: dict[str, Any]) -> Path:
    return write_atomic(report_dir / "results.json", json.dumps(results, indent=2) + "\n")


def suite_secrets(files: Iterable[Path]) -> set[str]:
    """The values the suites in ``files`` give under secret-looking keys (inline values,
    ``set`` and values files), for scrubbing them from the reports."""
    from harness.suite.model import SuiteError, load_suite

    found: set[str] = set()
    for path in files:
        try:
            suite = load_suite(path)
        except (SuiteError, OSError):
            continue
        for app in suite.apps:
            found |= value_secrets(app.values, app.set_values, app.values_files)
    return found
