"""Port-forward and logs through the API server of a real kwok cluster, the path ``http``
and ``logs`` checks take on kind too: kwok-controller, steered by harness.clusters.kwok_sim, sends
a pod's port to a local HTTP server and its logs to a local file."""

from __future__ import annotations

import hashlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.clusters.kwok_sim import (
    LOGS,
    PORT_FORWARDS,
    SimulationError,
    remove_simulation,
    serve_pod_port,
    set_pod_logs,
    write_cri_log,
)
from harness.kube.portforward import (
    CLIENT_THREAD,
    PortForwardError,
    open_pod_stream,
    pod_for_service,
    port_forward,
)
from harness.kube.wait import wait_for
from tests.conftest import TEST_LABELS

BIG = b"0123456789abcdef" * 65536  # 1 MiB, many WebSocket messages each way


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        bodies = {"/healthz": b"ok", "/big": BIG}
        self._answer(200 if self.path in bodies else 404, bodies.get(self.path, b"not found"))

    def do_POST(self) -> None:
        """Answers the SHA-256 of the body it was sent."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(200, hashlib.sha256(body).hexdigest().encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    """A tiny HTTP server on 127.0.0.1 answering /healthz with 200 "ok"; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, name="test-http-server")
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def get(port: int, path: str, *, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def create_pod(
    k8s: client.ApiClient,
    namespace: str,
    name: str,
    *,
    ports: dict[str, int] | None = None,
    running: bool = True,
) -> None:
    container = client.V1Container(
        name="app",
        image="example.invalid/app:1",
        ports=[client.V1ContainerPort(name=n, container_port=p) for n, p in (ports or {}).items()],
    )
    # A node selector no node matches keeps the pod Pending.
    selector = None if running else {"helm-harness.io/no-such-node": "true"}
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={**TEST_LABELS, "app": name}),
        spec=client.V1PodSpec(containers=[container], node_selector=selector),
    )
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(namespace, pod)
    if running:
        wait_for(
            core.list_namespaced_pod,
            lambda pods: len(pods) == 1 and pods[0].get("status", {}).get("phase") == "Running",
            expected=f"pod {name} Running",
            timeout=30,
            namespace=namespace,
            field_selector=f"metadata.name={name}",
        )


def create_service(
    k8s: client.ApiClient, namespace: str, name: str, selector: dict[str, str] | None
) -> None:
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(
            selector=selector,
            ports=[client.V1ServicePort(name="web", port=80, target_port="http")],
        ),
    )
    client.CoreV1Api(k8s).create_namespaced_service(namespace, service)


def forwarder_threads() -> list[threading.Thread]:
    """The harness's threads and those the kubernetes client starts for each stream."""
    return [t for t in threading.enumerate() if t.name.startswith(("port-forward ", CLIENT_THREAD))]


def test_http_get_through_port_forward_reaches_the_local_server(
    k8s: client.ApiClient, namespace: str, http_server: int
) -> None:
    create_pod(k8s, namespace, "web", ports={"http": 8080})
    create_service(k8s, namespace, "web", {"app": "web"})
    pod, port = pod_for_service(k8s, namespace, "web", 80)
    assert (pod, port) == ("web", 8080)
    assert pod_for_service(k8s, namespace, "web", "web") == ("web", 8080)

    names = serve_pod_port(k8s, namespace, pod, port, "127.0.0.1", http_server)
    assert names == [f"helm-harness.{namespace}.web.8080"]

    with port_forward(k8s, namespace, pod, port) as local_port:
        assert get(local_port, "/healthz") == (200, "ok")
        assert get(local_port, "/missing") == (404, "not found")  # a second connection
        assert get(local_port, "/big") == (200, BIG.decode())
        assert get(local_port, "/", method="POST", body=BIG) == (
            200,
            hashlib.sha256(BIG).hexdigest(),
        )
        assert forwarder_threads()
        # Connections open side by side.
        first, second = (
            http.client.HTTPConnection("127.0.0.1", local_port, timeout=10) for _ in "12"
        )
        first.request("GET", "/healthz")
        second.request("GET", "/healthz")
        assert second.getresponse().read() == first.getresponse().read() == b"ok"
        first.close()
        second.close()
    assert not forwarder_threads()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", local_port), timeout=5).close()

    remove_simulation(k8s, namespace)
    objects = client.CustomObjectsApi(k8s)
    for plural in (PORT_FORWARDS, LOGS):
        listed: dict[str, Any] = objects.list_cluster_custom_object(  # type: ignore[assignment]
            "kwok.x-k8s.io",
            "v1alpha1",
            plural,
            label_selector=f"helm-harness.io/namespace={namespace}",
        )
        assert listed["items"] == []  # the probe is gone too


