"""The synchronous Helm client the harness uses, on :mod:`harness.helm.command`.

Helm's failures become :class:`~harness.errors.HelmError` (a subclass per pyhelm3 error
type, chained from it) carrying Helm's own reason with the call's secret values scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import pyhelm3.errors

from harness import errors, stopping
from harness.errors import HelmError
from harness.helm.command import HelmCommand, helm_reason
from harness.redact import Scrubber, value_secrets


def separate_documents(text: str) -> str:
    """``helm show crds`` prints the files of ``crds/`` one after another, without a
    ``---`` where a file does not start with one: read as YAML, two files would be one
    document whose later keys win (only the last CRD seen). A top-level key that repeats
    within a document starts the next file's document."""
    out: list[str] = []
    keys: set[str] = set()
    for line in text.splitlines():
        if line.startswith("---"):
            keys.clear()
        elif line[:1].isalpha() and ":" in line:
            key = line.split(":", 1)[0]
            if key in keys:
                out.append("---")
                keys.clear()
            keys.add(key)
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


# pyhelm3's error types -> the harness's (callers match types, never Helm's words)
TYPED_ERRORS: dict[type[pyhelm3.errors.Error], type[HelmError]] = {
    pyhelm3.errors.ReleaseNotFoundError: errors.HelmReleaseNotFound,
    pyhelm3.errors.ChartNotFoundError: errors.HelmChartNotFound,
    pyhelm3.errors.FailedToRenderChartError: errors.HelmRenderError,
    pyhelm3.errors.ResourceAlreadyExistsError: errors.HelmResourceExists,
    pyhelm3.errors.InvalidResourceError: errors.HelmInvalidResource,
    pyhelm3.errors.ConnectionError: errors.HelmConnectionError,
    pyhelm3.errors.CommandCancelledError: errors.HelmCancelled,
}


async def _stoppable(coro: Coroutine[Any, Any, Any], stop: threading.Event | None) -> Any:
    """``coro``'s result; when ``stop`` (a thread's stop event, :mod:`harness.stopping`) is
    set first, Helm is terminated (the runner's cancellation does it) and Stopped raised."""
    if stop is None:
        return await coro
    task = asyncio.ensure_future(coro)
    while not task.done():
        await asyncio.wait({task}, timeout=stopping.CHECK_EVERY / 4)
        if stop.is_set() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            stopping.check()
    return task.result()


def _secrets_of(chart_values: Mapping[str, Any]) -> set[str]:
    """The secret values among an install's, upgrade's or template's keyword arguments."""
    return value_secrets(
        chart_values.get("values"),
        chart_values.get("set_values"),
        chart_values.get("values_files") or (),
    )


