"""Suite files as pytest items: ``<file>::<app>::install`` then one item per check
(``::ready``, ``::http[/healthz]``, ...). Apps come in dependency order; all items of apps
joined by ``dependsOn`` share one ``xdist_group``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.deploy.deployer import (
    PHASE_FROM,
    PHASE_ROLLBACK,
    PHASE_TO,
    PHASES,
    AppRun,
    namespace_name,
)
from harness.errors import CheckFailed, HarnessError, HelmError, LintFailed, WaitTimeout
from harness.kube.client import CLIENT_ERRORS, api_error
from harness.plugin.state import OWNERS_SEPARATOR, session_of
from harness.suite.graph import dependency_groups, install_order
from harness.suite.model import App, Check, Suite, SuiteError, is_suite_file, load_suite

if TYPE_CHECKING:
    from harness.plugin.prefetch import Upcoming
    from harness.plugin.state import HarnessSession

DEFAULT_CHECKS = (Check(kind="ready", spec={}), Check(kind="helmTest", spec={}))


def collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    if file_path.suffix in (".yaml", ".yml") and is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


def start_prefetch(
    session: pytest.Session, worker: Callable[[Suite, App], Upcoming] | None = None
) -> None:
    """Install the run's apps ahead of their items, ``--max-parallel`` at once (see
    :mod:`harness.plugin.prefetch`); not when one at a time is asked for, or when the
    cluster cannot be had (the items say why). In an xdist worker, ``worker`` says which
    apps come from a given one on (:func:`harness.plugin.xdist.worker_queue`)."""
    from harness.plugin.prefetch import Prefetcher, in_order

    harness = session_of(session.config)
    if harness.options.lint_only:
        return  # nothing to install
    at_once = harness.options.max_parallel
    if at_once <= 1:
        return
    upcoming: Callable[[Suite, App], Upcoming] | None
    if hasattr(session.config, "workerinput"):  # the apps xdist gives it, as they come
        upcoming = worker
    else:
        apps = apps_in_order(session.items, harness.serialised)
        upcoming = in_order(apps) if len(apps) >= 2 else None
    if upcoming is None:
        return
    try:
        deployer = harness.deployer
    except HarnessError:
        return
    harness.prefetcher = Prefetcher(
        deployer, upcoming, at_once=at_once, checked=partial(harness.snapshot_metrics, ahead=True)
    )


def apps_in_order(items: list[pytest.Item], serialised: dict[str, list[str]]) -> Upcoming:
    """The apps of ``items`` in their order, each with its selected checks. An app that
    runs one after another with another (``serialised``) does not go ahead, nor does any
    app of its dependency group: installing one of them ahead installs its dependencies."""
    from harness.plugin.prefetch import Planned

    suite_items = [item for item in items if isinstance(item, HarnessItem)]
    alone = {
        (str(item.suite.path), item.group)
        for item in suite_items
        if f"{item.suite.path.name}::{item.app.name}" in serialised
    }
    apps: dict[tuple[str, str], Planned] = {}
    checks: dict[tuple[str, str], list[Check]] = {}
    for item in suite_items:
        key = (str(item.suite.path), item.app.name)
        eligible = (str(item.suite.path), item.group) not in alone
        upgrade = item.phase is not None
        apps.setdefault(key, Planned(item.suite, item.app, upgrade, eligible))
        if isinstance(item, CheckItem) and not upgrade:
            checks.setdefault(key, []).append(item.check)
    return [
        Planned(p.suite, p.app, p.upgrade, p.eligible, tuple(checks.get(key, ())))
        for key, p in apps.items()
    ]


class SuiteFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        try:
            suite = load_suite(self.path)
        except SuiteError as exc:
            session_of(self.config).suite_errors.append(str(exc))
            return
        groups = dependency_groups(suite)
        order = install_order(suite)
        # A group's apps side by side (its last item removes them all): groups in the order
        # their first app comes, dependencies first within each.
        first: dict[str, int] = {}
        for index, app in enumerate(order):
            first.setdefault(groups[app.name], index)
        order.sort(key=lambda app: first[groups[app.name]])
        for app in order:
            yield AppCollector.from_parent(
                self, name=app.name, suite=suite, app=app, group=f"{suite.name}::{groups[app.name]}"
            )


class AppCollector(pytest.Collector):
    def __init__(self, *, suite: Suite, app: App, group: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.app = app
        self.group = group

    def collect(self) -> Iterator[pytest.Item]:
        checks = self.app.checks if self.app.checks is not None else DEFAULT_CHECKS
        common = {"suite": self.suite, "app": self.app}
        options = session_of(self.config).options
        if options.lint:  # before anything of the app is installed
            yield LintItem.from_parent(self, name="lint", phase=None, **common)
        if options.lint_only:
            return
        if not self.is_upgrade_run():
            yield InstallItem.from_parent(self, name="install", phase=None, **common)
            for check in checks:
                yield CheckItem.from_parent(self, name=check.id, check=check, phase=None, **common)
            return
        # install[from] -> checks@from -> upgrade -> checks@to -> rollback -> checks@rollback
        yield InstallItem.from_parent(self, name="install[from]", phase=PHASE_FROM, **common)
        for phase in PHASES:
            if phase == PHASE_TO:
                yield StepItem.from_parent(self, name="upgrade", phase=PHASE_TO, **common)
                yield CrdDriftItem.from_parent(self, name="crd-drift", phase=PHASE_TO, **common)
            elif phase == PHASE_ROLLBACK:
                yield StepItem.from_parent(self, name="rollback", phase=PHASE_ROLLBACK, **common)
            for check in checks:
                yield CheckItem.from_parent(
                    self, name=f"{check.id}@{phase}", check=check, phase=phase, **common
                )

    def is_upgrade_run(self) -> bool:
        wanted = self.suite.upgrade or bool(self.config.getoption("harness_upgrade", False))
        return wanted and self.app.upgrade_from is not None


class HarnessItem(pytest.Item):
    """An item of a suite app. Failures report expected/observed, the runbook and where
    the evidence bundle is, instead of a traceback into the harness."""

    def __init__(self, *, suite: Suite, app: App, phase: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.app = app
        self.phase = phase  # the upgrade-run phase this item needs, or None
        collector = self.parent
        assert isinstance(collector, AppCollector)
        self.group = collector.group
        self.add_marker(pytest.mark.xdist_group(name=self.group))
        if app.xfail:
            self.add_marker(pytest.mark.xfail(reason=app.xfail))
        self.bundle: Path | None = None

    @property
    def xfail_reason(self) -> str | None:
        """Why the item is expected to fail (its app's or its check's ``xfail``), if it is."""
        return self.app.xfail

    @property
    def harness(self) -> HarnessSession:
        return session_of(self.config)

    @property
    def runbook(self) -> str | None:
        return self.app.runbook

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.app.line, f"{self.suite.name}::{self.app.name}::{self.name}"

    def app_run(self) -> AppRun:
        return self.harness.deployer.app_run(self.suite, self.app)

    def known_run(self) -> AppRun:
        """The app's run, without getting a cluster for it: properties are read in a
        ``finally``, also when the cluster could not be had or its start was interrupted
        (asking again would start another cluster while Ctrl-C is being handled)."""
        harness = self.harness
        if "deployer" in harness.__dict__:
            return harness.deployer.app_run(self.suite, self.app)
        name = namespace_name(harness.options.run_id, self.suite.name, self.app.name)
        return AppRun(suite=self.suite, app=self.app, namespace=self.app.namespace or name)

    def ready_phase(self) -> AppRun:
        """The app brought to this item's phase; skips (with the reason) when a step
        before it failed."""
        deployer = self.harness.deployer
        try:
            deployer.ensure_installed(self.suite, self.app, upgrade=self.phase is not None)
        except HarnessError as exc:
            pytest.skip(_not_installed(self.app, exc))
        try:
            return deployer.ensure_phase(self.suite, self.app, self.phase)
        except HarnessError as exc:
            step = "upgrade" if self.phase == PHASE_TO else "rollback"
            pytest.skip(f"the {step} of {self.app.name} failed: {_first_line(exc)}")

    def runtest(self) -> None:
        try:
            self.run_item()
        finally:
            # Properties travel with the test report (also from xdist workers): JUnit
            # properties and the run record are built from them.
            self.user_properties.extend(self.properties().items())

    def run_item(self) -> None:
        raise NotImplementedError

    def _failed(self, exc: BaseException) -> None:
        run = self.app_run()
        if self.xfail_reason is None:  # an expected failure fails no app (alerts, history)
            run.failed = True
            self.harness.any_app_failed = True
        self.bundle = self.harness.write_bundle(run, self, exc, self.evidence_files(run))

    def evidence_files(self, run: AppRun) -> list[tuple[str, str, str]]:
        """Files of this item's own for its failure's bundle (path, what, text)."""
        return []

    def properties(self) -> dict[str, str]:
        run = self.known_run()
        props = {
            "suite": self.suite.name,
            "app": self.app.name,
            "chart": self.app.source.chart,
            "release": self.app.release,
            "namespace": run.namespace,
        }
        if run.chart_version:
            props["chart_version"] = run.chart_version
        if self.runbook:
            props["runbook"] = self.runbook
        if self.xfail_reason:
            props["xfail"] = self.xfail_reason
        if self.app.owners:
            props["owners"] = OWNERS_SEPARATOR.join(self.app.owners)
        if self.bundle is not None:
            props["bundle"] = str(self.bundle)
        return props

    @staticmethod
    def explains(exc: BaseException) -> bool:
        """Whether ``exc`` is one the item shows as one line (the harness's, or the
        Kubernetes client's after its retries)."""
        return isinstance(exc, (HarnessError, *CLIENT_ERRORS))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        exc = excinfo.value
        if not self.explains(exc):
            return super().repr_failure(excinfo)
        if not isinstance(exc, HarnessError):  # the API failed past its retries
            exc = api_error(exc)
        lines = [f"{self.app.name}::{self.name}: {exc}"]
        if self.app.owners:
            lines.append(f"owners: {OWNERS_SEPARATOR.join(self.app.owners)}")
        if self.runbook:
            lines.append(f"runbook: {self.runbook}")
        if self.bundle is not None:
            lines.append(f"evidence: {self.bundle}")
            lines += self.evidence_lines(self.bundle)
        return "\n".join(lines)

    def evidence_lines(self, bundle: Path) -> list[str]:
        return []


class LintItem(HarnessItem):
    """``lint`` (:mod:`harness.deploy.lint`), before the app's install: fails with each
    problem on a line of its own; when it fails, the app's install and checks skip."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.checked: int | None = None

    def run_item(self) -> None:
        try:
            result = self.harness.deployer.ensure_linted(self.suite, self.app)
        except HarnessError as exc:
            run = self.app_run()
            if run.lint is not None:
                self.notes, self.checked = run.lint.notes, run.lint.checked
            self.problems = exc.problems if isinstance(exc, LintFailed) else [_first_line(exc)]
            if self.xfail_reason is None:
                run.failed = True
                self.harness.any_app_failed = True
            raise
        self.notes, self.checked = result.notes, result.checked

    def properties(self) -> dict[str, str]:
        props = super().properties()
        seconds = self.known_run().timings.get("lint")
        if seconds is not None:
            props["duration_lint"] = f"{seconds:.3f}"
        if self.checked is not None:
            props["lint_checked"] = str(self.checked)
        if self.problems:
            props["lint_problems"] = "\n".join(self.problems)
        if self.notes:
            props["lint_notes"] = "\n".join(self.notes)
        return props


class InstallItem(HarnessItem):
    def run_item(self) -> None:
        try:
            run = self.harness.deployer.ensure_installed(
                self.suite, self.app, upgrade=self.phase is not None
            )
        except LintFailed as exc:
            pytest.skip(_not_installed(self.app, exc))
        except HarnessError as exc:
            self._failed(exc)
            raise
        if run.ctx is not None:
            # Installed ahead (plugin/prefetch.py): the readiness time left after the
            # install counts from now, when the app's checks begin, as when not ahead.
            left = self.app.timeout - run.timings.get("install", 0.0)
            run.ctx.deadline = max(run.ctx.deadline, time.monotonic() + left)

    def properties(self) -> dict[str, str]:
        props = super().properties()
        run = self.known_run()
        for phase, seconds in dict(run.timings).items():  # a copy: work ahead adds phases
            props[f"duration_{phase}"] = f"{seconds:.3f}"
        if run.images is not None:
            props["images_loaded"] = ", ".join(run.images.present) or "-"
            if run.images.not_local:
                props["images_not_local"] = ", ".join(run.images.not_local)
        return props


class StepItem(HarnessItem):
    """``upgrade`` or ``rollback`` of an upgrade run: fails with Helm's reason."""

    def run_item(self) -> None:
        try:
            self.harness.deployer.ensure_installed(self.suite, self.app, upgrade=True)
        except HarnessError as exc:
            pytest.skip(_not_installed(self.app, exc))
        try:
            self.harness.deployer.ensure_phase(self.suite, self.app, self.phase)
        except HarnessError as exc:
            self._failed(exc)
            raise

    def properties(self) -> dict[str, str]:
        props = super().properties()
        seconds = self.known_run().timings.get(self.name)
        if seconds is not None:
            props[f"duration_{self.name}"] = f"{seconds:.3f}"
        return props


class CrdDriftItem(HarnessItem):
    """After the upgrade: the CRDs the new chart ships in ``crds/`` that the cluster did
    not get (Helm installs ``crds/`` on first install only)."""

    def run_item(self) -> None:
        run = self.ready_phase()
        if run.crd_drift:
            exc = CheckFailed(
                "the cluster to have the CRDs the new chart ships in crds/ (Helm never "
                "upgrades them: apply them before upgrading)",
                f"{len(run.crd_drift)} difference(s)",
                details="\n".join(f"  {line}" for line in run.crd_drift),
            )
            self._failed(exc)
            raise exc


class CheckItem(HarnessItem):
    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.ran_ahead: float | None = None  # seconds, when the check ran ahead of the item
        if check.xfail:  # before the app's: pytest goes by the first xfail mark
            self.add_marker(pytest.mark.xfail(reason=check.xfail), append=False)
        self.caught: list[str] = []  # the files its catch steps wrote into the bundle,
        self.caught_in = ""  # in this folder of it

    @property
    def xfail_reason(self) -> str | None:
        return self.check.xfail or self.app.xfail

    def evidence_files(self, run: AppRun) -> list[tuple[str, str, str]]:
        from harness.report.evidence import safe_name

        caught = run.ctx.caught.pop(self.check.id, []) if run.ctx is not None else []
        self.caught_in = f"catch/{safe_name(self.name)}"
        self.caught = [item.name for item in caught]
        return [(f"{self.caught_in}/{item.name}", item.what, item.text) for item in caught]

    def evidence_lines(self, bundle: Path) -> list[str]:
        if not self.caught:
            return []
        return [f"catch: {bundle / self.caught_in}/ ({', '.join(self.caught)})"]

    @property
    def runbook(self) -> str | None:
        return self.check.runbook or self.app.runbook

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.check.line, f"{self.suite.name}::{self.app.name}::{self.name}"

    def properties(self) -> dict[str, str]:
        props = super().properties()
        props["check"] = self.check.kind
        if self.ran_ahead is not None:  # the check's own time; the item's is its wait
            props["ran_ahead"] = f"{self.ran_ahead:.3f}"
        return props

    def run_item(self) -> None:
        from harness.plugin.prefetch import run_and_time

        run = self.ready_phase()
        prefetcher = self.harness.prefetcher
        ahead = None
        if prefetcher is not None and self.phase is None:
            ahead = prefetcher.outcome(self.suite, self.app, self.check)
        try:
            if ahead is not None:  # run in a thread ahead of this item: its outcome
                outcome = ahead.result()
                self.ran_ahead = outcome.seconds
                if outcome.raised is not None:
                    raise outcome.raised
            else:
                run_and_time(run, self.check)
        except (CheckFailed, WaitTimeout, HelmError) as exc:
            self._failed(exc)
            raise
        except pytest.skip.Exception:
            raise
        except Exception as exc:
            self._failed(exc)
            raise


def _not_installed(app: App, exc: HarnessError) -> str:
    """Why an item skips: its app was not installed."""
    if isinstance(exc, LintFailed):
        return f"lint failed: {_first_line(exc)}"
    return f"{app.name} did not install: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


__all__ = [
    "AppCollector",
    "CheckItem",
    "InstallItem",
    "LintItem",
    "SuiteFile",
    "collect_file",
    "SuiteError",
]