def test_logs_through_the_api_come_from_the_file(
    k8s: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    create_pod(k8s, namespace, "worker")
    log_file = write_cri_log(tmp_path / "app.log", ["starting", "listening on :8080"])
    write_cri_log(log_file, ["warning: slow disk"], stream="stderr", append=True)
    assert log_file.read_text().splitlines()[0].endswith(" stdout F starting")

    set_pod_logs(k8s, namespace, {"app": "worker"}, "app", log_file)

    core = client.CoreV1Api(k8s)
    assert core.read_namespaced_pod_log("worker", namespace, container="app") == (
        "starting\nlistening on :8080\nwarning: slow disk\n"
    )
    assert core.read_namespaced_pod_log("worker", namespace, tail_lines=1) == (
        "warning: slow disk\n"
    )


def test_a_port_with_nothing_behind_it_is_a_clear_error_not_a_hang(
    k8s: client.ApiClient, namespace: str
) -> None:
    create_pod(k8s, namespace, "web", ports={"http": 8080})
    nothing = closed_port()
    serve_pod_port(k8s, namespace, "web", 8080, "127.0.0.1", nothing)

    started = time.monotonic()
    with pytest.raises(PortForwardError) as info:
        with port_forward(k8s, namespace, "web", 8080) as local_port:
            get(local_port, "/healthz")
    assert time.monotonic() - started < 10
    assert info.value.namespace == namespace and info.value.port == 8080
    assert f"127.0.0.1:{nothing}" in info.value.reason
    assert "connection refused" in info.value.reason
    assert isinstance(info.value.__cause__, (ConnectionError, http.client.HTTPException))
    assert not forwarder_threads()

    # A port kwok was never told about fails the same way.
    with pytest.raises(PortForwardError, match="no forward found for port 9090"):
        with port_forward(k8s, namespace, "web", 9090) as local_port:
            get(local_port, "/healthz")


def test_a_pod_that_is_not_running_is_refused_at_once(
    k8s: client.ApiClient, namespace: str
) -> None:
    create_pod(k8s, namespace, "pending", running=False)
    with pytest.raises(PortForwardError, match="Pending, not Running"):
        with port_forward(k8s, namespace, "pending", 8080):
            pass
    with pytest.raises(PortForwardError, match="not found"):
        with port_forward(k8s, namespace, "no-such-pod", 8080):
            pass

    # The stream itself is refused by the API server, with its Status message and code.
    with pytest.raises(PortForwardError) as info:
        open_pod_stream(k8s, namespace, "pending", 8080)
    assert info.value.status == 400
    assert info.value.reason == "HTTP 400: pod pending does not have a host assigned"
    with pytest.raises(PortForwardError, match='HTTP 404: pods "no-such-pod" not found') as info:
        open_pod_stream(k8s, namespace, "no-such-pod", 8080)
    assert info.value.status == 404
    with pytest.raises(PortForwardError, match="must be between 0 and 65536"):
        open_pod_stream(k8s, namespace, "pending", 70000)
    assert not forwarder_threads()


def test_pod_for_service_without_selector_uses_endpoint_slices(
    k8s: client.ApiClient, namespace: str
) -> None:
    create_pod(k8s, namespace, "backend", ports={"http": 8080})
    create_service(k8s, namespace, "manual", None)
    pod = client.CoreV1Api(k8s).read_namespaced_pod("backend", namespace)
    assert pod.status is not None and pod.status.pod_ip
    endpoint_slice = client.V1EndpointSlice(
        metadata=client.V1ObjectMeta(
            name="manual-1", labels={"kubernetes.io/service-name": "manual"}
        ),
        address_type="IPv4",
        ports=[client.DiscoveryV1EndpointPort(name="web", port=8081, protocol="TCP")],
        endpoints=[
            client.V1Endpoint(
                addresses=[pod.status.pod_ip],
                conditions=client.V1EndpointConditions(ready=True),
                target_ref=client.V1ObjectReference(
                    kind="Pod", name="backend", namespace=namespace
                ),
            )
        ],
    )
    client.DiscoveryV1Api(k8s).create_namespaced_endpoint_slice(namespace, endpoint_slice)
    assert pod_for_service(k8s, namespace, "manual", 80) == ("backend", 8081)


def test_pod_for_service_says_what_is_missing(k8s: client.ApiClient, namespace: str) -> None:
    create_pod(k8s, namespace, "idle", running=False)
    create_service(k8s, namespace, "idle", {"app": "idle"})
    with pytest.raises(PortForwardError, match=r"no ready pod matches app=idle \(pods: idle"):
        pod_for_service(k8s, namespace, "idle", 80)
    with pytest.raises(PortForwardError, match=r"no such port \(it has web:80\)"):
        pod_for_service(k8s, namespace, "idle", 443)
    with pytest.raises(PortForwardError, match="not found"):
        pod_for_service(k8s, namespace, "absent", 80)


def test_kwok_sim_needs_a_matching_pod(k8s: client.ApiClient, namespace: str) -> None:
    with pytest.raises(SimulationError, match="no pod matches app=nothing"):
        serve_pod_port(k8s, namespace, {"app": "nothing"}, 80, "127.0.0.1", 1)


def test_a_pod_stream_is_a_socket_and_leaves_the_callers_client_alone(
    k8s: client.ApiClient, namespace: str, http_server: int
) -> None:
    create_pod(k8s, namespace, "web", ports={"http": 8080})
    serve_pod_port(k8s, namespace, "web", 8080, "127.0.0.1", http_server)

    call_api = vars(k8s).get("call_api")  # the harness's retrying wrapper, if any
    stream = open_pod_stream(k8s, namespace, "web", 8080)
    pump = stream.pump
    try:
        assert pump is not None and pump.is_alive()  # the client's thread, found to be joined
        stream.socket.sendall(b"GET /healthz HTTP/1.1\r\nHost: web\r\n\r\n")
        response = http.client.HTTPResponse(stream.socket)
        response.begin()
        assert (response.status, response.read()) == (200, b"ok")
        # kubernetes.stream.portforward swaps call_api on the ApiClient it is given while it
        # opens a stream (and leaves an instance attribute behind): never the caller's.
        assert vars(k8s).get("call_api") is call_api
        found = client.CoreV1Api(k8s).read_namespaced_pod("web", namespace)
        assert found.metadata is not None and found.metadata.name == "web"
        assert stream.failure() is None
    finally:
        stream.close()
    assert not pump.is_alive() and stream.socket.fileno() == -1
    assert not forwarder_threads()

    # A port the kubelet refuses: the socket ends, and failure() says why.
    stream = open_pod_stream(k8s, namespace, "web", 9090)
    try:
        assert stream.socket.recv(1) == b""
        failure = stream.failure()
    finally:
        stream.close()
    assert failure is not None and "no forward found for port 9090" in failure.reason
    assert (failure.namespace, failure.target, failure.port) == (namespace, "web", 9090)
    assert not forwarder_threads()
