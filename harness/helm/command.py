"""Every Helm invocation: pyhelm3's verb builders with a safer runner.

pyhelm3 builds each verb's argv and parses Helm's JSON; its own runner joins the argv into a
shell string and logs it whole. :class:`HelmCommand` replaces that runner: it executes the
argv list directly (no shell), logs it with secrets masked (:func:`harness.redact.redact_args`),
kills Helm when the call is cancelled, and raises pyhelm3's typed errors, classified from
Helm's message as pyhelm3's own runner does (:func:`error_class`).

Charts from OCI registries on loopback (``oci://localhost``, ``oci://127.x.x.x``,
``oci://[::1]``) are fetched with ``--plain-http``, as local registries rarely serve TLS;
``HELM_HARNESS_PLAIN_HTTP=1`` extends that to every OCI registry, ``=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyhelm3.command
import pyhelm3.errors

from harness.redact import redact_args

log = logging.getLogger("harness.helm")
# Helm is started from several threads at once (apps installed ahead, plugin/prefetch.py);
# a start under way while another thread forks has failed with EFAULT: starts are taken
# in turn (the Helm processes still run side by side).
_SPAWNING = threading.Lock()

PLAIN_HTTP_ENV = "HELM_HARNESS_PLAIN_HTTP"
_CHART_NOT_FOUND = re.compile(
    r"chart \S* ?not found|no chart (name|version) found|not a valid chart"
)
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|kubernetes cluster unreachable"
)
LOOPBACK_OCI = re.compile(r"oci://(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?(/|$)", re.I)


def plain_http(chart: str) -> bool:
    """Whether Helm should reach ``chart``'s OCI registry over plain HTTP (see above)."""
    if not chart.startswith("oci://"):
        return False
    forced = os.environ.get(PLAIN_HTTP_ENV, "").strip()
    if forced:
        return forced.lower() not in ("0", "false", "no")
    return LOOPBACK_OCI.match(chart) is not None


def chart_flags(chart: str, *, version: str | None = None, repo: str | None = None) -> list[str]:
    """Where Helm finds ``chart``: ``--version``, ``--repo`` and ``--plain-http`` as needed."""
    flags = ["--version", version] if version else []
    flags += ["--repo", repo] if repo else []
    return flags + (["--plain-http"] if plain_http(chart) else [])


