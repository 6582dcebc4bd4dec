"""``http``: an HTTP request to a Service (or pod) port through the API server's
port-forward, the same path on kind, k3d, existing clusters and kwok.

``{service: web, port: 80, path: /healthz, expect: {status: 200, body: ok}}``: a ready pod
behind the Service is chosen and its target port forwarded to 127.0.0.1; the request is
retried (connection errors and unexpected answers alike) until it gets the expected status
(default 200) and, if given, a body containing ``expect.body``, or the timeout passes.
``pod: NAME`` instead of ``service`` targets a pod's container port directly.

On a kwok cluster nothing runs in the pods: unless a test has pointed the pod's port at a
local server (``harness.clusters.kwok_sim.serve_pod_port``), the check is skipped with that reason.
"""

from __future__ import annotations

import http.client
from typing import Any

import pytest

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError
from harness.kube.portforward import Forwarder, PortForwardError, forwarding, pod_for_service
from harness.kube.wait import retry_until
from harness.suite.model import Check

KWOK_UNSERVED = "no forward found for port"


class _Unexpected(Exception):
    """The answer did not match yet; kept to report the last one."""


def run(ctx: AppContext, check: Check) -> None:
    spec = check.spec
    path = str(spec.get("path", "/"))
    expect: dict[str, Any] = spec.get("expect") or {}
    want_status = int(expect.get("status", 200))
    want_body = expect.get("body")
    port = spec.get("port")
    if port is None or not (spec.get("service") or spec.get("pod")):
        raise UsageError("http: give 'service' (or 'pod') and 'port'")
    timeout = ctx.timeout_for(check, default=30.0)
    shown = f"service/{spec['service']}" if spec.get("service") else f"pod/{spec['pod']}"
    expected = f"GET {path} on {shown}:{port} to answer {want_status}" + (
        f" with a body containing {want_body!r}" if want_body is not None else ""
    )
    try:
        if spec.get("service"):
            pod, target_port = pod_for_service(ctx.api, ctx.namespace, str(spec["service"]), port)
        else:
            pod, target_port = str(spec["pod"]), int(port)
        with forwarding(ctx.api, ctx.namespace, pod, target_port) as forwarder:
            last = _request_until(forwarder, path, want_status, want_body, timeout, ctx.simulated)
    except PortForwardError as exc:
        if ctx.simulated and KWOK_UNSERVED in exc.reason:
            pytest.skip(
                f"kwok simulates pods: nothing serves {shown}:{port} (point the pod's port at a "
                "local server with harness.clusters.kwok_sim.serve_pod_port, or run on kind, "
                "k3d or an existing cluster)"
            )
        raise CheckFailed(expected, f"cannot reach it: {exc.reason}") from exc
    if last is not None:
        raise CheckFailed(f"{expected} within {timeout:g}s", last)


def _request_until(
    forwarder: Forwarder,
    path: str,
    want_status: int,
    want_body: Any,
    timeout: float,
    simulated: bool,
) -> str | None:
    """Retry the request until it answers as expected (None) or the timeout passes (the
    last answer). A stream kwok cannot serve at all is raised at once."""
    last = ["no answer"]

    def attempt() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", forwarder.local_port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read(64 * 1024).decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            stream_errors = list(forwarder.errors)
            if simulated and stream_errors and KWOK_UNSERVED in stream_errors[-1].reason:
                raise stream_errors[-1] from exc
            last[0] = stream_errors[-1].reason if stream_errors else f"connection failed: {exc}"
            raise _Unexpected(last[0]) from exc
        finally:
            connection.close()
        last[0] = f"{response.status} {response.reason}; body: {body[:200]!r}"
        if response.status != want_status or (want_body is not None and str(want_body) not in body):
            raise _Unexpected(last[0])

    try:
        retry_until(attempt, timeout=timeout, retry_on=_Unexpected)
    except _Unexpected:
        return last[0]
    return None
