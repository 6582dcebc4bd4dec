"""Steering a kwok cluster's simulation at run time: what a pod's port answers and what
its containers' logs say.

kwok never runs containers. kwok-controller plays every node's kubelet for the API server
(the nodes' ``kubeletEndpoint`` is its port; the API server dials it without verifying
TLS), and answers a pod's ``portforward`` and ``log`` subresources from configuration. The
harness's kwok clusters serve that configuration as custom resources (``kwokctl
--enable-crds ClusterPortForward,PortForward,ClusterLogs,Logs``, see
:mod:`harness.clusters.kwok`), so a test changes it while the cluster runs:

- :func:`serve_pod_port`: a port-forward to a pod's port becomes a TCP connection to a
  local address, typically a test server on 127.0.0.1. ``kubectl port-forward``,
  :func:`harness.kube.portforward.port_forward` and ``http`` checks then reach that server
  exactly as they reach the container on kind.
- :func:`set_pod_logs`: ``kubectl logs`` (also ``--follow``, ``--tail``, ``--previous``)
  of a container reads a local file of CRI log lines (``<RFC3339 time> stdout F <text>``),
  which :func:`write_cri_log` writes.

Nothing else is simulated: the pod's own IP, Service and pod proxying, probes, and what
the application would really answer do not exist; the local server or file stands in.
One difference from a real kubelet: when the local server closes a connection, kwok keeps
the stream open until the client closes it (its tunnel waits for both directions), so a
client must know where an answer ends (Content-Length or chunked, as HTTP clients do)
rather than read until the connection closes.

Each setting is one cluster-scoped ``ClusterPortForward`` or ``ClusterLogs`` per pod and
port (or container), named ``helm-harness.<namespace>.<pod>.<port|container>``, labelled
with the namespace and owned by it, so it is deleted with the namespace (or at once with
:func:`remove_simulation`). Setting the same pod and port again replaces it.

kwok-controller reads these objects through a watch, so a new one takes effect a moment
later (up to a few seconds just after the cluster starts: kwok-controller starts before
kwokctl installs the resource definitions, and its first list of them is retried after a
back-off). Both helpers return only once kwok-controller answers with it, checked through the
API server: logs by reading the container's last line back; ports with a probe, since a
forward that works and one not yet seen look alike from outside. The probe creates a
second ClusterPortForward after the real ones, sending a spare port of the pod to a
listener of its own, and waits until a port-forward to that spare port reaches the
listener. kwok reads ClusterPortForwards through one watch, in order, so once it serves
the probe it serves everything created before it; the probe is then deleted.

Errors::

    HarnessError
    └── SimulationError   the cluster does not serve kwok's resources, no pod matches, or
                          kwok-controller did not take the setting up before the deadline
"""

from __future__ import annotations

import hashlib
import logging
import selectors
import socket
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from harness.errors import Conflict, HarnessError, KubeApiError, NotFound
from harness.kube.client import call
from harness.kube.portforward import PortForwardError, open_pod_stream

__all__ = [
    "PodSelector",
    "SimulationError",
    "remove_simulation",
    "serve_pod_port",
    "set_pod_logs",
    "write_cri_log",
]

GROUP = "kwok.x-k8s.io"
VERSION = "v1alpha1"
PORT_FORWARDS = "clusterportforwards"
LOGS = "clusterlogs"
NAMESPACE_LABEL = "helm-harness.io/namespace"
MANAGED_BY = {"app.kubernetes.io/managed-by": "helm-harness"}
PROBE_PORTS = (65535, 65534)  # the spare port the probe uses: the first one not served
DEFAULT_TIMEOUT = 30.0

PodSelector = str | Mapping[str, str]
"""A pod's name, or labels that every chosen pod carries (``{}``: every pod in the
namespace). Labels are resolved to the pods that exist when the helper is called."""

Obj = dict[str, Any]

log = logging.getLogger(__name__)


class SimulationError(HarnessError):
    """kwok's simulation could not be set as asked."""

    def __init__(self, namespace: str, what: str, reason: str) -> None:
        self.namespace = namespace
        self.what = what
        self.reason = reason
        super().__init__(f"cannot simulate {what} in namespace {namespace}: {reason}")


class _NotYet(Exception):
    """kwok-controller does not answer with the new setting yet (retried)."""


# -- the public helpers ------------------------------------------------------------------------


