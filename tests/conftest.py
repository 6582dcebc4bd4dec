"""Fixtures shared by the project's tests. Tests that talk to Kubernetes use the plugin's
own ``harness_cluster`` (a real kwok cluster for the session) and get a namespace each."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness import tools

# pytester moves HOME for the runs it makes; pin the binary cache and kwok's workdir so
# those runs, and this process's checks on them, see the same clusters and binaries.
os.environ.setdefault("HELM_HARNESS_CACHE", str(tools.cache_dir()))
os.environ.setdefault("KWOK_WORKDIR", str(Path.home() / ".kwok"))

REPO = Path(__file__).resolve().parent.parent
FIXTURE_CHARTS = REPO / "fixtures" / "charts"
TEST_LABELS = {"app.kubernetes.io/managed-by": "helm-harness-tests"}


@pytest.fixture
def namespace(k8s: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, labelled so leftovers can be found, deleted after."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(k8s)
    labels = {**TEST_LABELS, "helm-harness.io/test": request.node.name[:63].strip("-_.[]") or "t"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    yield name
    core.delete_namespace(name)


@pytest.fixture
def chart_dir() -> Path:
    return FIXTURE_CHARTS / "web"


@pytest.fixture
def install_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """``install_app(chart, values=..., checks=..., timeout=...)``: the chart installed as a
    one-app suite through the harness's own Deployer in a fresh namespace on the session
    cluster; returns its AppContext. Everything is removed after the test."""
    from harness.deploy.deployer import Deployer
    from harness.plugin.state import session_of
    from harness.suite.model import App, ChartRef, Suite

    harness = session_of(request.config)
    harness.cluster()
    deployer = Deployer(
        run_id=uuid.uuid4().hex[:6],
        api=harness.api,
        helm=harness.helm,
        simulated=harness.cluster().provider == "kwok",
    )

    def install(chart: str | Path, *, name: str = "", timeout: float = 60, **fields: Any) -> Any:
        name = name or Path(chart).name
        chart_path = Path(chart)
        if not chart_path.is_absolute() and not str(chart).startswith("oci://"):
            chart_path = FIXTURE_CHARTS / chart_path
        app = App(
            name=name,
            source=ChartRef(chart=str(chart_path)),
            release=name,
            namespace=None,
            timeout=timeout,
            **fields,
        )
        suite = Suite(path=tmp_path / "t.suite.yaml", name="t", apps=(app,))
        run = deployer.ensure_installed(suite, app)
        return run.ctx

    yield install
    for run in deployer.runs.values():
        deployer.finalize(run, keep=False)


def tiny_chart(folder: Path, name: str, template: str) -> Path:
    """A one-template chart written for a test."""
    chart = folder / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (chart / "templates" / f"{name}.yaml").write_text(template)
    return chart
