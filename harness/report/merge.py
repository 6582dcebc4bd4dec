"""Report dirs rendered again from their run records: ``helm-harness report DIR``
(:func:`rerender`: ``report.html`` and ``report.md`` from ``results.json`` alone) and
``helm-harness report --merge DIR... -o OUT`` (:func:`merge`): one report from the report
dirs of the shards of a run (``--shard K/N`` on several machines). Apps, items and plain
tests are put together (shards cover disjoint apps), outcome counts summed, the time span
widened; bundles and metric snapshots are copied under OUT with the same relative paths,
the JUnit files' test suites are joined into one file, and the pages are rendered anew."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.files import write_atomic
from harness.report import markdown
from harness.report.html import render


def load(folder: Path) -> dict[str, Any]:
    source = folder / "results.json"
    if not source.is_file():
        raise UsageError(f"{folder}: no results.json here (is it a helm-harness report dir?)")
    try:
        results: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{source}: not readable JSON: {exc}") from exc
    problem = _not_a_record(results)
    if problem:
        raise UsageError(f"{source}: not a helm-harness run record: {problem}")
    return results


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


def write_pages(folder: Path, results: dict[str, Any]) -> list[Path]:
    """Write report.html and report.md of a run record into ``folder``; return them.
    Both are rendered before either is written, so a record that fails to render leaves
    the folder as it was."""
    page, summary = render(results), markdown.render(results)
    return [
        write_atomic(folder / "report.html", page),
        write_atomic(folder / "report.md", summary),
    ]


def rerender(folder: Path) -> Path:
    """Render ``folder/report.html`` and ``folder/report.md`` again from
    ``folder/results.json``; returns report.html. UsageError when there is no results.json
    or it is not a run record."""
    results = load(folder)
    try:
        return write_pages(folder, results)[0]
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{folder / 'results.json'}: malformed run record: {exc}") from exc


def merge_results(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    first = records[0]
    merged = dict(first)
    merged["run_id"] = "+".join(str(r.get("run_id")) for r in records)
    merged["started"] = min(str(r.get("started")) for r in records)
    merged["finished"] = max(str(r.get("finished")) for r in records)
    merged["duration_s"] = round(max(float(r.get("duration_s") or 0) for r in records), 3)
    merged["exit_status"] = max(int(r.get("exit_status") or 0) for r in records)
    merged["pytest_args"] = [r.get("pytest_args") for r in records]
    merged["shards"] = [
        {"run_id": r.get("run_id"), "host": r.get("host"), "outcomes": r.get("outcomes")}
        for r in records
    ]
    outcomes: dict[str, int] = {}
    for record in records:
        for key, value in (record.get("outcomes") or {}).items():
            outcomes[key] = outcomes.get(key, 0) + int(value)
    merged["outcomes"] = outcomes
    merged["apps"] = [app for r in records for app in r.get("apps") or []]
    merged["tests"] = [test for r in records for test in r.get("tests") or []]
    return merged


def merge_junit(sources: Sequence[Path], target: Path) -> None:
    root = ET.Element("testsuites")
    for source in sources:
        if not source.is_file():
            continue
        tree = ET.parse(source)
        top = tree.getroot()
        suites = [top] if top.tag == "testsuite" else list(top.iter("testsuite"))
        root.extend(suites)
    for attribute in ("tests", "failures", "errors", "skipped"):
        total = sum(int(suite.get(attribute, "0")) for suite in root)
        root.set(attribute, str(total))
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)


def merge(folders: Sequence[Path], output: Path) -> Path:
    """Write the merged report into ``output``; returns its report.html (report.md beside it)."""
    if not folders:
        raise UsageError("report --merge needs at least one report dir")
    records = [load(folder) for folder in folders]
    output.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for part in ("bundles", "metrics"):
            if (folder / part).is_dir() and folder.resolve() != output.resolve():
                shutil.copytree(folder / part, output / part, dirs_exist_ok=True)
    merged = merge_results(records)
    (output / "results.json").write_text(json.dumps(merged, indent=2), encoding="utf-8")
    merge_junit([folder / "junit.xml" for folder in folders], output / "junit.xml")
    return write_pages(output, merged)[0]
