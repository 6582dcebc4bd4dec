"""Port-forwarding to a pod through the API server, as ``kubectl port-forward`` does.

``port_forward`` listens on 127.0.0.1 (an ephemeral port) and, for every connection it
accepts, opens a WebSocket to the pod's ``portforward`` subresource and copies bytes both
ways until either side closes. The path is the same on every cluster: the API server hands
the stream to the node's kubelet, which on kind is a real kubelet and on kwok is
kwok-controller (what it connects to there is set with :mod:`harness.clusters.kwok_sim`).

The wire protocol is ``v4.channel.k8s.io`` (no SPDY): one WebSocket carries one port; every
binary message starts with a channel byte, 0 for data and 1 for errors. The server first
sends the port number (2 bytes, little endian) on both channels, then the stream on
channel 0; a failure on the pod's side (nothing listening, no route) arrives as one
message of text on channel 1, after which the server closes the WebSocket.

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
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import certifi
import websocket
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.errors import HarnessError

__all__ = [
    "PodStream",
    "PortForwardError",
    "open_pod_stream",
    "pod_for_service",
    "port_forward",
]

log = logging.getLogger(__name__)

PROTOCOL = "v4.channel.k8s.io"
DATA_CHANNEL = 0
ERROR_CHANNEL = 1
NO_CHANNEL = -1
DEFAULT_TIMEOUT = 10.0
CHUNK = 64 * 1024

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
    """An open ``portforward`` WebSocket to one pod port, past its opening messages."""

    def __init__(self, ws: websocket.WebSocket, namespace: str, pod: str, port: int) -> None:
        self.ws = ws
        self.namespace = namespace
        self.pod = pod
        self.port = port

    def fileno(self) -> int:
        sock = self.ws.sock
        return sock.fileno() if sock is not None else -1

    def has_buffered(self) -> bool:
        """Whether TLS holds decrypted bytes that ``select`` will not report."""
        sock = self.ws.sock
        return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0

    def send(self, data: bytes) -> None:
        self.ws.send_bytes(bytes([DATA_CHANNEL]) + data)

    def receive(self) -> tuple[int, bytes] | None:
        """The next message as (channel, payload), ``(NO_CHANNEL, b"")`` for a ping, pong
        or empty message; None once the server has closed."""
        try:
            opcode, frame = self.ws.recv_data_frame(True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return None
        data = frame.data
        if opcode not in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) or not data:
            return NO_CHANNEL, b""
        data = data if isinstance(data, bytes) else str(data).encode()
        return data[0], data[1:]

    def error(self, reason: str) -> PortForwardError:
        return PortForwardError(self.namespace, self.pod, self.port, reason)

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.ws.shutdown()


def open_pod_stream(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    port: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> PodStream:
    """Open a stream to ``pod``'s ``port``; raise PortForwardError when the API server or the
    kubelet refuses it (the pod is gone, not scheduled, or the kubelet reports an error)."""
    conf = api.configuration
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/portforward"
    url = _websocket_url(conf.host, path, {"ports": str(port)})
    ws = websocket.WebSocket(sslopt=_ssl_options(conf), skip_utf8_validation=True)
    try:
        ws.connect(
            url,
            header=_auth_headers(conf),
            subprotocols=[PROTOCOL],
            timeout=timeout,
            **_proxy_options(conf),
        )
    except websocket.WebSocketBadStatusException as exc:
        ws.shutdown()
        raise PortForwardError(
            namespace, pod, port, _status_reason(exc), status=exc.status_code
        ) from exc
    except (websocket.WebSocketException, OSError) as exc:
        ws.shutdown()
        raise PortForwardError(namespace, pod, port, f"cannot reach the API server: {exc}") from exc
    stream = PodStream(ws, namespace, pod, port)
    try:
        _read_opening(stream)
    except BaseException:
        stream.close()
        raise
    ws.settimeout(None)
    return stream


def _read_opening(stream: PodStream) -> None:
    """Both channels open with the port number; an error may come instead."""
    expected = struct.pack("<H", stream.port)
    opened: set[int] = set()
    while opened != {DATA_CHANNEL, ERROR_CHANNEL}:
        try:
            message = stream.receive()
        except (websocket.WebSocketTimeoutException, TimeoutError) as exc:
            raise stream.error("the kubelet did not open the stream in time") from exc
        if message is None:
            raise stream.error("the connection closed before the stream opened")
        channel, payload = message
        if channel == NO_CHANNEL:
            continue
        if channel in opened or channel not in (DATA_CHANNEL, ERROR_CHANNEL):
            if channel == ERROR_CHANNEL:
                raise stream.error(payload.decode(errors="replace"))
            raise stream.error(f"unexpected message on channel {channel} while opening")
        if payload != expected:
            raise stream.error(f"the kubelet opened port {payload!r}, not {stream.port}")
        opened.add(channel)


def _websocket_url(host: str, path: str, query: dict[str, str]) -> str:
    parts = urlsplit(host)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, urlencode(query), ""))


def _ssl_options(conf: client.Configuration) -> dict[str, Any]:
    if not conf.verify_ssl:
        options: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    else:
        options = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": conf.ssl_ca_cert or certifi.where()}
        if conf.assert_hostname is not None:
            options["check_hostname"] = conf.assert_hostname
    if conf.cert_file:
        options["certfile"] = conf.cert_file
    if conf.key_file:
        options["keyfile"] = conf.key_file
    if conf.tls_server_name:
        options["server_hostname"] = conf.tls_server_name
    return options


def _auth_headers(conf: client.Configuration) -> list[str]:
    settings = cast("dict[str, dict[str, Any]]", conf.auth_settings())
    return [
        f"{setting['key']}: {setting['value']}"
        for setting in settings.values()
        if setting.get("in") == "header" and setting.get("value")
    ]


def _proxy_options(conf: client.Configuration) -> dict[str, Any]:
    if not conf.proxy:
        return {}
    proxy = urlsplit(conf.proxy)
    options: dict[str, Any] = {
        "http_proxy_host": proxy.hostname,
        "http_proxy_port": proxy.port,
        "proxy_type": "http",
    }
    if conf.no_proxy:
        options["http_no_proxy"] = [host.strip() for host in conf.no_proxy.split(",")]
    return options


def _status_reason(exc: websocket.WebSocketBadStatusException) -> str:
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

    def __init__(
        self, api: client.ApiClient, namespace: str, pod: str, port: int, timeout: float
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.port = port
        self.timeout = timeout
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
            stream = open_pod_stream(
                self.api, self.namespace, self.pod, self.port, timeout=self.timeout
            )
        except PortForwardError as exc:
            self._fail(conn, exc)
            return
        try:
            failure = _pump(conn, stream, self._stop_reader)
        except (websocket.WebSocketException, OSError) as exc:
            failure = stream.error(f"the stream broke: {exc}")
        try:
            if failure is not None:
                self._fail(conn, failure)
        finally:
            stream.close()
            conn.close()

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
        selector.register(stream.fileno(), selectors.EVENT_READ)
        selector.register(stop, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is stop:
                    return None
                if key.fileobj is conn:
                    try:
                        data = conn.recv(CHUNK)
                    except OSError:
                        return None
                    if not data:
                        return None
                    stream.send(data)
                    continue
                while True:  # every message TLS has already decrypted, too
                    message = stream.receive()
                    if message is None:
                        return None
                    channel, payload = message
                    if channel == ERROR_CHANNEL and payload:
                        return stream.error(payload.decode(errors="replace"))
                    if channel == DATA_CHANNEL and payload:
                        try:
                            conn.sendall(payload)
                        except OSError:
                            return None  # the local client has gone
                    if not stream.has_buffered():
                        break


@contextmanager
def forwarding(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    port: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[Forwarder]:
    """Like :func:`port_forward`, but yields the :class:`Forwarder` itself, whose
    ``errors`` say why a local connection was reset (the stream could not be opened, or
    the target refused it)."""
    _require_running(api, namespace, pod, port)
    forwarder = Forwarder(api, namespace, pod, port, timeout)
    try:
        yield forwarder
    finally:
        forwarder.close()


@contextmanager
def port_forward(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    port: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[int]:
    """Forward a local port on 127.0.0.1 to ``pod``'s ``port``; yields the local port.

    The pod must exist and be Running (as ``kubectl port-forward`` requires). Every local
    connection gets its own stream; ``timeout`` bounds opening each one. On exit, the
    listener, every connection and every thread are closed and joined.
    """
    with forwarding(api, namespace, pod, port, timeout=timeout) as forwarder:
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
        response = read_fn(*args, **kwargs, _preload_content=False, _request_timeout=30)
    except ApiException as exc:
        reason = "not found" if exc.status == 404 else f"HTTP {exc.status}: {exc.reason}"
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
