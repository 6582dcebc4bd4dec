"""report.html as a person reads it: versions from → to on upgrade runs (per phase), no
time to ready for an app whose ``ready`` failed, long chart refs in full, a failure's
explanation open on the failure itself; and bundles without empty log files. Synthetic
records, a bundle of a real kwok pod, and the page in headless Chromium (also with the
trend strips of a history, their colours found in the screenshot's pixels)."""

from __future__ import annotations

import struct
import uuid
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.clusters.kwok_sim import set_pod_logs, write_cri_log
from harness.deploy.deployer import installed_version
from harness.helm.client import Helm
from harness.kube.wait import wait_for
from harness.report import markdown
from harness.report.evidence import write_bundle
from harness.report.history import open_store, trend_view, trends
from harness.report.html import EVIDENCE_LINES, render
from harness.tools import require_binaries
from tests.conftest import TEST_LABELS
from tests.test_history import MiB, crafted
from tests.test_history import app as history_app
from tests.test_history import record as history_record
from tests.test_report_markdown import app, item, record, table_rows
from tests.test_reports import CHROMIUM, screenshot

UPGRADE = {
    "from": {"chart": "/work/charts/shop-0.1.0", "version": None},  # a local chart
    "to": {"chart": "/work/charts/shop-0.2.0", "version": "0.2.0"},
    "phase_reached": "rollback",
    "errors": {},
}
PODS = [f"  pod/web-{n}: web: waiting CrashLoopBackOff (restarts 6)" for n in range(12)]
WARNING = "latest warning: BackOff on Pod/web-3: Back-off restarting failed container"


