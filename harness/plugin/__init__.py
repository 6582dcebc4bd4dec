"""The pytest plugin (entry point ``pytest11: helm_harness``): options, run state, fixtures,
and the hooks that turn suite files into items.

Options are parsed and checked once, in ``pytest_configure``, into a
:class:`~harness.plugin.state.HarnessSession` kept in the config stash; fixtures and items read
it from there. This module wires; the work is done elsewhere in ``harness``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.plugin.state import HarnessSession, RunOptions
from harness.units import parse_duration

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from harness.checks.context import AppContext
    from harness.clusters.base import ClusterInfo
    from harness.helm.client import Helm

session_key = pytest.StashKey[HarnessSession]()
APP_RECORD = "helm-harness.app"  # user property holding an app's JSON record
WORKER_RUN_ID = "helm_harness_run_id"  # xdist workerinput keys
WORKER_CLUSTER = "helm_harness_cluster"
WORKER_CLUSTER_ERROR = "helm_harness_cluster_error"
WORKER_NOTES = "helm_harness_notes"  # xdist workeroutput key: what a worker removed
workers_key = pytest.StashKey[list[Any]]()  # the xdist controller's worker nodes


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


def _k8s_version(text: str) -> str:
    from harness.clusters.registry import normalize_k8s_version

    try:
        return normalize_k8s_version(text)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("helm-harness", "helm-harness: clusters and charts")
    add = group.addoption
    add(
        "--cluster",
        dest="harness_cluster",
        default="auto",
        metavar="PROVIDER",
        choices=["auto", "kind", "k3d", "k3s", "kwok", "existing"],
        help="cluster provider: auto (default), kind, k3d, k3s, kwok, existing",
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
        "--k8s-version",
        dest="harness_k8s_version",
        metavar="VERSION",
        type=_k8s_version,
        help="Kubernetes version of a created cluster, e.g. 1.36 or v1.36.4 (kind, k3d, k3s)",
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
        "--kind-image",
        dest="harness_kind_image",
        default=os.environ.get("HELM_HARNESS_KIND_IMAGE") or None,
        metavar="IMAGE",
        help="kind node image of a created cluster (default: $HELM_HARNESS_KIND_IMAGE, else "
        "the kind config's nodes[].image, else from --k8s-version, else kind's own)",
    )
    add(
        "--load-images",
        dest="harness_load_images",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="kind, k3d: before an app installs, load the images its manifests name from the "
        "local Docker engine into the cluster (default: yes)",
    )
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
        "--cluster-timeout",
        dest="harness_cluster_timeout",
        default="2m",
        type=_duration,
        metavar="DURATION",
        help="how long a new cluster may take to become usable (default 2m)",
    )
    add(
        "--metrics-wait",
        dest="harness_metrics_wait",
        default=os.environ.get("HELM_HARNESS_METRICS_WAIT", "20s"),
        type=_duration,
        metavar="DURATION",
        help="how long an app's metric snapshot may wait for figures of new pods "
        "(default 20s, or $HELM_HARNESS_METRICS_WAIT; 0: take what is there)",
    )
    add(
        "--shard",
        dest="harness_shard",
        metavar="K/N",
        help="run the K-th of N disjoint parts (whole dependency groups), e.g. 2/4",
    )
    add(
        "--upgrade",
        dest="harness_upgrade",
        action="store_true",
        help="upgrade runs: install each app's upgrade.from, check, upgrade, check, "
        "roll back, check",
    )
    add(
        "--cluster-per-worker",
        dest="harness_cluster_per_worker",
        action="store_true",
        help="with -n N: a cluster per xdist worker instead of one shared by all",
    )
    add(
        "--report-dir",
        dest="harness_report_dir",
        default="harness-report",
        metavar="DIR",
        help="where reports and failure bundles go (default: harness-report)",
    )


def _check_report_dir(path: Path) -> None:
    """--report-dir must be a folder this run can write, or one it can make: found at the
    start, not after the whole run (exit code 4). Nothing is created here (a run that uses
    no suite writes no report)."""
    for existing in [path, *path.absolute().parents]:
        if existing.exists():
            break
    if not existing.is_dir():
        where = "is" if existing == path else f"lies under {existing}, which is"
        raise pytest.UsageError(f"--report-dir {path}: {where} a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "cannot be written" if existing == path else f"cannot be made in {existing}"
        raise pytest.UsageError(f"--report-dir {path}: {what} (permission denied)")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Items of one app (and of apps joined by dependsOn) run on one xdist worker."""
    from harness.plugin.xdist import make_scheduler

    return make_scheduler(config, log)


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    kubeconfig = getattr(opt, "harness_kubeconfig", None)
    if opt.harness_cluster == "existing" and kubeconfig is None:
        raise pytest.UsageError("--cluster existing needs --kubeconfig FILE")
    if opt.harness_reuse_cluster and opt.harness_keep_cluster:
        raise pytest.UsageError("--reuse-cluster already keeps the cluster; drop --keep-cluster")
    if opt.harness_shard:
        from harness.plugin.shard import Shard

        Shard.parse(opt.harness_shard)
    if opt.harness_cluster == "kwok" and opt.harness_k8s_version:
        from harness.clusters.kwok import check_k8s_version
        from harness.errors import UsageError

        try:
            check_k8s_version(opt.harness_k8s_version)
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from exc
    if not hasattr(config, "workerinput"):
        _check_report_dir(Path(opt.harness_report_dir))
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    run_id = workerinput.get(WORKER_RUN_ID) or uuid.uuid4().hex[:8]
    name = opt.harness_cluster_name or (
        "helm-harness" if opt.harness_reuse_cluster else f"hh-{run_id}"
    )
    if opt.harness_cluster_per_worker and "workerid" in workerinput:
        name = f"{name}-{workerinput['workerid']}"
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
        cluster_per_worker=opt.harness_cluster_per_worker,
        k8s_version=opt.harness_k8s_version,
        cluster_timeout=opt.harness_cluster_timeout,
        metrics_wait=opt.harness_metrics_wait,
        kind_image=opt.harness_kind_image,
        load_images=opt.harness_load_images,
    )
    harness = config.stash[session_key] = HarnessSession(options)
    if WORKER_CLUSTER in workerinput:
        harness.adopt(workerinput[WORKER_CLUSTER])
    harness.cluster_error = workerinput.get(WORKER_CLUSTER_ERROR)
    if not hasattr(config, "workerinput"):  # reports are written by the controller only
        from harness.report.plugin import ReportPlugin

        config.pluginmanager.register(ReportPlugin(config), "helm-harness-reports")
    _terminate_like_interrupt()


