"""Two harness runs at once asking for the same cluster with ``--reuse-cluster``: one
creates it, the other waits and reuses it (never two creates racing, never a half-made
cluster), both pass, and the cluster stays (reuse never deletes)."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

from harness.clusters.kwok import KwokProvider
from tests.conftest import FIXTURE_CHARTS
from tests.test_interrupts import Run, assert_cluster_gone

PROBE = """
import json
from pathlib import Path

def test_probe(harness_cluster):
    record = {"name": harness_cluster.name, "created": harness_cluster.created}
    Path("probe.json").write_text(json.dumps(record))
"""


def run_dir(folder: Path) -> Path:
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_probe.py").write_text(textwrap.dedent(PROBE))
    (folder / "web.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - {{name: web, chart: {FIXTURE_CHARTS / 'web'}, checks: [{{ready: {{}}}}]}}\n"
    )
    return folder


def test_two_runs_reusing_one_cluster_name(tmp_path: Path) -> None:
    name = f"hh-conc-{uuid.uuid4().hex[:6]}"
    args = ("--cluster", "kwok", "--cluster-name", name, "--reuse-cluster")
    folders = [run_dir(tmp_path / "a"), run_dir(tmp_path / "b")]
    runs = [Run(folder, *args, "--kwok-pod-startup=0") for folder in folders]
    try:
        codes = [run.finish(240) for run in runs]
        outputs = "\n\n".join(run.output for run in runs)
        assert codes == [0, 0], outputs
        probes = [json.loads((folder / "probe.json").read_text()) for folder in folders]
        assert {probe["name"] for probe in probes} == {name}
        assert sorted(probe["created"] for probe in probes) == [False, True], outputs
        for run in runs:
            assert "web::ready PASSED" in run.output
            assert f"deleted kwok cluster {name}" not in run.output
        assert KwokProvider().exists(name)  # reuse never deletes
    finally:
        for run in runs:
            run.kill()
        KwokProvider().delete(name)
    assert_cluster_gone(name)
