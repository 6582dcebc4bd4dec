"""Apps of suites on the run's cluster: a namespace per app per run, the Helm release,
and removal afterwards. Installs are lazy (the first item that needs an app installs it,
dependencies first), so ``-k``/``--lf`` selections work."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient

from harness.checks.context import AppContext
from harness.checks.pod_security import namespace_labels
from harness.deploy.holds import hold_of
from harness.deploy.images import ImageLoader, LoadResult, images_in
from harness.deploy.lint import LintResult, crds_in, lint_chart
from harness.errors import (
    Conflict,
    HarnessError,
    HelmError,
    HelmReleaseNotFound,
    HelmResourceExists,
    LintFailed,
    NotFound,
    Stopped,
)
from harness.helm.client import Helm
from harness.helm.gitref import ChartAtRef, materialise, remove, scratch_folder
from harness.kube import manifests
from harness.kube.client import call
from harness.kube.wait import retry_until
from harness.suite.model import App, ChartRef, Suite

PHASE_FROM, PHASE_TO, PHASE_ROLLBACK = "from", "to", "rollback"
# The API server's words for a webhook or an aggregated API it could not call.
_UNREACHABLE = re.compile(
    r'failed calling webhook "(?P<what>[^"]+)"'
    r"|the server is currently unable to handle the request"
)
PHASES = (PHASE_FROM, PHASE_TO, PHASE_ROLLBACK)
LABEL_RUN = "helm-harness.io/run"
LABEL_OWNER = "app.kubernetes.io/managed-by"
OWNER = "helm-harness"
LABEL_APP = "helm-harness.io/app"
LABEL_SUITE = "helm-harness.io/suite"

log = logging.getLogger("harness.deploy")


class _StillHeld(Exception):
    """Helm refused the install because another release holds an object: try again."""

    def __init__(self, refusal: HelmResourceExists) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class HeldAhead(HarnessError):
    """An install ahead of its items met an object another release holds: it gives way
    (the app's own install item installs it in its turn, waiting for the hold then)."""


def namespace_name(run_id: str, suite: str, app: str) -> str:
    """``h-<run>-<suite>-<app>``, a valid DNS label (63 characters at most, a hash of the
    whole name when it would be longer). The suite is part of it because two suites of
    one run may have apps of the same name."""

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"

    name = f"h-{run_id}-{clean(suite)}-{clean(app)}"
    if len(name) > 63:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def label_value(text: str) -> str:
    """``text`` as a label value can hold it: letters, digits, '-', '_' and '.' (anything
    else as '-'), at most 63, starting and ending with a letter or digit."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")


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
    upgraded_version: str | None = None  # as the upgrade (phase "to") installed it
    values_digest: str | None = None
    metrics: dict[str, Any] | None = None  # the metric snapshot, when one was taken
    finalized: bool = False
    # upgrade runs: the phase reached ("from", "to", "rollback"), each step's error, the
    # metric snapshot at the end of each phase, and the CRD drift the upgrade left
    phase: str | None = None
    step_errors: dict[str, BaseException] = field(default_factory=dict)
    metrics_by_phase: dict[str, dict[str, Any]] = field(default_factory=dict)
    crd_drift: list[str] | None = None
    images: LoadResult | None = None  # images loaded into the cluster before installing
    waited_for: str | None = None  # a cluster-scoped object another release held
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    waited_s: float = 0.0  # how long the install waited for it
    lint: LintResult | None = None  # what `lint` found (--lint), once it ran
    lint_error: BaseException | None = None  # why it could not run, or LintFailed
    lint_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    from_git: ChartAtRef | None = None  # upgrade.from {git: ...}: the chart written out
    scratch: Path | None = None  # the folder it was written to, removed with the app

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
            # an app expected to fail (xfail) that does is no failed app
            "failed": (self.failed or self.error is not None) and not self.app.xfail,
            "metrics": self.metrics,
            "runbook": self.app.runbook,
            "owners": list(self.app.owners),
            "upgrade": self.upgrade_summary(),
            "images_loaded": self.images.present if self.images else [],
            "waited_for": self.waited_for,
            "waited_s": round(self.waited_s, 3),
            "recoveries": dict(self.ctx.recoveries) if self.ctx is not None else {},
        }

    def upgrade_summary(self) -> dict[str, Any] | None:
        if self.phase is None:
            return None
        source = self.app.upgrade_from
        # the versions as Helm installed them (a local chart's is in its Chart.yaml, not
        # in the suite), else as the suite asks for them
        target = {
            "chart": self.app.source.chart,
            "version": self.upgraded_version or self.app.source.version,
        }
        old = self.from_git.summary() if self.from_git else None
        if old is None and source is not None:
            old = {"chart": source.chart, "version": source.version}
        if old is not None:
            old["version"] = self.chart_version or old["version"]
        return {
            "from": old,
            "to": target,
            "phase_reached": self.phase,
            "errors": {step: str(exc).splitlines()[0] for step, exc in self.step_errors.items()},
            "crd_drift": self.crd_drift,
            "metrics": self.metrics_by_phase,
        }

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.suite.path), self.app.name)


class Deployer:
    """Installs and removes the run's apps."""

    def __init__(
        self,
        *,
        run_id: str,
        api: ApiClient,
        helm: Helm,
        simulated: bool = False,
        image_loader: ImageLoader | None = None,
        git_base: str | None = None,
        lint: bool = False,
        metrics_source: str = "auto",
    ) -> None:
        self.run_id = run_id
        self.metrics_source = metrics_source  # --metrics-source (harness/report/snapshots.py)
        self.lint = lint  # every install is linted first (harness/deploy/lint.py)
        self.git_base = git_base  # --upgrade-from-git-base: upgrade.from git refs' branch
        self.api = api
        self.helm = helm
        self.simulated = simulated
        self.image_loader = image_loader
        self.runs: dict[tuple[str, str], AppRun] = {}
        self._runs_lock = threading.Lock()
        # called with (run, phase) when a phase of an upgrade run ends (metric snapshots)
        self.phase_ended: Callable[[AppRun, str], None] | None = None

    def all_runs(self) -> list[AppRun]:
        """The runs made so far. Apps installed ahead add theirs from other threads: a
        copy taken under the lock, never the dict itself (iterating it while one is added
        raises)."""
        with self._runs_lock:
            return list(self.runs.values())

    def app_run(self, suite: Suite, app: App) -> AppRun:
        key = (str(suite.path), app.name)
        with self._runs_lock:  # apps may be installed ahead in threads (plugin/prefetch.py)
            if key not in self.runs:
                namespace = app.namespace or namespace_name(self.run_id, suite.name, app.name)
                self.runs[key] = AppRun(suite=suite, app=app, namespace=namespace)
            return self.runs[key]

    def ensure_phase(self, suite: Suite, app: App, phase: str | None) -> AppRun:
        """Bring an app to ``phase`` of an upgrade run (``from``: the released version
        installed; ``to``: upgraded to the version under test; ``rollback``: rolled back),
        doing each step once; or, with ``phase`` None, a plain install. Raises the error of
        the step that ``phase`` needs."""
        if phase is None:
            return self.ensure_installed(suite, app)
        run = self.ensure_installed(suite, app, upgrade=True)
        assert run.ctx is not None
        steps = [PHASE_TO, PHASE_ROLLBACK][: PHASES.index(phase)]
        for step in steps:
            if run.phase == PHASES[PHASES.index(step) - 1]:
                self._end_phase(run, run.phase)
                try:
                    self._step(run, run.ctx, step)
                except Exception as exc:
                    run.step_errors[step] = exc
                run.phase = step
        if phase in run.step_errors:
            raise run.step_errors[phase]
        return run

    def _end_phase(self, run: AppRun, phase: str) -> None:
        if self.phase_ended is not None and run.ctx is not None:
            self.phase_ended(run, phase)

    def _step(self, run: AppRun, ctx: AppContext, step: str) -> None:
        app = run.app
        started = time.monotonic()
        ctx.deadline = started + app.timeout
        if step == PHASE_TO:
            self._load_images(run, app.source)
            upgraded = self.helm.upgrade(
                app.release,
                app.source.chart,
                namespace=run.namespace,
                timeout=f"{max(int(app.timeout), 1)}s",
                **chart_values(app, app.source),
            )
            run.timings["upgrade"] = time.monotonic() - started
            run.upgraded_version = installed_version(upgraded)
            self.refresh(ctx, app.source)
            run.crd_drift = crd_drift(self.api, ctx.crds)
            ctx.missing_crds = {
                line.split()[1].rstrip(":")
                for line in run.crd_drift
                if "not in the cluster" in line
            }
        else:
            self.helm.rollback(app.release, 1, namespace=run.namespace)
            run.timings["rollback"] = time.monotonic() - started
            self.refresh(ctx, self._old_chart(run))
            ctx.missing_crds = set()

    def ensure_installed(
        self, suite: Suite, app: App, *, upgrade: bool = False, ahead: bool = False
    ) -> AppRun:
        """Install ``app`` (its dependencies first) unless done; raises the install error.
        With ``upgrade``, the released version (``upgrade.from``) is installed."""
        run = self.app_run(suite, app)
        with run.lock:  # one install per app, whichever thread asks first
            return self._ensure_installed(run, suite, app, upgrade, ahead)

    def _ensure_installed(
        self, run: AppRun, suite: Suite, app: App, upgrade: bool, ahead: bool = False
    ) -> AppRun:
        if run.ctx is None and run.error is None:
            by_name = {a.name: a for a in suite.apps}
            for dependency in app.depends_on:
                dep_run = self.ensure_installed_quietly(suite, by_name[dependency])
                if isinstance(dep_run.error, LintFailed):
                    run.error = LintFailed(f"dependency {dependency!r}: {dep_run.error.summary}")
                    break
                if dep_run.error is not None:
                    run.error = HarnessError(
                        f"dependency {dependency!r} failed to install: {dep_run.error}"
                    )
                    break
            else:
                try:
                    if self.lint:  # before any install of the app: failing fast
                        self._lint_once(run)
                    source = self._old_chart(run) if upgrade and app.upgrade_from else app.source
                    run.ctx = self._install(run, source, ahead=ahead)
                    if upgrade:
                        run.phase = PHASE_FROM
                except HeldAhead:
                    return run  # not now: its own install item installs it, in its turn
                except BaseException as exc:
                    run.error = exc
                    if not isinstance(exc, Exception):
                        raise
        if run.error is not None:
            raise run.error
        assert run.ctx is not None
        return run

    def _old_chart(self, run: AppRun) -> ChartRef:
        """The chart an upgrade run starts from; a git ref's written out on first use."""
        source = run.app.upgrade_from or run.app.source
        if source.git is not None and run.from_git is None:
            run.scratch = scratch_folder(self.run_id)
            run.from_git = materialise(
                source.git,
                app_chart=run.app.source,
                into=run.scratch,
                base_branch=self.git_base,
                build_dependencies=lambda folder: self.helm.dependency_build(str(folder)),
            )
        return ChartRef(chart=str(run.from_git.folder)) if run.from_git else source

    def ensure_linted(self, suite: Suite, app: App) -> LintResult:
        """Lint ``app`` (once per run; :mod:`harness.deploy.lint`): its result, or
        :class:`LintFailed` naming each problem, or the error that kept it from running."""
        return self._lint_once(self.app_run(suite, app))

    def _lint_once(self, run: AppRun) -> LintResult:
        with run.lint_lock:
            if run.lint is None and run.lint_error is None:
                try:
                    run.lint = self._lint(run)
                    if not run.lint.ok:
                        problems = [str(problem) for problem in run.lint.problems]
                        run.lint_error = LintFailed(run.lint.summary(), problems)
                except Stopped as exc:  # the run is ending: no verdict on the chart
                    run.lint_error = exc
                except Exception as exc:  # no install without a lint either
                    first, *rest = str(exc).strip().splitlines() or [type(exc).__name__]
                    run.lint_error = LintFailed(f"lint could not run: {first}", rest)
                    run.lint_error.__cause__ = exc
        if run.lint_error is not None:
            raise run.lint_error
        assert run.lint is not None
        return run.lint

    def _lint(self, run: AppRun) -> LintResult:
        """The app's namespace is made first (its install needs it anyway): the dry-run of
        its namespaced objects goes there, and it is removed with the app."""
        started = time.monotonic()
        run.created_namespace = self._create_namespace(run)
        app = run.app
        result = lint_chart(
            self.helm,
            self.api,
            release=app.release,
            chart=app.source.chart,
            namespace=run.namespace,
            chart_values=chart_values(app, app.source),
            dependency_crds=lambda: self._dependency_crds(run),
        )
        run.timings["lint"] = time.monotonic() - started
        return result

    def _dependency_crds(self, run: AppRun) -> list[dict[str, Any]]:
        """The CRDs the apps ``run``'s app depends on (and theirs) render: what its custom
        resources may need when those apps are not installed yet."""
        by_name = {a.name: a for a in run.suite.apps}
        crds: list[dict[str, Any]] = []
        pending, seen = list(run.app.depends_on), set()
        while pending:
            name = pending.pop()
            if name in seen or name not in by_name:
                continue
            seen.add(name)
            dependency = by_name[name]
            pending.extend(dependency.depends_on)
            try:
                rendered = self.helm.template(
                    dependency.release,
                    dependency.source.chart,
                    namespace=run.namespace,
                    flags=["--include-crds"],
                    **chart_values(dependency, dependency.source),
                )
            except HelmError:
                continue  # its own lint (or install) says why
            crds += crds_in(manifests.load_all(rendered))
        return crds

    def ensure_installed_quietly(
        self, suite: Suite, app: App, *, upgrade: bool = False, ahead: bool = False
    ) -> AppRun:
        try:
            return self.ensure_installed(suite, app, upgrade=upgrade, ahead=ahead)
        except Exception:
            return self.app_run(suite, app)

    def _install(self, run: AppRun, source: ChartRef, *, ahead: bool = False) -> AppContext:
        app = run.app
        started = run.started = time.monotonic()
        deadline = started + app.timeout
        run.values_digest = values_digest(app)
        run.created_namespace = self._create_namespace(run)
        self._load_images(run, source)
        try:
            release = self._install_when_free(run, source, deadline, ahead=ahead)
        except HelmError as exc:
            raise self._explained(exc) from exc
        run.timings["install"] = time.monotonic() - started
        run.chart_version = installed_version(release)
        ctx = AppContext(
            suite=run.suite,
            app=app,
            namespace=run.namespace,
            api=self.api,
            helm=self.helm,
            deadline=deadline,
            simulated=self.simulated,
            metrics_source=self.metrics_source,
        )
        self.refresh(ctx, source)
        return ctx

    def _install_when_free(
        self, run: AppRun, source: ChartRef, deadline: float, *, ahead: bool = False
    ) -> Any:
        """``helm install``; while Helm refuses because another release holds a rendered
        cluster-scoped object (an app of this run the clash check put first, or another
        run on a reused cluster), install again every few seconds until the deadline,
        noting whose the object was (see :mod:`harness.deploy.holds`)."""
        app = run.app
        began = time.monotonic()
        installed: list[Any] = []

        def attempt() -> None:
            left = max(int(deadline - time.monotonic()), 1)
            try:
                installed.append(
                    self.helm.install(
                        app.release,
                        source.chart,
                        namespace=run.namespace,
                        timeout=f"{left}s",
                        create_namespace=False,
                        **chart_values(app, source),
                    )
                )
            except HelmResourceExists as exc:
                hold = hold_of(exc.reason)
                if hold is None:
                    raise
                if ahead:  # an install ahead of its items never waits for a hold
                    raise HeldAhead(hold.describe(self.run_id)) from exc
                if run.waited_for is None:
                    log.info("%s: waiting for %s", app.name, hold.describe(self.run_id))
                run.waited_for = hold.describe(self.run_id)
                run.waited_s = time.monotonic() - began
                raise _StillHeld(exc) from exc

        try:
            retry_until(attempt, timeout=max(deadline - time.monotonic(), 0.0), retry_on=_StillHeld)
        except _StillHeld as held:
            exc = held.refusal
            waited = time.monotonic() - began
            raise HelmResourceExists(
                exc.operation,
                exc.release,
                exc.namespace,
                f"{run.waited_for}; waited {waited:.0f}s for it to be free\n{exc.reason}",
            ) from exc
        return installed[-1]

    def _explained(self, exc: HelmError) -> HelmError:
        """On kwok, a webhook or aggregated API the API server could not reach is no fault
        of the chart: no process runs behind its Service (kwok runs no containers), and
        the test bed rejects the dial at once. Say so instead of a bare dial error."""
        if not self.simulated:
            return exc
        match = _UNREACHABLE.search(exc.reason)
        if match is None:
            return exc
        what = (
            f"the webhook {match.group('what')!r}"
            if match.group("what")
            else "an aggregated API (the Service behind an APIService)"
        )
        return HelmError(
            exc.operation,
            exc.release,
            exc.namespace,
            f"{exc.reason}\nthe API server could not reach {what}: kwok runs no containers, "
            "so nothing answers behind its Service (run this app on kind to test it)",
        )

    def _load_images(self, run: AppRun, source: ChartRef) -> None:
        """kind, k3d: the local images that ``source`` rendered names, into the cluster."""
        if self.image_loader is None:
            return
        app = run.app
        rendered = self.helm.template(
            app.release, source.chart, namespace=run.namespace, **chart_values(app, source)
        )
        started = time.monotonic()
        result = self.image_loader.load(images_in(_documents(rendered)))
        if run.images is None:
            run.images = result
        else:  # an upgrade: what the new version added
            run.images.loaded += [i for i in result.loaded if i not in run.images.loaded]
            run.images.not_local += [i for i in result.not_local if i not in run.images.not_local]
        if result.loaded:
            run.timings["load_images"] = run.timings.get("load_images", 0.0) + (
                time.monotonic() - started
            )

    def refresh(self, ctx: AppContext, source: ChartRef) -> None:
        """Read the release's objects and hooks, and ``source``'s CRDs, from Helm."""
        app = ctx.app
        ctx.manifest = _documents(self.helm.manifest(app.release, namespace=ctx.namespace))
        ctx.hooks = _documents(self.helm.hooks(app.release, namespace=ctx.namespace))
        ctx.crds = _documents(
            self.helm.show_crds(source.chart, version=source.version, repo=source.repo)
        )

    def _create_namespace(self, run: AppRun) -> bool:
        labels = {
            LABEL_RUN: self.run_id,
            LABEL_OWNER: OWNER,
            LABEL_APP: label_value(run.app.name),  # web[small]: web-small
            LABEL_SUITE: run.suite.name[:63],
            **namespace_labels(run.app.checks),  # podSecurity: enforced from the install on
        }
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=run.namespace, labels=labels))
        try:
            call(
                client.CoreV1Api(self.api).create_namespace, body, what=f"namespace {run.namespace}"
            )
            return True
        except Conflict:
            if run.app.namespace:  # the user's own namespace
                return False
            if run.created_namespace:  # made by an install ahead that gave way to a hold
                return True
            raise

    def finalize(self, run: AppRun, *, keep: bool) -> str:
        """Uninstall and delete the namespace this run created, unless ``keep``. Says what
        it did."""
        if run.finalized:
            return ""
        run.finalized = True
        if run.scratch is not None:
            remove(run.scratch)
        if keep:
            return f"kept namespace {run.namespace} of {run.app.name} for inspection"
        if run.ctx is not None and run.ctx.applied:  # by apply checks; before the operator goes
            from harness.checks.apply import remove_applied

            remove_applied(run.ctx, namespace_goes=run.created_namespace)
        if run.ctx is not None or run.error is not None:
            try:
                self.helm.uninstall(run.app.release, namespace=run.namespace, wait=False)
            except HelmReleaseNotFound:
                pass  # never installed, or already gone
        if run.created_namespace:
            try:
                call(client.CoreV1Api(self.api).delete_namespace, run.namespace)
            except NotFound:
                pass  # already gone
            return f"removed {run.app.name} and namespace {run.namespace}"
        return f"removed {run.app.name}"


