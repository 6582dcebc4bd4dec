"""The http check against the real kwok API server. kwok runs no containers, so the tests
point the pods' port at a local HTTP server (harness.clusters.kwok_sim): the check then goes
through the API server's port-forward exactly as it does on kind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.checks import run_check
from harness.clusters.kwok_sim import serve_pod_port
from harness.errors import CheckFailed
from harness.suite.model import Check
from tests.checks.conftest import LABELS


class Answers:
    status = 200
    body = b"ok"


@pytest.fixture
def web_server() -> Iterator[tuple[int, type[Answers]]]:
    answers = type("A", (Answers,), {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = answers.body if self.path == "/healthz" else b"not here"
            self.send_response(answers.status if self.path == "/healthz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], answers
    server.shutdown()
    server.server_close()
    thread.join()


def http(**spec: Any) -> Check:
    return Check(kind="http", spec={"service": "web-web", "port": 80, **spec}, timeout=3)


def wired_web(install_app: Any, local_port: int) -> Any:
    ctx = install_app("web")
    run_check(ctx, Check(kind="ready", spec={}))
    serve_pod_port(ctx.api, ctx.namespace, LABELS, 8080, "127.0.0.1", local_port)
    return ctx


def test_http_passes_through_the_api_servers_port_forward(
    install_app: Any, web_server: Any
) -> None:
    port, _ = web_server
    ctx = wired_web(install_app, port)
    run_check(ctx, http(path="/healthz", expect={"status": 200, "body": "ok"}))


def test_http_fails_with_the_answer_it_got(install_app: Any, web_server: Any) -> None:
    port, answers = web_server
    ctx = wired_web(install_app, port)
    answers.status, answers.body = 503, b"draining"
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, http(path="/healthz"))
    message = str(info.value)
    assert "GET /healthz on service/web-web:80 to answer 200 within 3s" in message
    assert "503 Service Unavailable; body: 'draining'" in message


def test_http_to_a_missing_service_fails_naming_it(install_app: Any) -> None:
    ctx = install_app("web")
    with pytest.raises(CheckFailed, match=r"service/nope:80.*cannot reach it: .*not found"):
        run_check(ctx, Check(kind="http", spec={"service": "nope", "port": 80}))


def test_http_on_kwok_with_nothing_behind_the_port_is_skipped_with_the_reason(
    install_app: Any,
) -> None:
    ctx = install_app("web")
    run_check(ctx, Check(kind="ready", spec={}))
    with pytest.raises(
        pytest.skip.Exception, match="kwok simulates pods: nothing serves service/web-web:80"
    ):
        run_check(ctx, http(path="/healthz"))
