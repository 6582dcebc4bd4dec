"""The pytest plugin (entry point ``pytest11: helm_harness``): options, run state, fixtures.

Options are parsed and checked once, in ``pytest_configure``, into a :class:`RunState` kept
in the config stash; fixtures read it from there. This module wires; the work is done by
``harness.clusters``, ``harness.helm`` and friends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.units import parse_duration

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from harness.clusters.base import ClusterInfo, ClusterProvider
    from harness.helm import Helm


@dataclass
class RunState:
    """Everything the options decided, for the whole run."""

    run_id: str
    cluster: str
    cluster_name: str
    cluster_config: Path | None
    kubeconfig: Path | None
    context: str | None
    reuse_cluster: bool
    keep_cluster: bool
    nodes: int
    pod_startup: float
    pod_jitter: float
    helm: str | None
    provider: ClusterProvider | None = None
    info: ClusterInfo | None = None
    notes: list[str] = field(default_factory=list)


run_state_key = pytest.StashKey[RunState]()


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise pytest.UsageError(f"no such file: {text}")
    return path


def _count(text: str) -> int:
    if not text.isdigit():
        raise pytest.UsageError(f"not a count: {text!r}")
    return int(text)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("helm-harness", "helm-harness: clusters and charts")
    group.addoption(
        "--cluster",
        dest="harness_cluster",
        default="auto",
        metavar="PROVIDER",
        choices=["auto", "kwok", "existing"],
        help="cluster provider: auto (default), kwok, existing",
    )
    group.addoption(
        "--cluster-name",
        dest="harness_cluster_name",
        metavar="NAME",
        help="cluster name (default: hh-<run id>; helm-harness with --reuse-cluster)",
    )
    group.addoption(
        "--cluster-config",
        dest="harness_cluster_config",
        metavar="FILE",
        type=_existing_file,
        help="provider config (kwokctl -c)",
    )
    group.addoption(
        "--kubeconfig",
        dest="harness_kubeconfig",
        metavar="FILE",
        type=_existing_file,
        help="kubeconfig of an existing cluster",
    )
    group.addoption(
        "--context", dest="harness_context", metavar="NAME", help="context in --kubeconfig"
    )
    group.addoption(
        "--reuse-cluster",
        dest="harness_reuse_cluster",
        action="store_true",
        help="use the named cluster if it exists, create it if not, never delete it",
    )
    group.addoption(
        "--keep-cluster",
        dest="harness_keep_cluster",
        action="store_true",
        help="do not delete the cluster at the end",
    )
    group.addoption(
        "--cluster-nodes",
        dest="harness_nodes",
        default=1,
        type=_count,
        metavar="N",
        help="simulated nodes of a kwok cluster (default 1)",
    )
    group.addoption(
        "--kwok-pod-startup",
        dest="harness_pod_startup",
        default="2s",
        type=_duration,
        metavar="DURATION",
        help="kwok: delay before a pod turns Ready (default 2s; 0 for fastest)",
    )
    group.addoption(
        "--kwok-pod-jitter",
        dest="harness_pod_jitter",
        default="2s",
        type=_duration,
        metavar="DURATION",
        help="kwok: up to this much extra random delay (default 2s)",
    )
    group.addoption(
        "--helm",
        dest="harness_helm",
        metavar="PATH",
        help="helm binary (default: helm on PATH, else the harness's cache)",
    )


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    kubeconfig = getattr(opt, "harness_kubeconfig", None)
    cluster = opt.harness_cluster
    if cluster == "existing" and kubeconfig is None:
        raise pytest.UsageError("--cluster existing needs --kubeconfig FILE")
    if opt.harness_reuse_cluster and opt.harness_keep_cluster:
        raise pytest.UsageError("--reuse-cluster already keeps the cluster; drop --keep-cluster")
    run_id = uuid.uuid4().hex[:8]
    name = opt.harness_cluster_name or (
        "helm-harness" if opt.harness_reuse_cluster else f"hh-{run_id}"
    )
    config.stash[run_state_key] = RunState(
        run_id=run_id,
        cluster=cluster,
        cluster_name=name,
        cluster_config=opt.harness_cluster_config,
        kubeconfig=kubeconfig,
        context=opt.harness_context,
        reuse_cluster=opt.harness_reuse_cluster,
        keep_cluster=opt.harness_keep_cluster,
        nodes=opt.harness_nodes,
        pod_startup=opt.harness_pod_startup,
        pod_jitter=opt.harness_pod_jitter,
        helm=opt.harness_helm,
    )


def _state(request: pytest.FixtureRequest) -> RunState:
    state = request.config.stash.get(run_state_key, None)
    if state is None:
        raise pytest.UsageError("helm-harness was not configured (is the plugin disabled?)")
    return state


@pytest.fixture(scope="session")
def harness_cluster(request: pytest.FixtureRequest) -> Iterator[ClusterInfo]:
    """The run's cluster (created, reused or given), deleted at the end if this run made it."""
    from harness.clusters import ClusterSpec, acquire, get_provider, release
    from harness.errors import HarnessError

    state = _state(request)
    try:
        provider = get_provider(
            state.cluster,
            kubeconfig=state.kubeconfig,
            context=state.context,
            pod_startup=state.pod_startup,
            pod_jitter=state.pod_jitter,
        )
        spec = ClusterSpec(name=state.cluster_name, config=state.cluster_config, nodes=state.nodes)
        info = acquire(provider, spec, reuse=state.reuse_cluster)
    except HarnessError as exc:
        pytest.fail(f"helm-harness could not get a cluster: {exc}", pytrace=False)
    state.provider, state.info = provider, info
    try:
        yield info
    finally:
        release(provider, info, keep=state.keep_cluster or state.reuse_cluster)


@pytest.fixture(scope="session")
def k8s(harness_cluster: ClusterInfo) -> Iterator[ApiClient]:
    """A Kubernetes API client for the run's cluster."""
    from harness.kube import api_client

    with api_client(harness_cluster.kubeconfig, harness_cluster.context) as api:
        yield api


@pytest.fixture(scope="session")
def helm(request: pytest.FixtureRequest, harness_cluster: ClusterInfo) -> Helm:
    """A Helm client bound to the run's cluster."""
    from harness.errors import HarnessError
    from harness.helm import Helm
    from harness.tools import find_helm

    try:
        binary = find_helm(_state(request).helm)
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    return Helm(binary, kubeconfig=harness_cluster.kubeconfig, context=harness_cluster.context)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(run_state_key, None)
    if state is None:
        return []
    return [f"helm-harness: run {state.run_id}, cluster {state.cluster}:{state.cluster_name}"]