def serve_pod_port(
    api: client.ApiClient,
    namespace: str,
    pod_or_selector: PodSelector,
    port: int,
    target_host: str,
    target_port: int,
    *,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Make a port-forward to ``port`` of the chosen pods connect to
    ``target_host:target_port``; returns the ClusterPortForward names.

    With ``wait`` (the default), returns once kwok-controller does so (the pods must be
    scheduled by then), else raises SimulationError after ``timeout`` seconds.
    """
    what = f"port {port} of {_describe(pod_or_selector)}"
    pods = _pods(api, namespace, pod_or_selector, what)
    owner = _namespace_owner(api, namespace, what)
    forward = {"ports": [port], "target": {"address": target_host, "port": target_port}}
    names = [
        _apply(
            api,
            PORT_FORWARDS,
            "ClusterPortForward",
            _name(namespace, pod, str(port)),
            owner,
            {"selector": _selector(namespace, pod), "forwards": [forward]},
            what,
        )
        for pod in pods
    ]
    if wait:
        spare = next(p for p in PROBE_PORTS if p != port)
        _await_forwards(api, namespace, pods[-1], spare, owner, timeout, what)
    return names


def set_pod_logs(
    api: client.ApiClient,
    namespace: str,
    selector: PodSelector,
    container: str,
    log_file: Path,
    *,
    previous_log_file: Path | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Make the logs of ``container`` in the chosen pods read ``log_file`` (CRI log lines,
    see :func:`write_cri_log`; ``--previous`` reads ``previous_log_file``); returns the
    ClusterLogs names.

    With ``wait`` (the default), returns once reading the container's logs through the API
    server gives the file's last line, else raises SimulationError after ``timeout``.
    """
    what = f"logs of container {container} of {_describe(selector)}"
    pods = _pods(api, namespace, selector, what)
    owner = _namespace_owner(api, namespace, what)
    entry: Obj = {"containers": [container], "logsFile": str(log_file.resolve())}
    if previous_log_file is not None:
        entry["previousLogsFile"] = str(previous_log_file.resolve())
    names = [
        _apply(
            api,
            LOGS,
            "ClusterLogs",
            _name(namespace, pod, container),
            owner,
            {"selector": _selector(namespace, pod), "logs": [entry]},
            what,
        )
        for pod in pods
    ]
    if wait:
        _await_logs(api, namespace, pods[-1], container, log_file, timeout, what)
    return names


def write_cri_log(
    path: Path,
    lines: Iterable[str],
    *,
    stream: str = "stdout",
    start: datetime | None = None,
    append: bool = False,
) -> Path:
    """Write ``lines`` as CRI log lines (``<RFC3339 time> <stream> F <text>``), one
    millisecond apart from ``start`` (default: now); a text with newlines becomes several
    lines. Returns ``path``."""
    if stream not in ("stdout", "stderr"):
        raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
    moment = start or datetime.now(timezone.utc)
    out = []
    for text in lines:
        for line in text.split("\n"):
            stamp = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.append(f"{stamp} {stream} F {line}\n")
            moment += timedelta(milliseconds=1)
    with path.open("a" if append else "w") as handle:
        handle.writelines(out)
    return path


def remove_simulation(api: client.ApiClient, namespace: str) -> None:
    """Delete every ClusterPortForward and ClusterLogs the harness made for ``namespace``
    (deleting the namespace does so too, through the garbage collector)."""
    objects = client.CustomObjectsApi(api)
    for plural in (PORT_FORWARDS, LOGS):
        selector = f"{NAMESPACE_LABEL}={namespace}"
        try:
            listed = cast(
                Obj,
                call(
                    objects.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    plural,
                    label_selector=selector,
                ),
            )
        except NotFound:
            continue  # kwok's resources are not served here: nothing was made
        for item in listed.get("items", []):
            name = item["metadata"]["name"]
            try:
                call(objects.delete_cluster_custom_object, GROUP, VERSION, plural, name)
            except NotFound:
                pass  # gone already


# -- the objects -------------------------------------------------------------------------------


def _describe(selector: PodSelector) -> str:
    if isinstance(selector, str):
        return f"pod {selector}"
    labels = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    return f"pods with labels {labels}" if labels else "every pod"


def _pods(api: client.ApiClient, namespace: str, selector: PodSelector, what: str) -> list[str]:
    if isinstance(selector, str):
        return [selector]
    labels = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    listed = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=labels, _request_timeout=30
    )
    names = sorted(pod.metadata.name for pod in listed.items if pod.metadata and pod.metadata.name)
    if not names:
        raise SimulationError(namespace, what, f"no pod matches {labels or 'anything'}")
    return names


def _namespace_owner(api: client.ApiClient, namespace: str, what: str) -> Obj:
    try:
        found = call(client.CoreV1Api(api).read_namespace, namespace, _request_timeout=30)
    except KubeApiError as exc:
        raise SimulationError(namespace, what, f"cannot read the namespace: {exc.reason}") from exc
    uid = found.metadata.uid if found.metadata else None
    return {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid}


def _name(namespace: str, pod: str, item: str) -> str:
    """``helm-harness.<namespace>.<pod>.<item>``: a namespace and a container name hold no
    dots and a port is a number, so names of different settings never collide."""
    name = f"helm-harness.{namespace}.{pod}.{item}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"helm-harness.{namespace}.{digest}"


def _selector(namespace: str, pod: str) -> Obj:
    return {"matchNamespaces": [namespace], "matchNames": [pod]}


