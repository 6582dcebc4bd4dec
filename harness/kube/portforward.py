"""Port-forwarding to a pod through the API server, as ``kubectl port-forward`` does.

``port_forward`` listens on 127.0.0.1 (an ephemeral port) and, for every connection it
accepts, opens a stream to the pod's ``portforward`` subresource and copies bytes both ways
until either side closes. The path is the same on every cluster: the API server hands the
stream to the node's kubelet, which on kind is a real kubelet and on kwok is
kwok-controller (what it connects to there is set with :mod:`harness.clusters.kwok_sim`).

The stream is the kubernetes client's own (:func:`kubernetes.stream.portforward`, a
``v4.channel.k8s.io`` WebSocket): it hands back a local socket that carries the pod port's
bytes, and a thread of its own translates between that socket and the WebSocket. A failure
on the pod's side (nothing listening, no route) arrives as the port's error text, and the
socket then reads end-of-file.

Errors::

    HarnessError
    └── PortForwardError    the pod, Service or port cannot be reached (namespace, target,
                            port, reason as the API server or kubelet put it)

A connection that fails closes the local socket with a reset, so the client sees
``ConnectionResetError`` at once instead of hanging; when the ``with`` block then raises,
``port_forward`` raises the PortForwardError with the kubelet's reason, chained to it.
"""

from __future__ import annotations

import json
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException, ApiValueError
from kubernetes.stream import portforward
from websocket import WebSocketBadStatusException

from harness.errors import HarnessError, KubeApiError, NotFound
from harness.kube.client import call

__all__ = [
    "Forwarder",
    "PodStream",
    "PortForwardError",
    "forwarding",
    "open_pod_stream",
    "pod_for_service",
    "port_forward",
]

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CLOSE_WAIT = 5.0  # for the client's thread to close its WebSocket, before it is cut off
# The kubernetes client names the thread it starts for each stream so (see PodStream).
CLIENT_THREAD = "Kubernetes port forward proxy"

Obj = dict[str, Any]


class PortForwardError(HarnessError):
    """A pod port (or the Service in front of it) could not be reached."""

    def __init__(
        self,
        namespace: str,
        target: str,
        port: int | str,
        reason: str,
        *,
        status: int | None = None,
    ) -> None:
        self.namespace = namespace
        self.target = target
        self.port = port
        self.reason = reason
        self.status = status  # the HTTP status when the API server refused the stream
        super().__init__(f"cannot forward to {namespace}/{target} port {port}: {reason}")


# -- one stream to one pod port ---------------------------------------------------------------


class PodStream:
    """An open ``portforward`` stream to one pod port: ``socket`` carries its bytes.

    The kubernetes client pumps each stream in a thread it starts and never hands out; it
    is found by name as the stream opens (streams open one at a time), so :meth:`close`
    can join it.
    """

    def __init__(
        self,
        forward: Any,  # kubernetes.stream.ws_client.PortForward
        pump: threading.Thread | None,
        namespace: str,
        pod: str,
        port: int,
    ) -> None:
        self.forward = forward
        self.pump = pump
        self.namespace = namespace
        self.pod = pod
        self.port = port
        self.socket: socket.socket = forward.socket(port)  # one end of a socket pair

    def failure(self) -> PortForwardError | None:
        """The error the kubelet reported for the port, if any (it ends the stream)."""
        reason = self.forward.error(self.port)
        return self.error(reason) if reason else None

    def error(self, reason: str) -> PortForwardError:
        return PortForwardError(self.namespace, self.pod, self.port, reason)

    def close(self) -> None:
        """End the stream: the client's thread sees the socket close, closes the WebSocket
        and ends; one that does not within CLOSE_WAIT has its WebSocket cut off."""
        self.forward.close()
        if self.pump is None:
            return  # not found: it ends on its own
        websocket = self.forward.websocket
        self.pump.join(CLOSE_WAIT)
        if self.pump.is_alive():
            websocket.abort()  # wakes the thread: it sees the WebSocket closed and ends
            self.pump.join(CLOSE_WAIT)
        if not self.pump.is_alive():
            websocket.shutdown()  # the client leaves it open when the server closed first


_opening = threading.Lock()