def installed_version(release: Any) -> str | None:
    """The chart version of a release as ``helm install/upgrade --output json`` gives it."""
    chart = release.get("chart") if isinstance(release, dict) else None
    version = ((chart or {}).get("metadata") or {}).get("version")
    return str(version) if version else None


def crd_drift(api: ApiClient, chart_crds: list[dict[str, Any]]) -> list[str]:
    """What the chart's ``crds/`` says that the cluster does not have: Helm installs
    ``crds/`` on first install only and never upgrades them."""
    extensions = client.ApiextensionsV1Api(api)
    drift = []
    for crd in chart_crds:
        name = crd["metadata"]["name"]
        try:
            live: Any = call(
                extensions.read_custom_resource_definition, name, _preload_content=False
            )
        except NotFound:
            drift.append(f"CRD {name}: not in the cluster")
            continue
        cluster = json.loads(live.data)
        wanted_versions = {v["name"]: v for v in crd.get("spec", {}).get("versions", [])}
        have_versions = {v["name"]: v for v in cluster.get("spec", {}).get("versions", [])}
        missing = sorted(set(wanted_versions) - set(have_versions))
        if missing:
            drift.append(f"CRD {name}: the cluster does not serve version(s) {', '.join(missing)}")
        for version, wanted in wanted_versions.items():
            if version not in have_versions:
                continue
            added = _schema_fields(wanted) - _schema_fields(have_versions[version])
            removed = _schema_fields(have_versions[version]) - _schema_fields(wanted)
            if added:
                drift.append(f"CRD {name} {version}: fields missing in the cluster: {_few(added)}")
            if removed:
                drift.append(f"CRD {name} {version}: fields the new chart dropped: {_few(removed)}")
    return drift


