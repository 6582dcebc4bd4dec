"""Apps of suites on the run's cluster: a namespace per app per run, the Helm release,
and removal afterwards. Installs are lazy (the first item that needs an app installs it,
dependencies first), so ``-k``/``--lf`` selections work."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from harness.checks.context import AppContext
from harness.errors import HarnessError, HelmError
from harness.helm import Helm
from harness.suite import App, Suite

LABEL_RUN = "helm-harness.io/run"
LABEL_OWNER = "app.kubernetes.io/managed-by"
OWNER = "helm-harness"
LABEL_APP = "helm-harness.io/app"
LABEL_SUITE = "helm-harness.io/suite"


def namespace_name(run_id: str, app: str) -> str:
    """``h-<run>-<app>``, made a valid DNS label (63 characters at most)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", app.lower()).strip("-") or "app"
    return f"h-{run_id}-{clean}"[:63].rstrip("-")


@dataclass
class AppRun:
    """One app's life in this run."""

    suite: Suite
    app: App
    namespace: str
    ctx: AppContext | None = None
    error: BaseException | None = None  # why the install failed
    failed: bool = False  # some item of the app failed
    created_namespace: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # seconds since `started`
    started: float = 0.0  # monotonic, when the install began
    chart_version: str | None = None  # as Helm installed it
    values_digest: str | None = None
    metrics: dict[str, Any] | None = None  # the metric snapshot, when one was taken
    finalized: bool = False

    def summary(self) -> dict[str, Any]:
        """The app's record for reports: never the values themselves (they may hold
        secrets), only their digest."""
        return {
            "suite": self.suite.name,
            "suite_file": str(self.suite.path),
            "app": self.app.name,
            "chart": self.app.source.chart,
            "chart_version": self.chart_version,
            "release": self.app.release,
            "namespace": self.namespace,
            "values_digest": self.values_digest,
            "timings": {key: round(value, 3) for key, value in self.timings.items()},
            "installed": self.ctx is not None,
            "install_error": str(self.error).splitlines()[0] if self.error else None,
            "failed": self.failed or self.error is not None,
            "metrics": self.metrics,
            "runbook": self.app.runbook,
        }

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.suite.path), self.app.name)


class Deployer:
    """Installs and removes the run's apps."""

    def __init__(self, *, run_id: str, api: ApiClient, helm: Helm, simulated: bool = False) -> None:
        self.run_id = run_id
        self.api = api
        self.helm = helm
        self.simulated = simulated
        self.runs: dict[tuple[str, str], AppRun] = {}

    def app_run(self, suite: Suite, app: App) -> AppRun:
        key = (str(suite.path), app.name)
        if key not in self.runs:
            namespace = app.namespace or namespace_name(self.run_id, app.name)
            self.runs[key] = AppRun(suite=suite, app=app, namespace=namespace)
        return self.runs[key]

    def ensure_installed(self, suite: Suite, app: App) -> AppRun:
        """Install ``app`` (its dependencies first) unless done; raises the install error."""
        run = self.app_run(suite, app)
        if run.ctx is None and run.error is None:
            by_name = {a.name: a for a in suite.apps}
            for dependency in app.depends_on:
                dep_run = self.ensure_installed_quietly(suite, by_name[dependency])
                if dep_run.error is not None:
                    run.error = HarnessError(
                        f"dependency {dependency!r} failed to install: {dep_run.error}"
                    )
                    break
            else:
                try:
                    run.ctx = self._install(run)
                except BaseException as exc:
                    run.error = exc
                    if not isinstance(exc, Exception):
                        raise
        if run.error is not None:
            raise run.error
        assert run.ctx is not None
        return run

    def ensure_installed_quietly(self, suite: Suite, app: App) -> AppRun:
        try:
            return self.ensure_installed(suite, app)
        except Exception:
            return self.app_run(suite, app)

    def _install(self, run: AppRun) -> AppContext:
        app = run.app
        started = run.started = time.monotonic()
        deadline = started + app.timeout
        run.values_digest = values_digest(app)
        run.created_namespace = self._create_namespace(run)
        release = self.helm.install(
            app.release,
            app.source.chart,
            namespace=run.namespace,
            values=app.values,
            values_files=list(app.values_files),
            set_values=app.set_values,
            version=app.source.version,
            repo=app.source.repo,
            timeout=f"{max(int(app.timeout), 1)}s",
            create_namespace=False,
        )
        run.timings["install"] = time.monotonic() - started
        run.chart_version = str((release.get("chart") or {}).get("metadata", {}).get("version"))
        ctx = AppContext(
            suite=run.suite,
            app=app,
            namespace=run.namespace,
            api=self.api,
            helm=self.helm,
            deadline=deadline,
            simulated=self.simulated,
        )
        self.refresh(ctx)
        return ctx

    def refresh(self, ctx: AppContext) -> None:
        """Read the release's objects, hooks and the chart's CRDs from Helm."""
        app = ctx.app
        ctx.manifest = _documents(self.helm.manifest(app.release, namespace=ctx.namespace))
        ctx.hooks = _documents(self.helm.hooks(app.release, namespace=ctx.namespace))
        ctx.crds = _documents(
            self.helm.show_crds(app.source.chart, version=app.source.version, repo=app.source.repo)
        )

    def _create_namespace(self, run: AppRun) -> bool:
        labels = {
            LABEL_RUN: self.run_id,
            LABEL_OWNER: OWNER,
            LABEL_APP: run.app.name[:63],
            LABEL_SUITE: run.suite.name[:63],
        }
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=run.namespace, labels=labels))
        try:
            client.CoreV1Api(self.api).create_namespace(body)
            return True
        except ApiException as exc:
            if exc.status == 409 and run.app.namespace:  # the user's own namespace
                return False
            raise

    def finalize(self, run: AppRun, *, keep: bool) -> str:
        """Uninstall and delete the namespace this run created, unless ``keep``. Says what
        it did."""
        if run.finalized:
            return ""
        run.finalized = True
        if keep:
            return f"kept namespace {run.namespace} of {run.app.name} for inspection"
        if run.ctx is not None or run.error is not None:
            try:
                self.helm.uninstall(run.app.release, namespace=run.namespace, wait=False)
            except HelmError as exc:
                if "not found" not in exc.reason:
                    raise
        if run.created_namespace:
            try:
                client.CoreV1Api(self.api).delete_namespace(run.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            return f"removed {run.app.name} and namespace {run.namespace}"
        return f"removed {run.app.name}"


def values_digest(app: App) -> str:
    """sha256 over the app's values, --set values and values files' contents."""
    digest = hashlib.sha256()
    digest.update(json.dumps([app.values, app.set_values], sort_keys=True, default=str).encode())
    for path in app.values_files:
        digest.update(path.read_bytes() if path.is_file() else str(path).encode())
    return "sha256:" + digest.hexdigest()


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict) and doc.get("kind")]
