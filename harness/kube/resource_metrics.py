"""The kubelet's resource metrics (``/metrics/resource``), read through the API server's
node proxy (``GET /api/v1/nodes/NODE/proxy/PATH``): the figures metrics-server scrapes,
without waiting for its scrapes.

``PATH`` is the node's ``metrics.k8s.io/resource-metrics-path`` annotation when it has
one (metrics-server 0.7+ honours it too; kwok's nodes carry it, since kwok-controller
serves every simulated node's metrics on one port, under ``/metrics/nodes/NODE/...``),
else ``/metrics/resource``. The text is the Prometheus exposition format, read with
``prometheus_client``'s parser; per container (namespace, pod, container labels) it keeps:

- ``container_cpu_usage_seconds_total``: the CPU time the container has used, in
  core-seconds (a counter);
- ``container_memory_working_set_bytes``: its working set now;
- ``container_start_time_seconds``: when the runtime started it, in seconds since the
  epoch (kwok's simulated kubelet reports the container's age there instead);

and the sample's time: the kubelet stamps each line with the time of the stats it comes
from (the container runtime's or cAdvisor's, which may be some seconds old); lines
without a stamp (kwok's) are taken as measured when they were read.

A read that cannot be used raises :class:`Unreadable` with the reason: the caller may not
use the node proxy (403: ``nodes/proxy`` is a privileged permission), the API server will
not dial the node (400 ``address not allowed`` for a loopback address), the node's
kubelet does not answer (5xx), or the answer is not the format. There is no retry: the
caller has another source (metrics.k8s.io).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness.errors import HarnessError
from harness.kube.client import CLIENT_ERRORS, api_error

PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
DEFAULT_PATH = "/metrics/resource"
READ_TIMEOUT = 5.0  # s: metrics-server's own kubelet timeout on the harness's kwok clusters
_CPU = "container_cpu_usage_seconds_total"
_MEMORY = "container_memory_working_set_bytes"
_START = "container_start_time_seconds"


class Unreadable(HarnessError):
    """A node's resource metrics could not be read or used (the message says why)."""


@dataclass(frozen=True)
class Sample:
    """One container's figures in one read of its node's resource metrics."""

    cpu_seconds: float | None  # core-seconds used since the container started
    memory_bytes: float | None  # working set
    start: float | None  # as the kubelet reports it (seconds since the epoch on kubelets)
    measured: float  # seconds since the epoch: the stats' time, else the read's


Key = tuple[str, str, str]  # namespace, pod, container


def metrics_path(node: dict[str, Any]) -> str:
    """Where the node's resource metrics are served (the annotation, else the kubelet's)."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    path = str(annotations.get(PATH_ANNOTATION) or DEFAULT_PATH)
    return path if path.startswith("/") else "/" + path


def read_node(api: client.ApiClient, node: dict[str, Any]) -> dict[Key, Sample]:
    """Every container's sample in one read of ``node``'s resource metrics (see the module
    docstring); :class:`Unreadable` when the read fails or is not the format."""
    name = str((node.get("metadata") or {}).get("name"))
    path = metrics_path(node)
    try:
        text = client.CoreV1Api(api).connect_get_node_proxy_with_path(
            name, path.lstrip("/"), _request_timeout=READ_TIMEOUT
        )
    except CLIENT_ERRORS as exc:
        error = api_error(exc, f"node {name}'s resource metrics")
        words = error.message or error.reason
        raise Unreadable(
            f"node {name}'s resource metrics ({path} through the node proxy): "
            f"{error.status or 'no answer'} {words}".rstrip()
        ) from exc
    try:
        return parse(str(text), read_at=time.time())
    except ValueError as exc:
        raise Unreadable(
            f"node {name}'s resource metrics ({path}) are not in the Prometheus text format: {exc}"
        ) from exc


def parse(text: str, *, read_at: float) -> dict[Key, Sample]:
    """The container samples of a ``/metrics/resource`` text; ValueError when it is not
    the Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    figures: dict[Key, dict[str, float]] = {}
    stamps: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in (_CPU, _MEMORY, _START):
                continue
            labels = sample.labels
            key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
            if not all(key):
                continue
            figures.setdefault(key, {})[sample.name] = float(sample.value)
            if sample.timestamp is not None and sample.name != _START:
                stamps[key] = max(stamps.get(key, 0.0), float(sample.timestamp))
    return {
        key: Sample(
            cpu_seconds=values.get(_CPU),
            memory_bytes=values.get(_MEMORY),
            start=values.get(_START),
            measured=stamps.get(key, read_at),
        )
        for key, values in figures.items()
    }


__all__ = [
    "DEFAULT_PATH",
    "PATH_ANNOTATION",
    "Sample",
    "Unreadable",
    "metrics_path",
    "parse",
    "read_node",
]