class Cells(HTMLParser):
    """Per app row its cells (text and attributes); the failures' open and folded texts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.open_evidence: list[str] = []  # <pre class="evidence">, outside <details>
        self.folded: list[str] = []  # text inside <details>
        self.more: list[str] = []  # the "… N more lines" notes
        self.links: list[str] = []
        self.titles: list[str] = []
        self._row: str | None = None
        self._cell: dict[str, Any] | None = None
        self._in: list[str] = []  # what the text goes to
        self._details = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if found.get("title"):
            self.titles.append(found["title"])
        if tag == "tr" and found.get("class") == "app":
            self._row = found["data-app"]
            self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self._cell = {"text": "", **found}
            self.rows[self._row].append(self._cell)
        elif tag == "details":
            self._details += 1
        elif tag == "pre" and found.get("class") == "evidence" and not self._details:
            self.open_evidence.append("")
            self._in.append("evidence")
        elif tag == "div" and found.get("class") == "muted":
            self.more.append("")
            self._in.append("more")
        elif tag == "a":
            self.links.append(found.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "details":
            self._details -= 1
        elif tag in ("pre", "div") and self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data
        if self._details:
            self.folded.append(data)
        if self._in and self._in[-1] == "evidence":
            self.open_evidence[-1] += data
        elif self._in and self._in[-1] == "more":
            self.more[-1] += data


def cells(page: Cells, app_name: str) -> dict[str, dict[str, Any]]:
    columns = ["suite", "app", "chart", "version", "namespace", "status", "install", "ready"]
    return dict(zip(columns, page.rows[f"shop::{app_name}"], strict=False))


def upgraded_app(**fields: Any) -> dict[str, Any]:
    items = [item("install[from]"), item("ready@from"), item("upgrade"), item("ready@to")]
    items.append(item("ready@rollback", "failed", message="not ready after rollback"))
    return app("shop", items, upgrade=UPGRADE, chart="/work/charts/shop-0.2.0") | fields


def failed_ready_app(details: str, **fields: Any) -> dict[str, Any]:
    message = "web::ready: expected Deployment web ready within 3s; observed 0/12 ready"
    failed = item("ready", "failed", message=message, details=details, bundle="bundles/shop/web")
    row = app("web", [item("install"), failed], bundle="bundles/shop/web")
    # a ready failed: the record may still hold a time (a pod's, from the metric snapshot)
    return row | {"timings": {"install": 1.2}, "metrics": {"time_to_ready_s": 3.0}} | fields


def long_details() -> str:
    return "\n".join(
        [
            "web::ready: expected Deployment web ready within 3s; observed 0/12 ready",
            "pods:",
            *PODS,
            WARNING,
            "owners: team-web",
            "runbook: https://runbooks.example.org/web",
            "evidence: bundles/shop/web",
        ]
    )


# --- versions ------------------------------------------------------------------------------


def test_an_upgrade_run_shows_from_and_to_and_each_phase() -> None:
    plain = app("plain", [item("install"), item("ready")], chart_version="1.2.3")
    page = Cells(render(record([upgraded_app(), plain])))
    version = cells(page, "shop")["version"]["text"]
    # the "from" version of a local chart is what the first install installed
    assert version.startswith("0.1.0 → 0.2.0")
    assert "from: 0.1.0" in version and "to: 0.2.0" in version
    assert "rollback: 0.1.0 ✗" in version and "to: 0.2.0 ✗" not in version
    assert "failed: ready@rollback" in page.titles
    assert cells(page, "plain")["version"]["text"] == "1.2.3"


def test_an_upgrade_that_stopped_shows_the_phases_it_reached() -> None:
    refused = UPGRADE | {"phase_reached": "to", "errors": {"to": "UPGRADE FAILED: no"}}
    items = [item("install[from]"), item("ready@from"), item("upgrade", "failed")]
    shop = app("shop", items, upgrade=refused, chart_version="0.1.0")
    version = cells(Cells(render(record([shop]))), "shop")["version"]["text"]
    assert "from: 0.1.0" in version and "to: 0.2.0 ✗" in version
    assert "rollback" not in version
    assert "from: 0.1.0 ✗" not in version


def test_the_upgraded_version_comes_from_helms_answer() -> None:
    """The "to" version in the record is what ``helm upgrade`` installed (a local chart's
    is in its Chart.yaml only), so report.md and report.html show it, not ``?``."""
    assert installed_version({"chart": {"metadata": {"version": "0.2.0"}}}) == "0.2.0"
    assert installed_version({"chart": {"metadata": {}}}) is None
    assert installed_version({}) is None and installed_version(None) is None
    local = upgraded_app(
        upgrade=UPGRADE | {"to": {"chart": "/work/charts/shop-0.2.0", "version": "0.2.0"}}
    )
    rows = {row[1]: row for row in table_rows(markdown.render(record([local])))}
    assert rows["shop"][3] == "0.1.0 → 0.2.0"
    unknown = upgraded_app(upgrade=UPGRADE | {"to": {"chart": "/c", "version": None}})
    assert cells(Cells(render(record([unknown]))), "shop")["version"]["text"].startswith(
        "0.1.0 → ?"
    )


# --- time to ready, chart labels -----------------------------------------------------------


def test_no_time_to_ready_for_an_app_whose_ready_failed() -> None:
    good = app("good", [item("install"), item("ready")])
    html = render(record([failed_ready_app(long_details()), good]))
    page = Cells(html)
    assert cells(page, "web")["ready"]["text"] == ""
    assert cells(page, "good")["ready"]["text"] == "2.50 s"
    assert "shop/web ready: 3 s" not in html  # nor a bar in the timings chart
    assert "shop/good ready: 2.5 s" in html


def test_long_chart_refs_are_shown_in_full() -> None:
    ref = "oci://registry.example.org/platform/observability/charts/a-chart-with-a-long-name"
    page = Cells(render(record([app("long", [item("install")], chart=ref)])))
    chart = cells(page, "long")["chart"]
    assert chart["text"] == ref and chart["title"] == ref
    assert chart["class"] == "chart"  # the cell that wraps anywhere (see the page's CSS)
    local = Cells(render(record([app("web", [item("install")])])))
    assert cells(local, "web")["chart"]["text"] == "web"  # a local chart: its folder's name
    assert cells(local, "web")["chart"]["title"] == "/work/charts/web"


# --- the failure ---------------------------------------------------------------------------


def test_the_failure_shows_pods_and_warning_open_capped_with_the_rest_in_the_bundle() -> None:
    page = Cells(render(record([failed_ready_app(long_details())])))
    (shown,) = page.open_evidence
    lines = shown.splitlines()
    assert len(lines) == EVIDENCE_LINES
    assert lines[0] == "pods:" and lines[1] == PODS[0]
    assert WARNING in lines, "the warning event stays in sight however many pods there are"
    assert not any(line.startswith(("owners:", "runbook:", "evidence:")) for line in lines)
    hidden = len(PODS) + 2 - EVIDENCE_LINES
    assert f"… {hidden} more lines in bundles/shop/web/failure.txt" in page.more
    assert "bundles/shop/web/failure.txt" in page.links
    assert PODS[-1] in "".join(page.folded), "the full text stays on the page, folded"


def test_a_short_explanation_is_shown_whole_and_not_folded_again() -> None:
    details = "\n".join(
        [
            "web::ready: expected Deployment web ready within 3s; observed 0/12 ready",
            "pods:",
            PODS[0],
            WARNING,
            "evidence: bundles/shop/web",
        ]
    )
    page = Cells(render(record([failed_ready_app(details)])))
    assert page.open_evidence == [f"pods:\n{PODS[0]}\n{WARNING}"]
    assert not page.folded and not any("more line" in note for note in page.more)


def test_a_python_tests_traceback_stays_folded() -> None:
    test = {"id": "test_x.py::test_a", "outcome": "failed", "duration_s": 0.1}
    test |= {"message": "assert 1 == 2", "details": "def test_a():\n>   assert 1 == 2\nE  no"}
    page = Cells(render(record([], tests=[test])))
    assert page.open_evidence == [] and ">   assert 1 == 2" in "".join(page.folded)


# --- bundles -------------------------------------------------------------------------------


def test_a_bundle_has_no_empty_log_files_and_its_index_says_so(
    k8s: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    containers = [
        client.V1Container(name=name, image="example.invalid/app:1") for name in ("app", "quiet")
    ]
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="worker", labels={**TEST_LABELS, "app": "worker"}),
        spec=client.V1PodSpec(containers=containers),
    )
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(namespace, pod)
    wait_for(
        core.list_namespaced_pod,
        lambda pods: len(pods) == 1 and pods[0].get("status", {}).get("phase") == "Running",
        expected="pod worker Running",
        timeout=60,
        namespace=namespace,
    )
    set_pod_logs(
        k8s, namespace, {"app": "worker"}, "app", write_cri_log(tmp_path / "a.log", ["hello"])
    )
    empty = tmp_path / "quiet.log"
    empty.write_text("")
    set_pod_logs(k8s, namespace, {"app": "worker"}, "quiet", empty)
    helm = Helm(require_binaries(["helm"])["helm"])
    dest = tmp_path / "bundle"
    stale = dest / "logs" / "worker.quiet.log"
    stale.parent.mkdir(parents=True)
    stale.write_text("")  # an empty file an earlier bundle of the app left
    write_bundle(
        dest,
        api=k8s,
        helm=helm,
        namespace=namespace,
        release=f"r-{uuid.uuid4().hex[:6]}",
        manifest=[],
        failure="web::ready: expected ready",
    )
    assert (dest / "logs" / "worker.app.log").read_text() == "hello\n"
    logs = sorted(p.name for p in (dest / "logs").iterdir())
    assert logs == ["worker.app.log"], "no file for a container with no output"
    assert all(p.stat().st_size for p in (dest / "logs").iterdir())
    index = (dest / "index.txt").read_text().splitlines()
    quiet = [line for line in index if line.startswith("logs/worker.quiet.log")]
    assert len(quiet) == 1 and quiet[0].endswith("no output")
    assert any(line.startswith("logs/worker.app.log") and "pod worker" in line for line in index)
    assert any(line.startswith("pods.yaml ") for line in index)


# --- in a real browser ---------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_an_upgrade_run_and_a_failed_ready_render_in_headless_chromium(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup installs it where apt-get works)")
    ref = "oci://registry.example.org/platform/observability/charts/a-chart-with-a-long-name"
    apps = [
        failed_ready_app(long_details()),
        upgraded_app(),
        app("long", [item("install"), item("ready")], chart=ref),
    ]
    page = tmp_path / "report.html"
    page.write_text(render(record(apps)))
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path)
    data = png.read_bytes()
    assert png_size(data) == (1280, 2000) and len(data) > 20_000


def decoded_rows(data: bytes, limit: int) -> tuple[list[bytes], int]:
    """The first ``limit`` rows of an 8-bit RGB or RGBA PNG (not interlaced) as raw pixel
    bytes, and the bytes per pixel: the PNG filters undone (stdlib only)."""
    pos, idat, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompressobj().decompress(b"".join(idat), (stride + 1) * limit)
    # "Up" (most rows) byte by byte without carries, on whole rows as integers.
    low, high = (int.from_bytes(bytes([b]) * stride, "big") for b in (0x7F, 0x80))
    prev, rows = bytes(stride), []
    for y in range(min(height, limit)):
        kind, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        if kind == 2:
            a, b = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            line = (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big")
        elif kind:
            cur = bytearray(line)
            for i in range(stride):
                left, up = (cur[i - bpp] if i >= bpp else 0), prev[i]
                if kind == 1:
                    cur[i] = (cur[i] + left) & 255
                elif kind == 3:
                    cur[i] = (cur[i] + (left + up) // 2) & 255
                else:  # Paeth
                    corner = prev[i - bpp] if i >= bpp else 0
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                    cur[i] = (cur[i] + best) & 255
            line = bytes(cur)
        rows.append(line)
        prev = line
    return rows, bpp


def pixels_of(rows: list[bytes], bpp: int, colour: str) -> int:
    """How many pixels of ``rows`` are exactly ``colour`` (#rrggbb)."""
    wanted, count = bytes.fromhex(colour.lstrip("#")), 0
    for row in rows:
        at = row.find(wanted)
        while at >= 0:
            count += at % bpp == 0
            at = row.find(wanted, at + 1)
    return count


def test_a_report_with_trends_renders_its_strips_in_headless_chromium(tmp_path: Path) -> None:
    """A run with a history of six: the trend strip is painted (the outcome squares and
    the amber bars of api's regressions are on the screen), and the same page without a
    history has none of that amber."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup installs it where apt-get works)")
    store = crafted(open_store(tmp_path / "h.db"))
    run = history_record(
        "r6",
        6,
        history_app("web", "failed", failing=("shop::web::http",), version="3.0.0"),
        history_app("db", "failed", failing=("shop::db::ready",)),
        history_app("api", ready=30, memory=400 * MiB),
    )
    shots = {}
    for name, trends_of_run in [("with", trend_view(trends(store.runs()))), ("without", None)]:
        page = tmp_path / f"{name}.html"
        page.write_text(render(run, trends=trends_of_run))
        png = tmp_path / f"{name}.png"
        screenshot(page, png, tmp_path)
        data = png.read_bytes()
        assert png_size(data) == (1280, 2000) and len(data) > 20_000
        shots[name] = decoded_rows(data, 1000)  # the strip is near the top
    amber, red = "#bf8700", "#cf222e"  # regressions and flaky items; failures
    # api's last time-to-ready and memory bars: 10 x 22 px each, in full.
    assert pixels_of(*shots["with"], amber) >= 2 * 10 * 22
    assert pixels_of(*shots["without"], amber) == 0
    # Seven failed runs' squares (10 x 12 px) in the strips: web 3, db 3 (plus r6 of web).
    assert pixels_of(*shots["with"], red) >= pixels_of(*shots["without"], red) + 6 * 10 * 12