class HelmCommand(pyhelm3.command.Command):
    """pyhelm3's verbs, run without a shell, logged redacted."""

    async def run(self, command: list[Any], input: bytes | None = None) -> bytes:  # noqa: A002
        argv = [str(self._executable), *(str(part) for part in command)]
        if self._kubeconfig:
            argv += ["--kubeconfig", str(self._kubeconfig)]
        if self._kubecontext:
            argv += ["--kube-context", str(self._kubecontext)]
        shown = " ".join(redact_args(argv))
        log.info("running: %s", shown)
        with _SPAWNING:  # one process start at a time (installs run in threads)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        try:
            stdout, stderr = await proc.communicate(input)
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
            raise
        if proc.returncode != 0:
            log.warning("failed (%s): %s", proc.returncode, shown)
            raise error_class(stderr)(proc.returncode or 1, stdout, stderr)
        return stdout

    async def install(
        self,
        release: str,
        chart: str,
        *,
        namespace: str,
        values: Mapping[str, Any] | None = None,
        values_files: Sequence[Path] = (),
        set_values: Mapping[str, Any] | None = None,
        version: str | None = None,
        repo: str | None = None,
        upgrade: bool = False,
        wait: bool = False,
        timeout: str = "5m",
        create_namespace: bool = True,
    ) -> dict[str, Any]:
        """``helm install`` (or ``helm upgrade``): values files first, inline values over
        them (sent on stdin), ``--set`` last, as Helm layers them."""
        argv: list[Any] = ["upgrade" if upgrade else "install", release, chart]
        argv += ["--namespace", namespace, "--output", "json", "--timeout", timeout]
        if upgrade:
            argv += ["--history-max", self._history_max_revisions]
        elif create_namespace:
            argv.append("--create-namespace")
        argv += _values_argv(values_files, set_values)
        argv += chart_flags(chart, version=version, repo=repo)
        if wait:
            argv += ["--wait", "--wait-for-jobs"]
        out = await self.run(argv, json.dumps(dict(values or {})).encode())
        parsed: dict[str, Any] = json.loads(out[out.index(b"{") :])
        return parsed

    async def template_text(
        self, release: str, chart: str, *, namespace: str, **chart_values: Any
    ) -> str:
        """``helm template`` with ``install``'s values and chart flags (``values``,
        ``values_files``, ``set_values``, ``version``, ``repo``) and any extra ``flags``
        (``--include-crds``, ``--kube-version``)."""
        argv: list[Any] = ["template", release, chart, "--namespace", namespace]
        argv += list(chart_values.get("flags", ()))
        argv += _values_argv(chart_values.get("values_files", ()), chart_values.get("set_values"))
        version, repo = chart_values.get("version"), chart_values.get("repo")
        argv += chart_flags(chart, version=version, repo=repo)
        values = json.dumps(dict(chart_values.get("values") or {})).encode()
        return (await self.run(argv, values)).decode()

    async def lint_text(self, chart: str, *, namespace: str, **chart_values: Any) -> str:
        """``helm lint`` with ``install``'s values and any extra ``flags``
        (``--kube-version``). Its report is on stdout, also when it found errors: the
        pyhelm3 error raised then carries it (``stdout``)."""
        argv: list[Any] = ["lint", chart, "--namespace", namespace]
        argv += list(chart_values.get("flags", ()))
        argv += _values_argv(chart_values.get("values_files", ()), chart_values.get("set_values"))
        values = json.dumps(dict(chart_values.get("values") or {})).encode()
        return (await self.run(argv, values)).decode()

    async def test(self, release: str, *, namespace: str, timeout: str = "5m") -> str:
        """``helm test``; its output names each test pod and its phase."""
        argv = ["test", release, "--namespace", namespace, "--timeout", timeout]
        return (await self.run(argv)).decode()

    async def manifest(self, release: str, *, namespace: str) -> str:
        return (await self.run(["get", "manifest", release, "--namespace", namespace])).decode()

    async def hooks(self, release: str, *, namespace: str) -> str:
        return (await self.run(["get", "hooks", release, "--namespace", namespace])).decode()

    async def show_crds_text(
        self, chart: str, *, version: str | None = None, repo: str | None = None
    ) -> str:
        argv = ["show", "crds", chart, *chart_flags(chart, version=version, repo=repo)]
        return (await self.run(argv)).decode()


def _values_argv(values_files: Sequence[Path], set_values: Mapping[str, Any] | None) -> list[str]:
    """Values files first, inline values over them (on stdin), ``--set`` last."""
    argv: list[str] = []
    for path in values_files:
        argv += ["--values", str(path)]
    argv += ["--values", "-"]
    for key, value in (set_values or {}).items():
        argv += ["--set", f"{key}={_set_text(value)}"]
    return argv


def _set_text(value: Any) -> str:
    """A suite's ``set:`` value as Helm's ``--set`` reads it (``null`` removes the key)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_class(stderr: bytes) -> type[pyhelm3.errors.Error]:
    """The pyhelm3 error type Helm's message stands for (the same reading as pyhelm3's own
    runner, whose classification is not a function of its own that could be called)."""
    text = stderr.decode(errors="replace").lower()
    rules: list[tuple[bool, type[pyhelm3.errors.Error]]] = [
        ("context canceled" in text, pyhelm3.errors.CommandCancelledError),
        ("etcdserver" in text, pyhelm3.errors.ConnectionError),
        ("release: not found" in text, pyhelm3.errors.ReleaseNotFoundError),
        ("failed to render chart" in text, pyhelm3.errors.FailedToRenderChartError),
        ("execution error" in text, pyhelm3.errors.FailedToRenderChartError),
        ("resource that already exists" in text, pyhelm3.errors.ResourceAlreadyExistsError),
        ("exists and cannot be imported" in text, pyhelm3.errors.ResourceAlreadyExistsError),
        ("is invalid" in text, pyhelm3.errors.InvalidResourceError),
        (_CHART_NOT_FOUND.search(text) is not None, pyhelm3.errors.ChartNotFoundError),
        (_UNREACHABLE.search(text) is not None, pyhelm3.errors.ConnectionError),
    ]
    return next((kind for matched, kind in rules if matched), pyhelm3.errors.Error)


def helm_reason(exc: pyhelm3.errors.Error) -> str:
    """Helm's message without its ``Error:`` prefix and usage noise."""
    text = exc.stderr.decode(errors="replace").strip()
    lines = [line.removeprefix("Error: ").strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines) or f"helm exited with {exc.returncode}"
