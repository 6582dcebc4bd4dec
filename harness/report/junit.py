"""``junit.xml``, written with the standard library's ElementTree as pytest's own junitxml
is (the ``junit-xml`` package cannot put properties on a testcase): one testsuite, one
testcase per item with its properties, failure/error/skipped elements."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.report.recorder import ItemResult
from harness.report.results import AppResult, metric_figures

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: object) -> str:
    """Text as XML 1.0 allows it: colour codes dropped, other forbidden characters shown
    as #xNN (as pytest's junitxml does)."""
    clean = _ANSI.sub("", str(text))
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", clean)


def _classname(item: ItemResult) -> str:
    key = item.app_key
    if key is not None:
        return f"{key[0]}::{key[1]}"
    parts = item.nodeid.split("::")[:-1]
    if parts:
        parts[0] = parts[0].replace("/", ".").removesuffix(".py")
    return ".".join(parts)


def junit_xml(results: Mapping[str, Any], apps: list[AppResult], tests: list[ItemResult]) -> bytes:
    """One testsuite; one testcase per item with its properties (its flat user properties,
    the app's phase durations and metric snapshot figures), failure/error/skipped elements
    with the first line as message and the whole text inside."""
    items: list[tuple[ItemResult, Mapping[str, Any] | None]]
    items = [(item, app.record) for app in apps for item in app.items]
    items += [(item, None) for item in tests]
    problems = [p.tag for item, _ in items for p in item.problems]
    counts = {
        "tests": str(len(items)),
        "failures": str(problems.count("failure")),
        "errors": str(problems.count("error")),
    }
    duration = f"{float(results.get('duration_s') or 0):.3f}"
    root = ET.Element("testsuites", {"name": "helm-harness", **counts, "time": duration})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": "helm-harness",
            **counts,
            "skipped": str(problems.count("skipped")),
            "time": duration,
            "timestamp": str(results.get("started") or ""),
            "hostname": _xml(results.get("host") or ""),
        },
    )
    cluster = results.get("cluster") or {}
    suite_props = {
        "run_id": results.get("run_id"),
        "cluster.provider": cluster.get("provider"),
        "cluster.name": cluster.get("name"),
        "kubernetes_version": cluster.get("kubernetes_version"),
        "helm_version": results.get("helm_version"),
    }
    _properties(suite, [(k, str(v)) for k, v in suite_props.items() if v is not None])
    for item, record in items:
        case = ET.SubElement(
            suite,
            "testcase",
            name=_xml(item.name),
            classname=_xml(_classname(item)),
            file=_xml(item.file),
            time=f"{item.duration:.3f}",
        )
        _properties(case, _case_properties(item, record))
        for tag in ("skipped", "error", "failure"):
            for problem in (p for p in item.problems if p.tag == tag):
                node = ET.SubElement(case, tag, message=_xml(problem.message))
                if problem.kind:
                    node.set("type", problem.kind)
                node.text = _xml(problem.text)
        bundle = item.prop("bundle")
        if bundle and item.outcome in ("failed", "error"):
            # GitLab shows [[ATTACHMENT|path]] lines of system-out as the case's attachment.
            out = ET.SubElement(case, "system-out")
            out.text = _xml(f"[[ATTACHMENT|{Path(bundle) / 'failure.txt'}]]")
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def _case_properties(item: ItemResult, record: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    props = list(item.properties)
    if record is not None:
        names = {name for name, _ in props}
        for phase, seconds in (record.get("timings") or {}).items():
            if f"duration_{phase}" not in names:
                props.append((f"duration_{phase}", f"{float(seconds):.3f}"))
        props += list(metric_figures(record.get("metrics")).items())
    return props


def _properties(parent: ET.Element, props: Iterable[tuple[str, str]]) -> None:
    props = list(props)
    if props:
        node = ET.SubElement(parent, "properties")
        for name, value in props:
            ET.SubElement(node, "property", name=_xml(name), value=_xml(value))