def open_pod_stream(api: client.ApiClient, namespace: str, pod: str, port: int) -> PodStream:
    """Open a stream to ``pod``'s ``port``; raise PortForwardError when the API server
    refuses it (the pod is gone or not scheduled). What the kubelet says of the port comes
    later, through :meth:`PodStream.failure`."""
    # A client of its own: kubernetes.stream.portforward swaps the ApiClient's call_api
    # while it opens the stream, which would send the caller's other requests astray.
    with client.ApiClient(api.configuration) as own, _opening:
        before = set(threading.enumerate())
        try:
            forward = portforward(
                client.CoreV1Api(own).connect_get_namespaced_pod_portforward,
                pod,
                namespace,
                ports=str(port),
            )
        except ApiValueError as exc:
            raise PortForwardError(namespace, pod, port, str(exc)) from exc
        except ApiException as exc:
            refusal = exc.__context__  # the client keeps only the text of the WebSocket's error
            if isinstance(refusal, WebSocketBadStatusException):
                status = refusal.status_code
                raise PortForwardError(
                    namespace, pod, port, _status_reason(refusal), status=status
                ) from exc
            raise PortForwardError(
                namespace, pod, port, f"cannot reach the API server: {exc.reason}"
            ) from exc
        started = [
            thread
            for thread in threading.enumerate()
            if thread not in before and thread.name.startswith(CLIENT_THREAD)
        ]
    return PodStream(forward, started[0] if len(started) == 1 else None, namespace, pod, port)


def _status_reason(exc: WebSocketBadStatusException) -> str:
    """The API server's Status message from a refused WebSocket handshake."""
    body = exc.resp_body or b""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    text = message or (body.decode(errors="replace").strip() if body else "")
    return f"HTTP {exc.status_code}" + (f": {text}" if text else "")


# -- the local listener ----------------------------------------------------------------------


class Forwarder:
    """Accepts local connections and pumps each through its own PodStream, one thread each."""

    def __init__(self, api: client.ApiClient, namespace: str, pod: str, port: int) -> None:
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.port = port
        self.errors: list[PortForwardError] = []
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop_reader, self._stop_writer = socket.socketpair()
        self.local_port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"port-forward {namespace}/{pod}:{port}", daemon=True
        )
        self._acceptor.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._stop_reader, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._stop_reader in ready:
                    return
                conn, _ = self._listener.accept()
                worker = threading.Thread(
                    target=self._serve, args=(conn,), name=self._acceptor.name, daemon=True
                )
                self._workers = [w for w in self._workers if w.is_alive()]
                self._workers.append(worker)
                worker.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            stream = open_pod_stream(self.api, self.namespace, self.pod, self.port)
        except PortForwardError as exc:
            self._fail(conn, exc)
            return
        try:
            failure = _pump(conn, stream, self._stop_reader)
            if failure is not None:
                self._fail(conn, failure)
        finally:
            conn.close()
            stream.close()

    def _fail(self, conn: socket.socket, error: PortForwardError) -> None:
        log.warning("%s", error)
        with self._lock:
            self.errors.append(error)
        # A reset, not a clean end: the client must not take a failure for an empty reply.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def close(self) -> None:
        # Never read, so it stays readable: it wakes the acceptor and every pump for good.
        self._stop_writer.send(b"x")
        self._acceptor.join()  # after this, no worker is added
        for worker in self._workers:
            worker.join()
        self._listener.close()
        self._stop_reader.close()
        self._stop_writer.close()