def _schema_fields(version: dict[str, Any]) -> set[str]:
    schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
    fields: set[str] = set()

    def walk(node: dict[str, Any], path: str) -> None:
        for key, child in (node.get("properties") or {}).items():
            fields.add(f"{path}.{key}" if path else key)
            if isinstance(child, dict):
                walk(child, f"{path}.{key}" if path else key)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, f"{path}[]")

    walk(schema, "")
    return fields


def _few(names: set[str], limit: int = 8) -> str:
    shown = sorted(names)
    more = f" (+{len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def chart_values(app: App, source: ChartRef) -> dict[str, Any]:
    """The values and chart flags Helm gets for ``app`` from ``source`` (install, upgrade,
    template alike)."""
    return {
        "values": app.values,
        "values_files": list(app.values_files),
        "set_values": app.set_values,
        "version": source.version,
        "repo": source.repo,
    }


def values_digest(app: App) -> str:
    """sha256 over the app's values, --set values and values files' contents."""
    digest = hashlib.sha256()
    digest.update(json.dumps([app.values, app.set_values], sort_keys=True, default=str).encode())
    for path in app.values_files:
        digest.update(path.read_bytes() if path.is_file() else str(path).encode())
    return "sha256:" + digest.hexdigest()


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests.load_all(text) if isinstance(doc, dict) and doc.get("kind")]