def _terminate_like_interrupt() -> None:
    """SIGTERM (a CI job cancelled, ``kill``) cleans up like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: make the cluster once, before the workers start, and hand it to
    each of them (unless every worker is to have its own)."""
    from harness.errors import HarnessError

    harness = session_of(node.config)
    node.config.stash.setdefault(workers_key, []).append(node)
    node.workerinput[WORKER_RUN_ID] = harness.options.run_id
    if harness.options.cluster_per_worker:
        return
    try:
        if harness.cluster_error is None:
            node.workerinput[WORKER_CLUSTER] = harness.share()
    except HarnessError as exc:
        harness.cluster_error = str(exc)
    if harness.cluster_error is not None:
        node.workerinput[WORKER_CLUSTER_ERROR] = harness.cluster_error


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    from harness.plugin.items import collect_file

    return collect_file(file_path, parent)


@pytest.hookimpl(tryfirst=True)  # before xdist renames nodeids by group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from harness.plugin.shard import Shard, select

    text = config.getoption("harness_shard", None)
    if not text:
        return
    kept, dropped = select(items, Shard.parse(text))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    errors = session_of(session.config).suite_errors
    if errors:
        raise pytest.UsageError("invalid suite file(s):\n" + "\n".join(errors))
    _check_name_collisions(session)
    _check_clashes(session)


def _check_name_collisions(session: pytest.Session) -> None:
    """Two suite files whose apps would share a namespace: a usage error naming both."""
    from harness.plugin.items import HarnessItem
    from harness.suite.model import name_collisions

    suites = {str(i.suite.path): i.suite for i in session.items if isinstance(i, HarnessItem)}
    problems = name_collisions(list(suites.values()))
    if problems:
        raise pytest.UsageError("suites that cannot run together:\n" + "\n".join(problems))


def _check_clashes(session: pytest.Session) -> None:
    """Two apps of the run rendering the same cluster-scoped object: a usage error."""
    from harness.deploy.clashes import find_clashes
    from harness.errors import HarnessError, MissingBinariesError
    from harness.plugin.items import HarnessItem
    from harness.tools import find_helm

    apps = {}
    for item in session.items:
        if isinstance(item, HarnessItem):
            apps[(str(item.suite.path), item.app.name)] = (item.suite, item.app)
    if len(apps) < 2:
        return
    try:
        helm = find_helm(session_of(session.config).options.helm)
    except MissingBinariesError:
        return  # the items themselves will say helm is missing
    try:
        clashes = find_clashes(helm, apps.values())
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if clashes:
        raise pytest.UsageError("apps that cannot share the cluster:\n" + "\n".join(clashes))


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    from harness.plugin.items import HarnessItem

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
    from harness.plugin.items import dependency_groups

    return f"{run.suite.name}::{dependency_groups(run.suite)[run.app.name]}"


@pytest.hookimpl(trylast=True)  # on the xdist controller: after its workers have ended
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    harness = config.stash.get(session_key, None)
    if harness is None:
        return
    workers = config.stash.get(workers_key, [])
    for node in workers:  # what the workers removed, to show here
        harness.notes.extend(getattr(node, "workeroutput", {}).get(WORKER_NOTES, []))
    if workers and not harness.options.cluster_per_worker:
        harness.notes.extend(harness.remove_leftover_namespaces())
    harness.notes.extend(harness.close())
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_NOTES] = list(harness.notes)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run interrupted (or failing) before its session started gets no
    ``pytest_sessionfinish``: the xdist controller makes the cluster in
    ``pytest_sessionstart``. Clean up here then, and say what was removed."""
    harness = config.stash.get(session_key, None)
    if harness is None or harness.closed:
        return
    harness.notes.extend(harness.close())
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        pytest_terminal_summary(reporter)


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
