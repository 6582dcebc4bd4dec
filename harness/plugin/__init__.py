"""The pytest plugin (entry point ``pytest11: helm_harness``): options, run state, fixtures,
and the hooks that turn suite files into items.

Options are parsed and checked once, in ``pytest_configure``, into a
:class:`~harness.plugin.state.HarnessSession` kept in the config stash; fixtures and items read
it from there. This module wires; the work is done elsewhere in ``harness``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.plugin.fixtures import harness_app, harness_cluster, helm, k8s  # offered here
from harness.plugin.options import add_options, resolve
from harness.plugin.state import (
    APP_RECORD,
    WORKER_CLUSTER,
    WORKER_CLUSTER_ERROR,
    WORKER_NOTES,
    WORKER_RUN_ID,
    HarnessSession,
    RunOptions,
    session_key,
    session_of,
    workers_key,
)

__all__ = ["harness_app", "harness_cluster", "helm", "k8s"]  # the fixtures


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


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


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The options' values from the environment and ini files, before any plugin's
    ``pytest_configure`` (a conftest's included) reads them."""
    resolve(config)


def pytest_configure(config: pytest.Config) -> None:
    resolve(config)  # again, for runs that skip pytest_cmdline_main; a no-op otherwise
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
        metrics_source=opt.harness_metrics_source,
        kind_image=opt.harness_kind_image,
        load_images=opt.harness_load_images,
        api_retry=opt.harness_api_retry,
        max_parallel=opt.harness_max_parallel,
        notify=tuple(opt.harness_notify or ()),
        notify_timeout=opt.harness_notify_timeout,
        history=opt.harness_history,
        lint=opt.harness_lint or opt.harness_lint_only,
        lint_only=opt.harness_lint_only,
        upgrade_from_git_base=opt.harness_upgrade_from_git_base,
    )
    harness = config.stash[session_key] = HarnessSession(options)
    if WORKER_CLUSTER in workerinput:
        harness.adopt(workerinput[WORKER_CLUSTER])
    harness.cluster_error = workerinput.get(WORKER_CLUSTER_ERROR)
    if not hasattr(config, "workerinput"):  # reports (and alerts) come from the controller
        from harness.report.plugin import ReportPlugin

        reports = ReportPlugin(config)
        config.pluginmanager.register(reports, "helm-harness-reports")
        if options.notify:
            from harness.report.notify import Notifier

            notifier = Notifier(reports, options.notify, options.notify_timeout)
            config.pluginmanager.register(notifier, "helm-harness-notify")
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
    from harness.plugin import preflight
    from harness.plugin.xdist import WORKER_PLAN, plan_path

    harness = session_of(node.config)
    node.config.stash.setdefault(workers_key, []).append(node)
    node.workerinput[WORKER_RUN_ID] = harness.options.run_id
    node.workerinput[preflight.CONTROLLER_CHECKS] = preflight.runs_on_controller(node.config)
    node.workerinput[WORKER_PLAN] = str(plan_path(node.config))  # written at scheduling
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
    if file_path.suffix not in (".yaml", ".yml"):
        return None  # Python test modules of any project in the environment: nothing to load
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


@pytest.hookimpl(tryfirst=True)  # before xdist starts workers (and a cluster for them)
def pytest_sessionstart(session: pytest.Session) -> None:
    from harness.plugin import preflight

    if preflight.runs_on_controller(session.config):
        preflight.check_suite_files(session.config)


def pytest_collection_finish(session: pytest.Session) -> None:
    from harness.plugin import preflight

    if not preflight.checked_by_controller(session.config):
        preflight.check_collected(session)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """Before the first item: start installing apps ahead of their items (see
    :mod:`harness.plugin.prefetch`)."""
    from harness.plugin.items import apps_in_order, start_prefetch

    if not session.config.option.collectonly and session.items:
        worker = None  # an xdist worker's apps to come (its queue), if it can know them
        if hasattr(session.config, "workerinput"):
            from harness.plugin.xdist import worker_queue

            worker = worker_queue(session, apps_in_order)
        start_prefetch(session, worker)
    return (yield)


def pytest_runtest_setup(item: pytest.Item) -> None:
    prefetcher = session_of(item.config).prefetcher
    if prefetcher is not None and hasattr(item, "app"):
        prefetcher.reached(item.suite, item.app)  # type: ignore[attr-defined]


@pytest.hookimpl(trylast=True)  # after pytest's own teardown: a failure here fails this
# item's teardown alone, never the next item ("previous item was not torn down properly")
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    from harness.plugin.items import HarnessItem

    if not isinstance(item, HarnessItem):
        return
    if isinstance(nextitem, HarnessItem) and nextitem.group == item.group:
        return
    harness = session_of(item.config)
    if "deployer" not in harness.__dict__:
        return
    if harness.prefetcher is not None and isinstance(nextitem, HarnessItem):
        # this group's items are done: the next apps go ahead while its snapshot is awaited
        harness.prefetcher.reached(nextitem.suite, nextitem.app)
    runs = [r for r in harness.deployer.all_runs() if _group_of(r) == item.group]
    for run in runs:
        harness.snapshot_metrics(run)
        # The app's record rides on this item's teardown report to the controller.
        item.user_properties.append((APP_RECORD, json.dumps(run.summary())))
    harness.notes.extend(harness.finish_group(runs))  # raises once all were tried


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A suite item's setup or teardown that failed with a harness (or API) error reads as
    one line, as its call does, not as a traceback into the harness. A check that ran ahead
    of its item (plugin/prefetch.py) reports its own time, not the item's wait for it."""
    report = yield
    ran_ahead = getattr(item, "ran_ahead", None)
    if call.when == "call" and ran_ahead is not None:
        report.duration = max(report.duration, ran_ahead)
    if call.when != "call" and call.excinfo is not None and report.failed:
        from harness.plugin.items import HarnessItem

        if isinstance(item, HarnessItem) and item.explains(call.excinfo.value):
            report.longrepr = item.repr_failure(call.excinfo)
    return report


def _group_of(run: Any) -> str:
    from harness.suite.graph import dependency_groups

    return f"{run.suite.name}::{dependency_groups(run.suite)[run.app.name]}"


@pytest.hookimpl(trylast=True)  # on the xdist controller: after its workers have ended
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    harness = config.stash.get(session_key, None)
    if harness is None:
        return
    workers = config.stash.get(workers_key, [])
    for node in workers:  # what the workers removed, to show here
        for note in getattr(node, "workeroutput", {}).get(WORKER_NOTES, []):
            if note not in harness.notes:  # said by several workers (a run-wide note): once
                harness.notes.append(note)
    if workers and not harness.options.cluster_per_worker:
        harness.notes.extend(harness.remove_leftover_namespaces())
    harness.notes.extend(harness.close())
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_NOTES] = list(harness.notes)
    if harness.usage_error is not None:  # found by the xdist controller's scheduler
        sys.stderr.write(f"ERROR: {harness.usage_error}\n")
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


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
