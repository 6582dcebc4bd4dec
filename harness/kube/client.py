"""Kubernetes API clients for a cluster, the one translation of the client's errors into
the harness's (:class:`~harness.errors.KubeApiError` and its subclasses), and small facts
read through the API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from harness.errors import (
    ClusterError,
    Conflict,
    Forbidden,
    Gone,
    KubeApiError,
    NotFound,
    TransientApiError,
)

T = TypeVar("T")
log = logging.getLogger("harness.kube")
RETRY_FOR = 30.0  # seconds a request retries transient failures (--api-retry)
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_BY_STATUS: dict[int, type[KubeApiError]] = {
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
}


def api_client(
    kubeconfig: Path, context: str | None = None, *, retry_for: float = RETRY_FOR
) -> k8s_client.ApiClient:
    """An API client for ``kubeconfig`` (and ``context``), independent of ~/.kube/config,
    whose every request retries transient failures for up to ``retry_for`` seconds
    (:func:`retrying`; urllib3's own retries, which log a traceback-sized warning per
    attempt, are turned off: this is the one policy)."""
    try:
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(
            config_file=str(kubeconfig), context=context, client_configuration=configuration
        )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise ClusterError(f"cannot use kubeconfig {kubeconfig}: {exc}") from exc
    configuration.retries = False
    api = k8s_client.ApiClient(configuration)
    if retry_for > 0:
        api.call_api = retrying(api.call_api, retry_for)  # type: ignore[method-assign]
    return api


def _worth_retrying(exc: BaseException, method: str) -> bool:
    """A failure that may pass: the request never reached the API server (any method), or
    it was refused unprocessed (429, 503), or it read and failed (a GET, safe to repeat)."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        return status in (429, 503) or (method in ("GET", "HEAD") and status in TRANSIENT_STATUS)
    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def retrying(call_api: Callable[..., T], retry_for: float) -> Callable[..., T]:
    """``call_api`` retried on transient failures with exponential back-off (0.2 s up to
    5 s) until ``retry_for`` seconds have passed, then re-raised as it came (the client's
    own callers, such as discovery, match its types). One warning per outage."""

    def call(*args: Any, **kwargs: Any) -> T:
        method = str(args[0] if args else kwargs.get("method", "GET")).upper()

        def warn(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            if state.attempt_number == 1 and failure is not None:
                log.warning(
                    "Kubernetes API: %s; retrying for up to %gs", api_error(failure), retry_for
                )

        retryer = Retrying(
            retry=retry_if_exception(lambda exc: _worth_retrying(exc, method)),
            stop=stop_after_delay(retry_for),
            wait=wait_exponential(multiplier=0.2, max=5),
            before_sleep=warn,
            reraise=True,
        )
        return retryer(call_api, *args, **kwargs)

    return call


def status_body(exc: ApiException) -> dict[str, Any]:
    """The ``Status`` object an API error carries (``{}`` when its body is not one): the
    one decoder of error bodies."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        status = json.loads(body or "{}")
    except ValueError:
        return {"message": str(body)} if body else {}
    return status if isinstance(status, dict) else {}


def api_error(exc: BaseException, what: str = "") -> KubeApiError:
    """The harness error for a failure of the Kubernetes client (``ApiException``, or a
    connection that failed: urllib3 errors, ``OSError``); raise it ``from exc``."""
    if isinstance(exc, KubeApiError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        body = status_body(exc)
        reason = str(body.get("reason") or exc.reason or "")
        message = str(body.get("message") or "")
        kind = _BY_STATUS.get(status)
        if kind is None:
            transient = status in TRANSIENT_STATUS or status == 0
            kind = TransientApiError if transient else KubeApiError
        return kind(status, reason, message, what)
    return TransientApiError(0, type(exc).__name__, str(exc), what)


CLIENT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


@contextmanager
def api_errors(what: str = "") -> Iterator[None]:
    """Inside: the Kubernetes client's errors leave as :class:`KubeApiError`."""
    try:
        yield
    except CLIENT_ERRORS as exc:
        raise api_error(exc, what) from exc


def call(fn: Callable[..., T], *args: Any, what: str = "", **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` (a client method), its errors as :class:`KubeApiError`."""
    with api_errors(what):
        return fn(*args, **kwargs)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help: throttling, server errors, no answer."""
    if isinstance(exc, KubeApiError):
        return isinstance(exc, TransientApiError)
    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUS
    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def server_version(api: k8s_client.ApiClient) -> str:
    """The API server's gitVersion, e.g. ``v1.36.3``."""
    info = call(k8s_client.VersionApi(api).get_code, _request_timeout=10, what="version")
    return str(info.git_version)