class Helm:
    """A synchronous Helm client for one cluster (no ``kubeconfig``: for what needs none,
    such as ``template`` and ``show``)."""

    def __init__(
        self,
        binary: Path,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        timeout: str = "5m",
    ) -> None:
        self.binary = binary
        self.command = HelmCommand(
            executable=str(binary),
            kubeconfig=kubeconfig,
            kubecontext=context,
            default_timeout=timeout,
        )

    def _call(
        self, operation: str, release: str, namespace: str, coro: Any, secrets: Any = ()
    ) -> Any:
        """Run ``coro``; Helm's failure as a HelmError whose reason never holds the secret
        ``values`` it was given (a template's ``fail`` may print one): scrubbed here, at
        the source, so neither the terminal, captured logs, pytest's junit nor a bundle
        can show it."""
        try:
            return asyncio.run(_stoppable(coro, stopping.stop_event()))
        except pyhelm3.errors.Error as exc:
            reason = Scrubber(secrets)(helm_reason(exc))
            kind = TYPED_ERRORS.get(type(exc), HelmError)
            raise kind(operation, release, namespace, reason) from exc

    def version(self) -> str:
        coro = self.command.run(["version", "--template", "{{ .Version }}"])
        return self._call("version", "-", "-", coro).decode().strip()  # type: ignore[no-any-return]

    def install(self, release: str, chart: str, *, namespace: str, **kwargs: Any) -> dict[str, Any]:
        coro = self.command.install(release, chart, namespace=namespace, **kwargs)
        secrets = _secrets_of(kwargs)
        return self._call("install", release, namespace, coro, secrets)  # type: ignore[no-any-return]

    def upgrade(self, release: str, chart: str, *, namespace: str, **kwargs: Any) -> dict[str, Any]:
        coro = self.command.install(release, chart, namespace=namespace, upgrade=True, **kwargs)
        secrets = _secrets_of(kwargs)
        return self._call("upgrade", release, namespace, coro, secrets)  # type: ignore[no-any-return]

    def template(self, release: str, chart: str, *, namespace: str, **kwargs: Any) -> str:
        coro = self.command.template_text(release, chart, namespace=namespace, **kwargs)
        secrets = _secrets_of(kwargs)
        return self._call("template", release, namespace, coro, secrets)  # type: ignore[no-any-return]

    def lint(self, chart: str, *, namespace: str, **kwargs: Any) -> tuple[bool, str]:
        """``helm lint`` of a local chart with an install's values: whether it passed, and
        its report (``[ERROR]``, ``[WARNING]`` and ``[INFO]`` lines), secrets scrubbed."""
        coro = self.command.lint_text(chart, namespace=namespace, **kwargs)
        scrub = Scrubber(_secrets_of(kwargs))
        try:
            return True, scrub(asyncio.run(_stoppable(coro, stopping.stop_event())))
        except pyhelm3.errors.Error as exc:
            report = exc.stdout.decode(errors="replace")
            if "[ERROR]" not in report:  # no report: helm itself failed
                kind = TYPED_ERRORS.get(type(exc), HelmError)
                raise kind("lint", chart, namespace, scrub(helm_reason(exc))) from exc
            return False, scrub(report)

    def test(self, release: str, *, namespace: str, timeout: str = "5m") -> str:
        coro = self.command.test(release, namespace=namespace, timeout=timeout)
        return self._call("test", release, namespace, coro)  # type: ignore[no-any-return]

    def uninstall(self, release: str, *, namespace: str, wait: bool = True) -> None:
        coro = self.command.uninstall(release, namespace=namespace, wait=wait)
        self._call("uninstall", release, namespace, coro)

    def rollback(self, release: str, revision: int | None, *, namespace: str) -> None:
        coro = self.command.rollback(release, revision, namespace=namespace)
        self._call("rollback", release, namespace, coro)

    def status(self, release: str, *, namespace: str) -> dict[str, Any]:
        coro = self.command.status(release, namespace=namespace)
        return self._call("status", release, namespace, coro)  # type: ignore[no-any-return]

    def history(self, release: str, *, namespace: str) -> list[dict[str, Any]]:
        coro = self.command.history(release, namespace=namespace)
        return list(self._call("history", release, namespace, coro))

    def manifest(self, release: str, *, namespace: str) -> str:
        coro = self.command.manifest(release, namespace=namespace)
        return self._call("get manifest", release, namespace, coro)  # type: ignore[no-any-return]

    def hooks(self, release: str, *, namespace: str) -> str:
        coro = self.command.hooks(release, namespace=namespace)
        return self._call("get hooks", release, namespace, coro)  # type: ignore[no-any-return]

    def dependency_build(self, chart: str) -> None:
        """``helm dependency build CHART``: the dependencies of a chart folder into its
        ``charts/``."""
        coro = self.command.run(["dependency", "build", chart])
        self._call("dependency build", chart, "-", coro)

    def show_crds(self, chart: str, *, version: str | None = None, repo: str | None = None) -> str:
        """The CRDs in the chart's ``crds/`` folder (Helm installs but never upgrades them),
        one YAML document each (see :func:`separate_documents`)."""
        coro = self.command.show_crds_text(chart, version=version, repo=repo)
        return separate_documents(self._call("show crds", chart, "-", coro))
