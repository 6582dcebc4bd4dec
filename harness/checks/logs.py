"""``logs``: what the containers of the app's pods write.

``{selector: app=web, contains: [listening], absent: [panic, ERROR], container: web}``:
every matching pod (default: the release's pods, hooks excluded) must have each
``contains`` text in its logs — waited for until the timeout, since a process logs a
moment after it starts — and none may have any ``absent`` text. ``container`` limits the
check to one container (default: all of the pod's containers); ``previous: true`` reads
the previous instance's logs.

On a kwok cluster nothing runs in the pods: unless a test has pointed the container's
logs at a file (``harness.clusters.kwok_sim.set_pod_logs``), the check is skipped with that reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from harness.checks.context import AppContext
from harness.errors import CheckFailed, KubeApiError
from harness.kube.client import call
from harness.kube.wait import retry_until
from harness.suite.model import Check

KWOK_NO_LOGS = "no logs found for container"
MAX_BYTES = 1024 * 1024


class _Missing(Exception):
    """Some expected text has not shown up yet."""


class _NoLogs(Exception):
    """The simulated cluster has no logs for this container."""


def run(ctx: AppContext, check: Check) -> None:
    spec = check.spec
    contains = [str(text) for text in spec.get("contains") or []]
    absent = [str(text) for text in spec.get("absent") or []]
    selector = spec.get("selector")
    timeout = ctx.timeout_for(check, default=30.0)
    core = client.CoreV1Api(ctx.api)
    shown = f"pods matching {selector}" if selector else "the release's pods"

    def pods() -> list[dict[str, Any]]:
        if selector:
            found: list[dict[str, Any]] = ctx.lister_for(ctx.resolver.by_name("pods"))(
                namespace=ctx.namespace, label_selector=str(selector)
            )["items"]
            return found
        return ctx.release_pods()

    texts: dict[str, str] = {}
    missing: list[str] = []

    def read_all() -> None:
        matched = pods()
        if not matched:
            missing[:] = [f"no pod matches ({shown})"]
            raise _Missing()
        texts.clear()
        for pod in matched:
            name = pod["metadata"]["name"]
            containers = (
                [spec["container"]]
                if spec.get("container")
                else [c["name"] for c in pod["spec"].get("containers") or []]
            )
            texts[name] = "".join(_read(core, ctx.namespace, name, c, spec) for c in containers)
        missing[:] = [
            f"pod/{pod}: no {text!r}"
            for pod, log in texts.items()
            for text in contains
            if text not in log
        ]
        if missing:
            raise _Missing()

    try:
        retry_until(read_all, timeout=timeout, retry_on=_Missing)
    except _NoLogs as exc:
        if not ctx.simulated:
            raise CheckFailed(f"{shown} to have logs", f"none for {exc}") from exc
        pytest.skip(
            f"kwok simulates pods: no logs are configured for {exc} (point them at a file with "
            "harness.clusters.kwok_sim.set_pod_logs, or run on kind, k3d or an existing cluster)"
        )
    except _Missing as exc:
        raise CheckFailed(
            f"{shown} to log {contains} within {timeout:g}s", "; ".join(missing)
        ) from exc
    offending = [
        f"pod/{pod}: {line.strip()[:200]!r}"
        for pod, log in texts.items()
        for line in log.splitlines()
        if any(text in line for text in absent)
    ]
    if offending:
        more = f" (+{len(offending) - 10} more lines)" if len(offending) > 10 else ""
        raise CheckFailed(f"{shown} to log none of {absent}", "; ".join(offending[:10]) + more)


def _read(core: client.CoreV1Api, namespace: str, pod: str, container: str, spec: Any) -> str:
    try:
        text: str = call(
            core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            previous=bool(spec.get("previous", False)),
            limit_bytes=MAX_BYTES,
            _request_timeout=15,
        )
        return text
    except KubeApiError as exc:
        if KWOK_NO_LOGS in exc.message:
            raise _NoLogs(f"container {container} of pod {pod}") from exc
        if exc.status in (400, 404):  # not started yet, or gone: maybe later
            return ""
        raise