def _pump(conn: socket.socket, stream: PodStream, stop: socket.socket) -> PortForwardError | None:
    """Copy bytes both ways until either side ends or ``stop`` turns readable; returns the
    kubelet's error, if it sent one.

    The v4 protocol has no half-close, so the local client's end of sending ends the whole
    stream (kubectl's SPDY transport passes a half-close on; HTTP clients never need it).
    """
    with selectors.DefaultSelector() as selector:
        selector.register(conn, selectors.EVENT_READ)
        selector.register(stream.socket, selectors.EVENT_READ)
        selector.register(stop, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is stop:
                    return None
                if key.fileobj is conn:
                    data = _recv(conn)
                    if not data:
                        return None  # the local client is done
                    if not _send(stream.socket, data):
                        return stream.failure()
                else:
                    data = _recv(stream.socket)
                    if not data:
                        return stream.failure()  # the far side ended, with a reason or not
                    if not _send(conn, data):
                        return None  # the local client has gone


def _recv(sock: socket.socket) -> bytes:
    """The next bytes; empty at the end, or when the peer reset the connection."""
    try:
        return sock.recv(CHUNK)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


@contextmanager
def forwarding(api: client.ApiClient, namespace: str, pod: str, port: int) -> Iterator[Forwarder]:
    """Like :func:`port_forward`, but yields the :class:`Forwarder` itself, whose
    ``errors`` say why a local connection was reset (the stream could not be opened, or
    the target refused it)."""
    _require_running(api, namespace, pod, port)
    forwarder = Forwarder(api, namespace, pod, port)
    try:
        yield forwarder
    finally:
        forwarder.close()


@contextmanager
def port_forward(api: client.ApiClient, namespace: str, pod: str, port: int) -> Iterator[int]:
    """Forward a local port on 127.0.0.1 to ``pod``'s ``port``; yields the local port.

    The pod must exist and be Running (as ``kubectl port-forward`` requires). Every local
    connection gets its own stream. On exit, the listener, every connection and stream, and
    every thread (the client's too) are closed and joined.
    """
    with forwarding(api, namespace, pod, port) as forwarder:
        try:
            yield forwarder.local_port
        except Exception as exc:
            if forwarder.errors:
                raise forwarder.errors[0] from exc
            raise


def _require_running(api: client.ApiClient, namespace: str, pod: str, port: int) -> None:
    core = client.CoreV1Api(api)
    found = _read(core.read_namespaced_pod, namespace, pod, port, pod, namespace)
    phase = (found.get("status") or {}).get("phase")
    if phase != "Running":
        raise PortForwardError(
            namespace, pod, port, f"the pod is {phase or 'without a phase'}, not Running"
        )


def _read(
    read_fn: Any, namespace: str, target: str, port: int | str, *args: Any, **kwargs: Any
) -> Obj:
    """One object (or list) as the API server sent it; PortForwardError when it cannot."""
    try:
        response = call(read_fn, *args, **kwargs, _preload_content=False, _request_timeout=30)
    except KubeApiError as exc:
        reason = "not found" if isinstance(exc, NotFound) else f"HTTP {exc.status}: {exc.reason}"
        raise PortForwardError(namespace, target, port, reason, status=exc.status) from exc
    body: Obj = json.loads(response.data)
    return body


# -- Services ---------------------------------------------------------------------------------


def pod_for_service(
    api: client.ApiClient, namespace: str, service: str, port: int | str
) -> tuple[str, int]:
    """A ready pod behind ``service`` and the container port its ``port`` (number or name)
    targets, named targetPorts resolved in that pod. Pods are found through the Service's
    selector, or for a Service without one through its EndpointSlices; the first ready pod
    by name is chosen."""
    core = client.CoreV1Api(api)
    target = f"service/{service}"
    spec = _read(core.read_namespaced_service, namespace, target, port, service, namespace)["spec"]
    ports: list[Obj] = spec.get("ports") or []
    service_port = next((p for p in ports if port in (p.get("port"), p.get("name"))), None)
    if service_port is None:
        offered = ", ".join(f"{p.get('name') or '-'}:{p.get('port')}" for p in ports) or "none"
        raise PortForwardError(
            namespace, target, port, f"the Service has no such port (it has {offered})"
        )
    if spec.get("selector"):
        return _from_selector(core, namespace, target, spec["selector"], service_port)
    return _from_endpoint_slices(api, namespace, service, service_port)


def _from_selector(
    core: client.CoreV1Api,
    namespace: str,
    target: str,
    selector: dict[str, str],
    service_port: Obj,
) -> tuple[str, int]:
    label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    pods: list[Obj] = _read(
        core.list_namespaced_pod,
        namespace,
        target,
        service_port["port"],
        namespace,
        label_selector=label_selector,
    )["items"]
    ready = sorted((pod for pod in pods if _is_ready(pod)), key=_name)
    if not ready:
        states = ", ".join(
            f"{_name(pod)} ({(pod.get('status') or {}).get('phase')})" for pod in pods
        )
        raise PortForwardError(
            namespace,
            target,
            service_port["port"],
            f"no ready pod matches {label_selector} (pods: {states or 'none'})",
        )
    return _name(ready[0]), _container_port(namespace, ready[0], service_port)


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _is_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return (
        not pod["metadata"].get("deletionTimestamp")
        and status.get("phase") == "Running"
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
    )


def _container_port(namespace: str, pod: Obj, service_port: Obj) -> int:
    target = service_port.get("targetPort")
    if target is None or target == "":
        return int(service_port["port"])
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for container_port in container.get("ports") or []:
            if container_port.get("name") == target:
                return int(container_port["containerPort"])
    raise PortForwardError(
        namespace, _name(pod), target, f"no container of the pod names a port {target!r}"
    )


def _from_endpoint_slices(
    api: client.ApiClient, namespace: str, service: str, service_port: Obj
) -> tuple[str, int]:
    slices: list[Obj] = _read(
        client.DiscoveryV1Api(api).list_namespaced_endpoint_slice,
        namespace,
        f"service/{service}",
        service_port["port"],
        namespace,
        label_selector=f"kubernetes.io/service-name={service}",
    )["items"]
    candidates: list[tuple[str, int]] = []
    for endpoint_slice in slices:
        number = next(
            (
                p.get("port")
                for p in endpoint_slice.get("ports") or []
                if (p.get("name") or "") == (service_port.get("name") or "") and p.get("port")
            ),
            None,
        )
        if number is None:
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            ready = (endpoint.get("conditions") or {}).get("ready") is not False
            if ready and ref.get("kind") == "Pod" and ref.get("name"):
                candidates.append((str(ref["name"]), int(number)))
    if not candidates:
        raise PortForwardError(
            namespace,
            f"service/{service}",
            service_port["port"],
            "the Service has no selector and its EndpointSlices list no ready pod",
        )
    return min(candidates)