def _apply(
    api: client.ApiClient,
    plural: str,
    kind: str,
    name: str,
    owner: Obj,
    spec: Obj,
    what: str,
) -> str:
    """Create the object, or replace the spec of the one with that name."""
    objects = client.CustomObjectsApi(api)
    namespace = owner["name"]
    body: Obj = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {
            "name": name,
            "labels": {**MANAGED_BY, NAMESPACE_LABEL: namespace},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }
    try:
        call(objects.create_cluster_custom_object, GROUP, VERSION, plural, body)
        return name
    except NotFound as exc:
        raise SimulationError(
            namespace,
            what,
            f"the cluster does not serve {kind} ({GROUP}/{VERSION}); it was not made by "
            "helm-harness's kwok provider, which enables kwok's resources with "
            "kwokctl --enable-crds: recreate it (helm-harness cluster down, then up)",
        ) from exc
    except Conflict:
        pass  # it exists: replace its spec
    current = cast(Obj, objects.get_cluster_custom_object(GROUP, VERSION, plural, name))
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    objects.replace_cluster_custom_object(GROUP, VERSION, plural, name, body)
    return name


# -- waiting until kwok-controller answers with the new setting ----------------------------------


def _retrying(timeout: float) -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(_NotYet),
        wait=wait_exponential(multiplier=0.02, max=0.5),
        stop=stop_after_delay(timeout),
        before_sleep=before_sleep_log(log, logging.DEBUG),
        reraise=True,
    )


def _await_forwards(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    spare_port: int,
    owner: Obj,
    timeout: float,
    what: str,
) -> None:
    deadline = time.monotonic() + timeout
    with socket.create_server(("127.0.0.1", 0)) as listener:
        probe = _apply(
            api,
            PORT_FORWARDS,
            "ClusterPortForward",
            _name(namespace, pod, "probe"),
            owner,
            {
                "selector": _selector(namespace, pod),
                "forwards": [
                    {
                        "ports": [spare_port],
                        "target": {"address": "127.0.0.1", "port": listener.getsockname()[1]},
                    }
                ],
            },
            what,
        )
        try:
            for attempt in _retrying(timeout):
                with attempt:
                    _probe_once(api, namespace, pod, spare_port, listener, deadline)
        except _NotYet as exc:
            raise SimulationError(
                namespace, what, f"kwok-controller did not serve it within {timeout:g}s: {exc}"
            ) from exc
        finally:
            objects = client.CustomObjectsApi(api)
            try:
                call(objects.delete_cluster_custom_object, GROUP, VERSION, PORT_FORWARDS, probe)
            except NotFound:
                pass  # gone already


def _probe_once(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    port: int,
    listener: socket.socket,
    deadline: float,
) -> None:
    """One port-forward to the spare port: done when it reaches ``listener``."""
    try:
        stream = open_pod_stream(api, namespace, pod, port)
    except PortForwardError as exc:
        if exc.status in (400, 500, 502, 503):  # e.g. the pod is not scheduled yet
            raise _NotYet(exc.reason) from exc
        raise SimulationError(namespace, f"pod {pod}", exc.reason) from exc
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(stream.socket, selectors.EVENT_READ)
            ready = selector.select(max(deadline - time.monotonic(), 0.1))
            if any(key.fileobj is listener for key, _ in ready):
                conn, _ = listener.accept()
                conn.close()
                return
            # Else the stream ended (nothing was sent on it), with kwok's reason if it gave one.
            failure = stream.failure() if ready else None
            raise _NotYet(failure.reason if failure else "no answer from kwok-controller")
    finally:
        stream.close()


def _await_logs(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    container: str,
    log_file: Path,
    timeout: float,
    what: str,
) -> None:
    expected = _last_line(log_file)
    core = client.CoreV1Api(api)

    def read_back() -> None:
        try:
            text = call(
                core.read_namespaced_pod_log,
                pod,
                namespace,
                container=container,
                tail_lines=1,
                _request_timeout=30,
            )
        except KubeApiError as exc:
            message = exc.message or f"HTTP {exc.status}: {exc.reason}"
            # 400 is kwok's "no logs found" (or the pod not scheduled yet) until it is
            # served; a container the pod does not have will never be.
            if exc.status == 400 and "is not valid for pod" not in message:
                raise _NotYet(message) from exc
            raise SimulationError(namespace, what, message) from exc
        if expected is not None and text != expected:
            raise _NotYet(f"read {text!r}, expected {expected!r}")

    try:
        for attempt in _retrying(timeout):
            with attempt:
                read_back()
    except _NotYet as exc:
        raise SimulationError(
            namespace, what, f"kwok-controller did not serve it within {timeout:g}s: {exc}"
        ) from exc


def _last_line(log_file: Path) -> str | None:
    """What ``--tail=1`` shows for a CRI log file; None when the file is empty."""
    lines = [line for line in log_file.read_text().splitlines() if line.strip()]
    if not lines:
        return None
    fields = lines[-1].split(" ", 3)
    if len(fields) < 3:
        return None  # not a CRI line: anything kwok answers will do
    text = fields[3] if len(fields) == 4 else ""
    return text + ("\n" if fields[2].split(":")[0] == "F" else "")
