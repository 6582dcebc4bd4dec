"""Helm, driven through pyhelm3's command builders with a safer runner.

pyhelm3 builds each verb's argv and parses Helm's JSON; its own runner joins the argv into a
shell string and logs it whole. :class:`HelmCommand` replaces that runner: it executes the
argv list directly (no shell), logs it with secrets masked, and kills Helm when the call is
cancelled. :class:`Helm` is the synchronous client the rest of the harness uses; it turns
Helm's failures into :class:`~harness.errors.HelmError` carrying Helm's own reason.

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyhelm3.command
import pyhelm3.errors

from harness.errors import HelmError
from harness.redact import MASK, SECRET_KEY, Scrubber, mask_url_credentials, value_secrets

log = logging.getLogger("harness.helm.client")

SECRET_FLAGS = {"--kube-token", "--password", "--token"}
SET_FLAGS = {"--set", "--set-string", "--set-json", "--set-file", "--set-literal"}
PLAIN_HTTP_ENV = "HELM_HARNESS_PLAIN_HTTP"
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


def redact_argv(argv: Sequence[object]) -> list[str]:
    """argv as text, with tokens, passwords and secret-looking ``--set`` values masked."""
    out: list[str] = []
    previous = ""
    for raw in argv:
        part = str(raw)
        if previous in SECRET_FLAGS:
            part = MASK
        elif previous in SET_FLAGS:
            part = ",".join(_redact_assignment(item) for item in part.split(","))
        elif "=" in part and part.split("=", 1)[0] in SECRET_FLAGS:
            part = part.split("=", 1)[0] + "=" + MASK
        elif "\n" in part:
            part = "<multi-line>"
        out.append(mask_url_credentials(part))
        previous = part if part.startswith("--") else ""
    return out


def _redact_assignment(item: str) -> str:
    key, sep, _value = item.partition("=")
    return f"{key}={MASK}" if sep and SECRET_KEY.search(key) else item


class HelmCommand(pyhelm3.command.Command):
    """pyhelm3's verbs, run without a shell, logged redacted."""

    async def run(self, command: list[Any], input: bytes | None = None) -> bytes:  # noqa: A002
        argv = [str(self._executable), *(str(part) for part in command)]
        if self._kubeconfig:
            argv += ["--kubeconfig", str(self._kubeconfig)]
        if self._kubecontext:
            argv += ["--kube-context", str(self._kubecontext)]
        shown = " ".join(redact_argv(argv))
        log.info("running: %s", shown)
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
            raise pyhelm3.errors.Error(proc.returncode or 1, stdout, stderr)
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
        ``values_files``, ``set_values``, ``version``, ``repo``)."""
        argv: list[Any] = ["template", release, chart, "--namespace", namespace]
        argv += _values_argv(chart_values.get("values_files", ()), chart_values.get("set_values"))
        version, repo = chart_values.get("version"), chart_values.get("repo")
        argv += chart_flags(chart, version=version, repo=repo)
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
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _secrets_of(chart_values: Mapping[str, Any]) -> set[str]:
    """The secret values among an install's, upgrade's or template's keyword arguments."""
    return value_secrets(
        chart_values.get("values"),
        chart_values.get("set_values"),
        chart_values.get("values_files") or (),
    )


def helm_reason(exc: pyhelm3.errors.Error) -> str:
    """Helm's message without its ``Error:`` prefix and usage noise."""
    text = exc.stderr.decode(errors="replace").strip()
    lines = [line.removeprefix("Error: ").strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines) or f"helm exited with {exc.returncode}"


class Helm:
    """A synchronous Helm client for one cluster."""

    def __init__(
        self,
        binary: Path,
        *,
        kubeconfig: Path,
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
            return asyncio.run(coro)
        except pyhelm3.errors.Error as exc:
            reason = Scrubber(secrets)(helm_reason(exc))
            raise HelmError(operation, release, namespace, reason) from exc

    def version(self) -> str:
        out = asyncio.run(self.command.run(["version", "--template", "{{ .Version }}"]))
        return out.decode().strip()

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

    def show_crds(self, chart: str, *, version: str | None = None, repo: str | None = None) -> str:
        """The CRDs in the chart's ``crds/`` folder (Helm installs but never upgrades them)."""
        coro = self.command.show_crds_text(chart, version=version, repo=repo)
        return self._call("show crds", chart, "-", coro)  # type: ignore[no-any-return]
