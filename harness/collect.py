"""Suite files as pytest items: ``<file>::<app>::install`` then one item per check
(``::ready``, ``::http[/healthz]``, ...). Apps come in dependency order; all items of apps
joined by ``dependsOn`` share one ``xdist_group``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import CheckFailed, HarnessError, HelmError, WaitTimeout
from harness.suite import App, Check, Suite, SuiteError, is_suite_file, load_suite

if TYPE_CHECKING:
    from harness.deploy import AppRun
    from harness.session import HarnessSession

DEFAULT_CHECKS = (Check(kind="ready", spec={}), Check(kind="helmTest", spec={}))


def collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    if file_path.suffix in (".yaml", ".yml") and is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


def dependency_groups(suite: Suite) -> dict[str, str]:
    """App name -> the name of its dependsOn-connected group (its first app's name)."""
    parent = {app.name: app.name for app in suite.apps}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for app in suite.apps:
        for dependency in app.depends_on:
            parent[root(app.name)] = root(dependency)
    return {app.name: root(app.name) for app in suite.apps}


def install_order(suite: Suite) -> list[App]:
    """Apps with every dependency before its dependents, file order otherwise."""
    by_name = {app.name: app for app in suite.apps}
    done: list[App] = []
    seen: set[str] = set()

    def visit(app: App) -> None:
        if app.name in seen:
            return
        seen.add(app.name)
        for dependency in app.depends_on:
            visit(by_name[dependency])
        done.append(app)

    for app in suite.apps:
        visit(app)
    return done


class SuiteFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from harness.plugin import session_of

        try:
            suite = load_suite(self.path)
        except SuiteError as exc:
            session_of(self.config).suite_errors.append(str(exc))
            return
        groups = dependency_groups(suite)
        for app in install_order(suite):
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
        yield InstallItem.from_parent(self, name="install", suite=self.suite, app=self.app)
        checks = self.app.checks if self.app.checks is not None else DEFAULT_CHECKS
        for check in checks:
            yield CheckItem.from_parent(
                self, name=check.id, suite=self.suite, app=self.app, check=check
            )


class HarnessItem(pytest.Item):
    """An item of a suite app. Failures report expected/observed, the runbook and where
    the evidence bundle is, instead of a traceback into the harness."""

    def __init__(self, *, suite: Suite, app: App, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.app = app
        collector = self.parent
        assert isinstance(collector, AppCollector)
        self.group = collector.group
        self.add_marker(pytest.mark.xdist_group(name=self.group))
        self.bundle: Path | None = None

    @property
    def harness(self) -> HarnessSession:
        from harness.plugin import session_of

        return session_of(self.config)

    @property
    def runbook(self) -> str | None:
        return self.app.runbook

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.app.line, f"{self.suite.name}::{self.app.name}::{self.name}"

    def app_run(self) -> AppRun:
        return self.harness.deployer.app_run(self.suite, self.app)

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
        run.failed = True
        self.harness.any_app_failed = True
        self.bundle = self.harness.write_bundle(run, self, exc)

    def properties(self) -> dict[str, str]:
        run = self.app_run()
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
        if self.bundle is not None:
            props["bundle"] = str(self.bundle)
        return props

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        exc = excinfo.value
        if not isinstance(exc, HarnessError):
            return super().repr_failure(excinfo)
        lines = [f"{self.app.name}::{self.name}: {exc}"]
        if self.runbook:
            lines.append(f"runbook: {self.runbook}")
        if self.bundle is not None:
            lines.append(f"evidence: {self.bundle}")
        return "\n".join(lines)


class InstallItem(HarnessItem):
    def run_item(self) -> None:
        try:
            self.harness.deployer.ensure_installed(self.suite, self.app)
        except HarnessError as exc:
            self._failed(exc)
            raise

    def properties(self) -> dict[str, str]:
        props = super().properties()
        for phase, seconds in self.app_run().timings.items():
            props[f"duration_{phase}"] = f"{seconds:.3f}"
        return props


class CheckItem(HarnessItem):
    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    @property
    def runbook(self) -> str | None:
        return self.check.runbook or self.app.runbook

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.check.line, f"{self.suite.name}::{self.app.name}::{self.name}"

    def properties(self) -> dict[str, str]:
        props = super().properties()
        props["check"] = self.check.kind
        return props

    def run_item(self) -> None:
        from harness.checks import run_check

        try:
            run = self.harness.deployer.ensure_installed(self.suite, self.app)
        except (HelmError, HarnessError) as exc:
            pytest.skip(f"{self.app.name} did not install: {_first_line(exc)}")
        assert run.ctx is not None
        try:
            run_check(run.ctx, self.check)
            if self.check.kind == "ready" and "ready" not in run.timings:
                run.timings["ready"] = time.monotonic() - run.started
        except (CheckFailed, WaitTimeout, HelmError) as exc:
            self._failed(exc)
            raise
        except pytest.skip.Exception:
            raise
        except Exception as exc:
            self._failed(exc)
            raise


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


__all__ = ["AppCollector", "CheckItem", "InstallItem", "SuiteFile", "collect_file", "SuiteError"]
