"""API-server outages injected into real runs: the run reaches the session's kwok API
server through a TCP forwarder on 127.0.0.1 that the test closes (connections refused,
open ones cut, watches included) and opens again on the same port.

A few seconds of outage are retried (``--api-retry``) and the run passes, with no
traceback flood; an outage longer than that fails the app's items and its own teardown
with one line each, and the next item of the run, a plain pytest test, is not touched."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from harness.clusters.base import ClusterInfo
from harness.deploy.deployer import LABEL_RUN
from tests.conftest import tiny_chart
from tests.test_interrupts import Run

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: steady}\n"
AFTER = "def test_after_the_app():\n    assert True\n"


class Forwarder:
    """127.0.0.1:<port> -> the API server, raw TCP (TLS passes through, so the server's
    certificate for 127.0.0.1 still matches)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.listener: socket.socket | None = None
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return  # closed: the outage
            far = socket.create_connection(self.target)
            with self.lock:
                self.open += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def outage(self) -> None:
        """Refuse new connections and cut the open ones."""
        assert self.listener is not None
        try:  # wakes the accept() blocked in its thread, which close() alone would not
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for conn in self.open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self.open.clear()

    def stop(self) -> None:
        self.outage()


@pytest.fixture
def forwarded(tmp_path: Path, harness_cluster: ClusterInfo) -> tuple[Forwarder, Path]:
    config = yaml.safe_load(harness_cluster.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    proxy = Forwarder((host, int(port)))
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = tmp_path / "forwarded.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    yield proxy, kubeconfig
    proxy.stop()


def run_folder(tmp_path: Path, app: str, timeout: str = "120s") -> Path:
    chart = tiny_chart(tmp_path, f"settings-{app}", CONFIG_MAP)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / f"{app}.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: {app}\n    chart: {chart}\n    checks:\n"
        f"      - wait: {{resource: configmap/go, for: create, timeout: {timeout}}}\n"
        "      - wait: {resource: configmap/settings, for: 'jsonpath={.data.mode}=steady',"
        f" timeout: {timeout}}}\n"
    )
    (folder / "test_zz_after.py").write_text(AFTER)
    return folder


def namespace_of(core: client.CoreV1Api, run_id: str) -> str:
    (namespace,) = core.list_namespace(label_selector=f"{LABEL_RUN}={run_id}").items
    return str(namespace.metadata.name)


PAUSE = """
import time
from pathlib import Path


def pause(app):
    here = Path(__file__).parent
    (here / "paused").write_text("")
    while not (here / "resume").exists():
        time.sleep(0.05)
"""


def test_a_few_seconds_of_outage_are_retried_and_the_run_passes(
    tmp_path: Path, forwarded: tuple[Forwarder, Path]
) -> None:
    """The outage starts while a ``python`` check holds the run, and the checks after it
    (``events``, ``noRestarts``: direct API calls, not the watch-based waits) meet it."""
    proxy, kubeconfig = forwarded
    app = f"steady-{uuid.uuid4().hex[:6]}"
    chart = tiny_chart(tmp_path, f"settings-{app}", CONFIG_MAP)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    module = f"hold_{uuid.uuid4().hex[:6]}"
    (folder / f"{module}.py").write_text(PAUSE)
    (folder / f"{app}.suite.yaml").write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: {app}\n    chart: {chart}\n    checks:\n"
        f"      - python: {{call: '{module}:pause'}}\n"
        "      - events: {}\n"
        "      - noRestarts: {}\n"
        "      - wait: {resource: configmap/settings, for: 'jsonpath={.data.mode}=steady'}\n"
    )
    (folder / "test_zz_after.py").write_text(AFTER)
    run = Run(folder, f"--kubeconfig={kubeconfig}", "--api-retry=60s")
    try:
        run.wait_until("the python check", (folder / "paused").exists)
        proxy.outage()
        (folder / "resume").write_text("")
        time.sleep(6)  # the outage itself: what is injected, not a guess about the run
        proxy.start()
        assert run.finish(180) == 0, run.output
    finally:
        run.kill()
    out = run.output
    assert f"{app}::events PASSED" in out and f"{app}::noRestarts PASSED" in out
    assert "Traceback" not in out
    assert len(out.splitlines()) < 80, out


def test_an_outage_past_the_retries_fails_the_app_alone_with_one_line_each(
    tmp_path: Path, forwarded: tuple[Forwarder, Path], k8s: client.ApiClient
) -> None:
    proxy, kubeconfig = forwarded
    app = f"cut-{uuid.uuid4().hex[:6]}"
    run = Run(run_folder(tmp_path, app, "8s"), f"--kubeconfig={kubeconfig}", "--api-retry=2s")
    core = client.CoreV1Api(k8s)
    namespace = None
    try:
        run_id = run.run_id()
        run.wait_until("the install", lambda: f"{app}::install PASSED" in run.output)
        namespace = namespace_of(core, run_id)
        proxy.outage()  # for good: every later request of the run fails
        code = run.finish(240)
    finally:
        run.kill()
        if namespace is not None:
            core.delete_namespace(namespace)
    out = run.output
    assert code == 1, out
    assert "test_zz_after.py::test_after_the_app PASSED" in out
    assert "not torn down properly" not in out
    assert "Traceback" not in out and "urllib3" not in out.replace("urllib3.exceptions", ""), out
    assert f"{app}::wait[configmap/go] FAILED" in out
    assert "ERROR at teardown of" in out and "removing " in out and " failed: " in out
    assert len(out.splitlines()) < 150, out
