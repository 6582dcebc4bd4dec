"""The run's state: the stash keys the plugin, items and reports share, and the live side of
a run (:class:`HarnessSession`): the cluster (acquired on first use), API and Helm clients,
the deployer of suite apps, and the clean-up at the end. One per pytest process, kept in the
config stash by the plugin.

This module is imported with the plugin by every pytest run in the environment, suites or
not: the Kubernetes client, pyhelm3 and the deployer are imported where first used.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.clusters.base import ClusterInfo, ClusterProvider, ClusterSpec
from harness.errors import ClusterError, HarnessError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from harness.deploy.deployer import AppRun, Deployer
    from harness.deploy.images import ImageLoader
    from harness.helm.client import Helm
    from harness.report.notify import Target

IMAGE_LOADING_PROVIDERS = ("kind", "k3d")
NAMESPACES_GONE_WITHIN = 120.0  # s the run's end waits for its namespaces on a kept cluster
APP_RECORD = "helm-harness.app"  # user property holding an app's JSON record
OWNERS_SEPARATOR = ", "  # between an app's owners in its items' `owners` property
WORKER_RUN_ID = "helm_harness_run_id"  # xdist workerinput keys
WORKER_CLUSTER = "helm_harness_cluster"
WORKER_CLUSTER_ERROR = "helm_harness_cluster_error"
WORKER_NOTES = "helm_harness_notes"  # xdist workeroutput key: what a worker removed


@dataclass
class RunOptions:
    """Everything the options decided, for the whole run."""

    run_id: str
    cluster: str
    cluster_name: str
    cluster_config: Path | None
    kubeconfig: Path | None
    context: str | None
    reuse_cluster: bool
    keep_cluster: bool
    keep_on_failure: bool
    nodes: int
    pod_startup: float
    pod_jitter: float
    helm: str | None
    report_dir: Path
    cluster_per_worker: bool = False
    k8s_version: str | None = None
    cluster_timeout: float = 120.0
    metrics_wait: float = 20.0
    metrics_source: str = "auto"
    kind_image: str | None = None
    load_images: bool = True
    api_retry: float = 30.0
    max_parallel: int = 16
    notify: tuple[Target, ...] = ()  # where the alert of a run with failures goes
    notify_timeout: float = 30.0  # seconds all alerts may take
    history: str | None = None  # a SQLite file or a postgresql:// URL the run is appended to
    lint: bool = False  # each app linted before its install (an item `::lint`)
    lint_only: bool = False  # only the lint items: nothing is installed
    upgrade_from_git_base: str | None = None  # upgrade.from {git: ...}: this branch's merge base


@dataclass
class HarnessSession:
    options: RunOptions
    provider: ClusterProvider | None = None
    info: ClusterInfo | None = None
    notes: list[str] = field(default_factory=list)
    _said_kubelet_unused: bool = False  # the note on snapshots falling back was made
    suite_errors: list[str] = field(default_factory=list)
    any_app_failed: bool = False
    cluster_error: str | None = None  # the xdist controller could not make the cluster
    usage_error: str | None = None  # the xdist controller's checks found a usage error
    # app label -> the apps it runs one after another with, and the object they share
    serialised: dict[str, list[str]] = field(default_factory=dict)
    prefetcher: Any = None  # plugin/prefetch.py: apps installed ahead of their items
    plan_dir: Path | None = None  # xdist controller: its clash plan for the workers
    adopted: bool = False  # an xdist worker using the controller's cluster
    closed: bool = False

    def cluster(self) -> ClusterInfo:
        if self.cluster_error is not None:
            raise ClusterError(self.cluster_error)
        if self.info is None:
            try:
                return self._acquire()
            except HarnessError as exc:
                # Every later item gets this message instead of trying again.
                self.cluster_error = f"{exc}"
                raise
        return self.info

    def _acquire(self) -> ClusterInfo:
        from harness.clusters.registry import acquire, get_provider

        opts = self.options
        self.provider = get_provider(
            opts.cluster,
            kubeconfig=opts.kubeconfig,
            context=opts.context,
            pod_startup=opts.pod_startup,
            pod_jitter=opts.pod_jitter,
        )
        spec = ClusterSpec(
            name=opts.cluster_name,
            config=opts.cluster_config,
            nodes=opts.nodes,
            k8s_version=opts.k8s_version,
            wait_seconds=opts.cluster_timeout,
            image=opts.kind_image,
            logs_dir=opts.report_dir,
        )
        try:
            self.info = acquire(self.provider, spec, reuse=opts.reuse_cluster, run_id=opts.run_id)
        except KeyboardInterrupt:
            self.notes.extend(self._interrupted_start(self.provider, spec.name))
            raise
        assert self.info is not None
        return self.info

    def _interrupted_start(self, provider: ClusterProvider, name: str) -> list[str]:
        """Ctrl-C or SIGTERM while the cluster was being had: a provider removes a cluster
        it was creating (see ``create``); say so, or that it is still there."""
        try:
            if provider.exists(name):
                return [f"interrupted while getting {provider.name} cluster {name}; it is kept"]
        except Exception as exc:  # best effort: the run is ending anyway
            return [f"interrupted while getting {provider.name} cluster {name} ({exc})"]
        return [f"interrupted: removed the {provider.name} cluster {name} it was starting"]

    @cached_property
    def api(self) -> ApiClient:
        from harness.kube.client import api_client

        info = self.cluster()
        return api_client(info.kubeconfig, info.context, retry_for=self.options.api_retry)

    @cached_property
    def helm(self) -> Helm:
        from harness.helm.client import Helm
        from harness.tools import find_helm

        info = self.cluster()
        return Helm(find_helm(self.options.helm), kubeconfig=info.kubeconfig, context=info.context)

    @cached_property
    def deployer(self) -> Deployer:
        from harness.deploy.deployer import Deployer

        simulated = self.cluster().provider == "kwok" or nodes_are_simulated(self.api)
        deployer = Deployer(
            run_id=self.options.run_id,
            api=self.api,
            helm=self.helm,
            simulated=simulated,
            image_loader=self.image_loader(),
            lint=self.options.lint or self.options.lint_only,
            git_base=self.options.upgrade_from_git_base,
            metrics_source=self.options.metrics_source,
        )
        deployer.phase_ended = self.snapshot_phase
        return deployer

    def image_loader(self) -> ImageLoader | None:
        """kind and k3d clusters (unless --no-load-images): local images into the nodes."""
        from harness.clusters.registry import get_provider
        from harness.deploy.images import ImageLoader

        info = self.cluster()
        if not self.options.load_images or info.provider not in IMAGE_LOADING_PROVIDERS:
            return None
        provider = self.provider or get_provider(info.provider)
        load = getattr(provider, "load_images", None)
        if load is None:
            return None
        return ImageLoader(lambda images: load(info.name, images))

    def snapshot_phase(self, run: AppRun, phase: str) -> None:
        """The metric snapshot at the end of an upgrade-run phase (kept per phase)."""
        self.snapshot_metrics(run)
        if run.metrics is not None:
            run.metrics_by_phase[phase] = run.metrics
            run.metrics = None

    def write_bundle(
        self, run: AppRun, item: Any, exc: BaseException, extra: Sequence[tuple[str, str, str]] = ()
    ) -> Path | None:
        """The failure bundle of ``run``'s app, or None when there is nothing to look at;
        ``extra``: more files for it (see :func:`harness.report.evidence.write_bundle`)."""
        from harness.report.evidence import bundle_dir, write_bundle

        if "helm" not in self.__dict__ or self.info is None:
            return None
        failure = f"{item.nodeid}\n{exc}"
        return write_bundle(
            bundle_dir(self.options.report_dir, run.suite.name, run.app.name),
            api=self.api,
            helm=self.helm,
            namespace=run.namespace,
            release=run.app.release,
            manifest=run.ctx.manifest if run.ctx is not None else [],
            failure=failure,
            extra=extra,
        )

    def snapshot_metrics(self, run: AppRun, *, ahead: bool = False) -> None:
        """Take the app's metric snapshot before it is removed, unless one was taken (or,
        ``ahead`` not given, is being taken by the work ahead); a snapshot that cannot be
        taken is said in the notes, never fails the app."""
        if self.prefetcher is not None and not ahead:
            self.prefetcher.snapshot_done(run)
        if run.ctx is None or run.metrics is not None:
            return
        from harness.report.snapshots import take_snapshot

        try:
            run.metrics = take_snapshot(
                run.ctx,
                self.options.report_dir,
                timings=run.timings,
                wait=self.options.metrics_wait,
            )
        except Exception as exc:  # the API may be gone: the app's results still count
            self.notes.append(f"{run.app.name}: no metric snapshot: {_one_line(exc)}")
            return
        unused = (run.ctx.metrics or {}).get("kubelet_unused")
        if unused and self.options.metrics_source == "auto" and not self._said_kubelet_unused:
            self._said_kubelet_unused = True  # once a run: it is the same for every app
            self.notes.append(
                f"metric snapshots read metrics.k8s.io, not the kubelet: {_one_line(unused)}"
            )
        if run.phase is not None:
            run.metrics_by_phase[run.phase] = run.metrics

    def finish_group(self, group_runs: list[AppRun]) -> list[str]:
        """Remove the apps of a finished dependency group, dependents first; say what was
        removed. Every app is tried; when some could not be removed, a
        :class:`~harness.errors.HarnessError` says which and why, in one line each (what
        is left is removed with the run's namespaces, or by ``cluster sweep``)."""
        from harness.suite.graph import install_order

        said, failed = [], []
        if group_runs:  # dependents first, whichever thread made each app's run first
            position = {app.name: i for i, app in enumerate(install_order(group_runs[0].suite))}
            group_runs = sorted(group_runs, key=lambda run: position.get(run.app.name, 0))
        for run in reversed(group_runs):
            keep = self.options.keep_on_failure and (run.failed or run.error is not None)
            try:
                note = self.deployer.finalize(run, keep=keep)
            except Exception as exc:  # one app's removal never stops the others'
                failed.append(f"removing {run.app.name} failed: {_one_line(exc)}")
                continue
            if note:
                said.append(note)
        if failed:
            self.notes.extend(said)
            raise HarnessError("; ".join(failed))
        return said

    def share(self) -> dict[str, Any]:
        """What an xdist worker needs to use this process's cluster (see ``adopt``)."""
        info = self.cluster()
        return {
            "provider": info.provider,
            "name": info.name,
            "kubeconfig": str(info.kubeconfig),
            "context": info.context,
        }

    def adopt(self, shared: dict[str, Any]) -> None:
        """Use the cluster the xdist controller made; this process never deletes it."""
        self.adopted = True
        self.info = ClusterInfo(
            provider=shared["provider"],
            name=shared["name"],
            kubeconfig=Path(shared["kubeconfig"]),
            context=shared["context"],
            created=False,
        )

    def remove_leftover_namespaces(self) -> list[str]:
        """The xdist controller, once its workers have ended: delete the namespaces of this
        run that a worker did not remove (it was killed, e.g. stopped by xdist before it
        finished cleaning up after an interrupt). Never when failed apps are to be kept."""
        if self.options.keep_on_failure or self.info is None:
            return []
        from kubernetes import client

        from harness.deploy.deployer import LABEL_OWNER, LABEL_RUN, OWNER

        said = []
        selector = f"{LABEL_RUN}={self.options.run_id},{LABEL_OWNER}={OWNER}"
        try:
            core = client.CoreV1Api(self.api)
            for namespace in core.list_namespace(label_selector=selector).items:
                meta = namespace.metadata
                if meta and meta.name and meta.deletion_timestamp is None:  # not going yet
                    core.delete_namespace(meta.name)
                    said.append(f"removed namespace {meta.name} a worker left")
        except Exception as exc:  # the cluster may be gone; say so, never fail the run here
            said.append(f"could not look for namespaces workers left ({selector}): {exc}")
        return said

    def _keep_cluster(self) -> bool:
        if self.options.keep_on_failure and self.any_app_failed:
            return True
        return self.options.keep_cluster or self.options.reuse_cluster

    def _cluster_goes(self) -> bool:
        """Whether the run deletes its cluster at the end (then its namespaces go with it)."""
        return self.info is not None and self.info.created and not self._keep_cluster()

    def _namespaces_left(self, timeout: float = NAMESPACES_GONE_WITHIN) -> list[str]:
        """On a cluster that stays: the run's namespaces were deleted without waiting (the
        next app did not wait for them); the run ends once they are gone, or says which
        are still there and why."""
        from harness.deploy.deployer import LABEL_OWNER, LABEL_RUN, OWNER
        from harness.kube.resources import Resolver, lister
        from harness.kube.wait import wait_for

        selector = f"{LABEL_RUN}={self.options.run_id},{LABEL_OWNER}={OWNER}"
        try:
            namespaces = lister(self.api, Resolver(self.api).by_name("namespaces"))
            wait_for(
                namespaces,
                lambda objects: not any(o["metadata"].get("deletionTimestamp") for o in objects),
                expected="the run's namespaces gone",
                timeout=timeout,
                kind="Namespace",
                label_selector=selector,
            )
        except Exception as exc:  # best effort at the end: say it, never fail the run here
            return [f"some namespaces of this run are still being deleted: {_one_line(exc)}"]
        return []

    def close(self) -> list[str]:
        """Remove what the run made (apps not yet removed, then the cluster); say what."""
        said: list[str] = []
        if self.closed:
            return said
        self.closed = True
        if self.prefetcher is not None:
            self.prefetcher.stop()  # no install may start after the clean-up below
        if self.plan_dir is not None:
            shutil.rmtree(self.plan_dir, ignore_errors=True)
        if "deployer" in self.__dict__:
            for run in self.deployer.all_runs():
                keep = self.options.keep_on_failure and (run.failed or run.error is not None)
                note = self.deployer.finalize(run, keep=keep)
                if note:
                    said.append(note)
        if "api" in self.__dict__:
            if not self.adopted and not self._cluster_goes():
                said.extend(self._namespaces_left())
            self.api.close()
        if self.provider is not None and self.info is not None:
            from harness.clusters.registry import release

            restarts = getattr(self.provider, "restarts", None)  # kwok's watched components
            if restarts is not None:
                said.extend(restarts(self.info.name))

            keep = self._keep_cluster()
            if release(self.provider, self.info, keep=keep, run_id=self.options.run_id):
                said.append(f"deleted {self.info.provider} cluster {self.info.name}")
            elif self.info.created:
                said.append(
                    f"kept {self.info.provider} cluster {self.info.name} "
                    f"(kubeconfig {self.info.kubeconfig})"
                )
        return said


def nodes_are_simulated(api: ApiClient) -> bool:
    """Whether every node is a kwok node (its kubelet version says kwok): also true when a
    kwok cluster is used as an existing cluster through its kubeconfig."""
    from kubernetes import client

    try:
        nodes = client.CoreV1Api(api).list_node(limit=20, _request_timeout=10).items
    except Exception:  # cannot tell: assume real nodes
        return False
    versions = [
        str(node.status.node_info.kubelet_version)
        for node in nodes
        if node.status and node.status.node_info
    ]
    return bool(versions) and all(version.startswith("kwok") for version in versions)


def _one_line(exc: BaseException) -> str:
    """An error as one line: the Kubernetes client's as the harness's API error."""
    from harness.kube.client import CLIENT_ERRORS, api_error

    if isinstance(exc, CLIENT_ERRORS):
        exc = api_error(exc)
    return (str(exc).splitlines() or [type(exc).__name__])[0]


session_key = pytest.StashKey[HarnessSession]()
workers_key = pytest.StashKey[list[Any]]()  # the xdist controller's worker nodes


def session_of(config: pytest.Config) -> HarnessSession:
    """The run's state, kept in ``config``'s stash by the plugin's ``pytest_configure``."""
    session = config.stash.get(session_key, None)
    if session is None:
        raise pytest.UsageError("helm-harness was not configured (is the plugin disabled?)")
    return session
