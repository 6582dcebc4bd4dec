"""The pytest plugin (entry point ``pytest11: helm_harness``): options, run state, fixtures,
and the hooks that turn suite files into items.

Options are parsed and checked once, in ``pytest_configure``, into a
:class:`~harness.session.HarnessSession` kept in the config stash; fixtures and items read
it from there. This module wires; the work is done elsewhere in ``harness``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.session import HarnessSession, RunOptions
from harness.units import parse_duration

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from harness.checks.context import AppContext
    from harness.clusters.base import ClusterInfo
    from harness.helm import Helm

session_key = pytest.StashKey[HarnessSession]()
APP_RECORD = "helm-harness.app"  # user property holding an app's JSON record


def session_of(config: pytest.Config) -> HarnessSession:
    session = config.stash.get(session_key, None)
    if session is None:
        raise pytest.UsageError("helm-harness was not configured (is the plugin disabled?)")
    return session


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
    add = group.addoption
    add(
        "--cluster",
        dest="harness_cluster",
        default="auto",
        metavar="PROVIDER",
        choices=["auto", "kwok", "existing"],
        help="cluster provider: auto (default), kwok, existing",
    )
    add(
        "--cluster-name",
        dest="harness_cluster_name",
        metavar="NAME",
        help="cluster name (default: hh-<run id>; helm-harness with --reuse-cluster)",
    )
    add(
        "--cluster-config",
        dest="harness_cluster_config",
        metavar="FILE",
        type=_existing_file,
        help="provider config (kwokctl -c)",
    )
    add(
        "--kubeconfig",
        dest="harness_kubeconfig",
        metavar="FILE",
        type=_existing_file,
        help="kubeconfig of an existing cluster",
    )
    add("--context", dest="harness_context", metavar="NAME", help="context in --kubeconfig")
    add(
        "--reuse-cluster",
        dest="harness_reuse_cluster",
        action="store_true",
        help="use the named cluster if it exists, create it if not, never delete it",
    )
    add(
        "--keep-cluster",
        dest="harness_keep_cluster",
        action="store_true",
        help="do not delete the cluster at the end",
    )
    add(
        "--keep-on-failure",
        dest="harness_keep_on_failure",
        action="store_true",
        help="keep the namespaces (and the cluster) of failed apps for inspection",
    )
    add(
        "--cluster-nodes",
        dest="harness_nodes",
        default=1,
        type=_count,
        metavar="N",
        help="simulated nodes of a kwok cluster (default 1)",
    )
    add(
        "--kwok-pod-startup",
        dest="harness_pod_startup",
        default="2s",
        type=_duration,
        metavar="DURATION",
        help="kwok: delay before a pod turns Ready (default 2s; 0: none)",
    )
    add(
        "--kwok-pod-jitter",
        dest="harness_pod_jitter",
        default="2s",
        type=_duration,
        metavar="DURATION",
        help="kwok: up to this much extra random delay (default 2s)",
    )
    add(
        "--helm",
        dest="harness_helm",
        metavar="PATH",
        help="helm binary (default: helm on PATH, else the harness's cache)",
    )
    add(
        "--report-dir",
        dest="harness_report_dir",
        default="harness-report",
        metavar="DIR",
        help="where reports and failure bundles go (default: harness-report)",
    )


@pytest.hookimpl(trylast=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # Items of one app (and of apps joined by dependsOn) must run on one xdist worker.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    kubeconfig = getattr(opt, "harness_kubeconfig", None)
    if opt.harness_cluster == "existing" and kubeconfig is None:
        raise pytest.UsageError("--cluster existing needs --kubeconfig FILE")
    if opt.harness_reuse_cluster and opt.harness_keep_cluster:
        raise pytest.UsageError("--reuse-cluster already keeps the cluster; drop --keep-cluster")
    run_id = uuid.uuid4().hex[:8]
    name = opt.harness_cluster_name or (
        "helm-harness" if opt.harness_reuse_cluster else f"hh-{run_id}"
    )
    options = RunOptions(
        run_id=run_id,
        cluster=opt.harness_cluster,
        cluster_name=name,
        cluster_config=opt.harness_cluster_config,
        kubeconfig=kubeconfig,
        context=opt.harness_context,
        reuse_cluster=opt.harness_reuse_cluster,
        keep_cluster=opt.harness_keep_cluster,
        keep_on_failure=opt.harness_keep_on_failure,
        nodes=opt.harness_nodes,
        pod_startup=opt.harness_pod_startup,
        pod_jitter=opt.harness_pod_jitter,
        helm=opt.harness_helm,
        report_dir=Path(opt.harness_report_dir).absolute(),
    )
    config.stash[session_key] = HarnessSession(options)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    from harness.collect import collect_file

    return collect_file(file_path, parent)


def pytest_collection_finish(session: pytest.Session) -> None:
    errors = session_of(session.config).suite_errors
    if errors:
        raise pytest.UsageError("invalid suite file(s):\n" + "\n".join(errors))


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    from harness.collect import HarnessItem

    if not isinstance(item, HarnessItem):
        return
    if isinstance(nextitem, HarnessItem) and nextitem.group == item.group:
        return
    harness = session_of(item.config)
    if "deployer" not in harness.__dict__:
        return
    runs = [r for r in harness.deployer.runs.values() if _group_of(r) == item.group]
    for run in runs:
        harness.snapshot_metrics(run)
        # The app's record rides on this item's teardown report to the controller.
        item.user_properties.append((APP_RECORD, json.dumps(run.summary())))
    for note in harness.finish_group(runs):
        harness.notes.append(note)


def _group_of(run: Any) -> str:
    from harness.collect import dependency_groups

    return f"{run.suite.name}::{dependency_groups(run.suite)[run.app.name]}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    harness = session.config.stash.get(session_key, None)
    if harness is not None:
        harness.notes.extend(harness.close())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    harness = terminalreporter.config.stash.get(session_key, None)
    if harness is None or not harness.notes:
        return
    terminalreporter.section("helm-harness")
    for note in harness.notes:
        terminalreporter.write_line(note)


def pytest_report_header(config: pytest.Config) -> list[str]:
    harness = config.stash.get(session_key, None)
    if harness is None:
        return []
    opts = harness.options
    return [f"helm-harness: run {opts.run_id}, cluster {opts.cluster}:{opts.cluster_name}"]


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
    from harness.suite import load_suite

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
