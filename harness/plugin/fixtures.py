"""The fixtures the plugin offers test modules: the run's cluster, its API and Helm
clients, and an app of a suite installed on demand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.plugin.state import HarnessSession, session_of

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from harness.checks.context import AppContext
    from harness.clusters.base import ClusterInfo
    from harness.helm.client import Helm


def _cluster_or_fail(harness: HarnessSession) -> ClusterInfo:
    from harness.errors import HarnessError

    try:
        return harness.cluster()
    except HarnessError as exc:
        pytest.fail(f"helm-harness could not get a cluster: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def harness_cluster(request: pytest.FixtureRequest) -> ClusterInfo:
    """The run's cluster (created, reused or given); removed at the end of the run if this
    run created it and nobody asked to keep it."""
    return _cluster_or_fail(session_of(request.config))


@pytest.fixture(scope="session")
def k8s(request: pytest.FixtureRequest, harness_cluster: ClusterInfo) -> ApiClient:
    """A Kubernetes API client for the run's cluster."""
    return session_of(request.config).api


@pytest.fixture(scope="session")
def helm(request: pytest.FixtureRequest, harness_cluster: ClusterInfo) -> Helm:
    """A Helm client bound to the run's cluster."""
    from harness.errors import HarnessError

    try:
        return session_of(request.config).helm
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def harness_app(
    request: pytest.FixtureRequest, harness_cluster: ClusterInfo
) -> Callable[[str | Path, str], AppContext]:
    """``harness_app(suite_file, app_name)``: that app of the suite, installed (once per run)
    — its release, namespace, rendered objects and clients."""
    from harness.suite.model import load_suite

    harness = session_of(request.config)

    def get(suite_file: str | Path, app_name: str) -> AppContext:
        path = Path(suite_file)
        if not path.is_absolute():
            path = Path(request.path).parent / path
        suite = load_suite(path)
        app = next((a for a in suite.apps if a.name == app_name), None)
        if app is None:
            raise pytest.UsageError(f"{path}: no app named {app_name!r}")
        run = harness.deployer.ensure_installed(suite, app)
        assert run.ctx is not None
        return run.ctx

    return get
