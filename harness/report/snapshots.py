"""Metric snapshots of an installed app: what its pods use, how often their containers
restarted, and how long they took to become ready.

A snapshot covers the app's pods (:meth:`AppContext.release_pods`: the pods in the app's
namespace, without Helm hook and test pods) and records:

- CPU (millicores) and memory (working set, bytes) per container, from the source
  ``ctx.metrics_source`` names (``--metrics-source``): ``kubelet``, the nodes' resource
  metrics through the API server's node proxy (:mod:`harness.kube.resource_metrics`),
  read at once; ``metrics-api``, the metrics.k8s.io API, as ``kubectl top pods
  --containers`` shows them (metrics-server on kind and on the harness's kwok clusters,
  where kwok's simulated kubelet reports the usage a test or a chart sets, see
  :mod:`harness.clusters.kwok`); ``auto`` (the default), the kubelet, else metrics.k8s.io
  with what is left of the wait, the document's ``kubelet_unused`` saying why.

  The kubelet rule: memory is the working set the kubelet reports; CPU, where the kubelet
  gives the container's start as a time (``container_start_time_seconds``, real
  kubelets), is the CPU time used over the time from that start to the stats' time; where
  it gives none (kwok reports an age there), the rate between two reads at least
  :data:`MIN_CPU_WINDOW` apart. A running container without such a sample yet, or with
  only one of an earlier run of it (started before the pod was created, or before the
  container's previous run ended), is polled for within ``wait``.

  From metrics.k8s.io only *fresh* figures are used (the rule below). metrics-server shows
  a pod only after two scrapes of it (10-20 s on the harness's kwok clusters, up to 30 s
  at its default 15 s resolution), so a snapshot polls (every 0.1 s backing off to 1 s:
  the API cannot be watched) until every pod that should have figures (running, not being
  deleted, with a running container) has fresh ones, and returns at once then; ``wait``
  seconds (default :data:`METRICS_WAIT`; 0: one look, take what is there) is only the
  upper bound. Pods still without fresh figures then get nulls and the reason says so.
  When the cluster does not serve the API (no metrics-server) the figures are null and
  ``reason`` starts with ``metrics unavailable:``. Missing metrics never make a snapshot
  fail.
- restarts per container, init containers included, from the pods' status;
- time to ready per pod: its Ready condition's ``lastTransitionTime`` minus its
  ``creationTimestamp``, in seconds (whole seconds: the API server keeps no more), for
  pods that are Ready;
- the app's phase timings as the run recorded them (seconds from the start of the
  install to the end of ``helm install`` and to the first passing ``ready`` check);
- the recoveries of its ``disrupt`` checks (:mod:`harness.checks.disrupt`): by check id,
  the disruption, the budget and the seconds from the disruption until the app was ready
  again (null when it did not recover).

The freshness rule: a pod's PodMetrics is fresh when its ``timestamp`` is later than the
pod's start, the latest ``state.running.startedAt`` of its running containers
(``status.startTime`` when none has one; a pod with neither takes any PodMetrics); both are
whole seconds (the API truncates them) and are compared as such. Stale figures are not
used: the pod gets nulls and the reason says so. Why, from metrics-server v0.8
(``pkg/storage``, ``pkg/scraper``):

- It keeps the last two samples of each container from its scrapes of the kubelet's
  ``/metrics/resource`` (every ``--metric-resolution``: 10 s on the harness's kwok
  clusters, 15 s by default). ``timestamp`` is the newer sample's time (the kubelet's stats
  time, else the scrape's start), ``window`` the time back to the older one; CPU is the
  rate over that window, memory the working set at ``timestamp``. So ``timestamp`` is when
  the figures were measured.
- It pairs two samples only when the kubelet's ``container_start_time_seconds`` (the
  runtime's start of the container, the API's ``state.running.startedAt``) precedes the
  older one, and for a container 10 s old or more but younger than the resolution uses
  that start as the older sample: a window it computes never begins before the container
  started, and a fresh PodMetrics has a ``timestamp`` at least 10 s after it.
- What it serves that is not of the pod as it runs now is its last PodMetrics from before
  a container restarted, or before a pod of the same name (a StatefulSet's, replaced by an
  upgrade) was created: it goes on serving that one until its next scrape. Its
  ``timestamp`` is before the start.

So the timestamp alone separates the two, at whole-second precision too (fresh: 10 s or more
after the start; stale: before it). ``timestamp - window`` (the window's start) is not
used: on metrics-server it never precedes the start for a fresh PodMetrics anyway, while
kwok's simulated kubelet reports a container's age where its start time belongs (so
metrics-server's check of it does not hold there) and reports pods before they run, so a
pod's first window there may begin during its simulated start-up (its figures are still
the pod's own: kwok's counters integrate the current usage), and other servers of the API
mean something else by it (prometheus-adapter's ``window`` is its rate range, 5 m in
kube-prometheus): young pods would never count.

:func:`snapshot_ready` says, with one look (no wait), whether every such pod has fresh
figures now, so a caller can take the snapshot when it would not wait and do other work
meanwhile.

:func:`take_snapshot` writes ``<report dir>/metrics/<suite>/<app>.json``::

    {
      "format": 1,
      "suite": "shop", "app": "web", "release": "web", "namespace": "h-1a2b3c-web",
      "taken_at": "2025-06-01T12:00:00Z",
      "source": "metrics.k8s.io",           # "kubelet", or "unavailable"
      "reason": null,                        # why some or all figures are null
      "kubelet_unused": null,                # why the kubelet was not read (auto's fallback)
      "waited_s": 11.204,                    # seconds spent getting figures, waits included
      "timings": {"install": 0.412, "ready": 2.915},
      "recoveries": {"disrupt[deletePods]": {"disruption": "1 pod deleted (Pod/web-...)",
                     "budget_s": 60.0, "recovered": true, "seconds": 1.52}},
      "totals": {"cpu_millicores": 12.5, "memory_bytes": 44040192, "restarts": 0,
                 "time_to_ready_s": 3.0, "pods": 2},
      "pods": [
        {"name": "web-6c55f6c6c9-j4khr", "phase": "Running", "ready": true,
         "time_to_ready_s": 3.0, "metrics_timestamp": "2025-06-01T11:59:58Z",
         "metrics_window_s": 10.0,
         "containers": [
           {"name": "web", "init": false, "cpu_millicores": 6.25,
            "memory_bytes": 22020096, "restarts": 0}]}],
      "earlier": {...}                       # only when one was taken before (a `metrics`
    }                                        #   check's, an earlier upgrade phase's): its
                                             #   taken_at, source, reason and totals

Totals sum the containers that have figures (``time_to_ready_s`` is the slowest pod);
CPU is rounded to a thousandth of a millicore. It returns the summary kept in the run's
record: ``cpu_millicores``, ``memory_bytes``, ``restarts``, ``time_to_ready_s``, ``pods``,
``source``, ``reason`` and ``file`` (relative to the report dir). Nothing in either comes
from a pod's spec beyond pod and container names: no env, args or values.

:func:`compare` sets two snapshots (or their summaries) side by side, for upgrade runs.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from harness.checks.context import AppContext
from harness.errors import KubeApiError, NotFound, TransientApiError, UsageError
from harness.kube.client import CLIENT_ERRORS, api_error, call
from harness.kube.resource_metrics import Key, Sample, Unreadable, read_node
from harness.kube.wait import Obj, retry_until
from harness.units import parse_duration

METRICS_WAIT = 20.0  # seconds a snapshot waits at most for figures of freshly started pods
MIN_CPU_WINDOW = 1.0  # s: the shortest time a CPU rate is taken over
AUTO, KUBELET, METRICS_API = "auto", "kubelet", "metrics-api"  # --metrics-source
PODS_METRICS = "pods.metrics.k8s.io"
METRICS_APISERVICE = "v1beta1.metrics.k8s.io"
SOURCE = "metrics.k8s.io"
UNAVAILABLE = "unavailable"
FIGURES = ("cpu_millicores", "memory_bytes", "restarts", "time_to_ready_s", "pods")
FORMAT = 1


class _Pending(Exception):
    """Figures are not all there yet (or the API answered with a passing error)."""


def take_snapshot(
    ctx: AppContext,
    report_dir: Path,
    *,
    timings: Mapping[str, float],
    wait: float = METRICS_WAIT,
) -> dict[str, Any]:
    """Snapshot the app, write its report file, keep the snapshot on ``ctx.metrics`` and
    return the summary (see the module docstring)."""
    earlier = ctx.metrics
    document = snapshot(ctx, timings=timings, wait=wait)
    if earlier is not None:
        document["earlier"] = {
            key: earlier.get(key) for key in ("taken_at", "source", "reason", "totals")
        }
    path = metrics_path(report_dir, ctx.suite.name, ctx.app.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return summary(document, path.relative_to(report_dir).as_posix())


def metrics_path(report_dir: Path, suite: str, app: str) -> Path:
    return report_dir / "metrics" / _file_name(suite) / f"{_file_name(app)}.json"


def snapshot(
    ctx: AppContext,
    *,
    timings: Mapping[str, float] | None = None,
    wait: float = METRICS_WAIT,
) -> dict[str, Any]:
    """The app's snapshot document (the file's content), also kept on ``ctx.metrics``.
    Returns as soon as every pod that should have figures has fresh ones (the module
    docstring's rule), after ``wait`` seconds at most."""
    started = time.monotonic()
    pods, usage, reason, source, kubelet_unused = _read(ctx, wait)
    waited = time.monotonic() - started
    records = [_pod_record(pod, usage) for pod in pods]
    document: dict[str, Any] = {
        "format": FORMAT,
        "suite": ctx.suite.name,
        "app": ctx.app.name,
        "release": ctx.release,
        "namespace": ctx.namespace,
        "taken_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source,
        "reason": reason,
        "kubelet_unused": kubelet_unused,  # why the kubelet was not read, when it was not
        "waited_s": round(waited, 3),
        "timings": {key: round(value, 3) for key, value in (timings or {}).items()},
        "recoveries": dict(ctx.recoveries),  # disrupt checks' recovery times, by check id
        "totals": _totals(records, available=usage is not None),
        "pods": records,
    }
    ctx.metrics = document
    return document


def summary(document: Mapping[str, Any], file: str | None = None) -> dict[str, Any]:
    """The compact figures of a snapshot document, for the run's record."""
    return {
        **document["totals"],
        "source": document["source"],
        "reason": document["reason"],
        "file": file,
    }


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Figure by figure (``cpu_millicores``, ``memory_bytes``, ``restarts``,
    ``time_to_ready_s``, ``pods``): ``{"before", "after", "delta", "ratio"}``, where
    ``delta`` is after minus before and ``ratio`` after over before. Either side may be a
    snapshot document or its summary. A figure missing on either side (metrics
    unavailable) gives null delta and ratio, and so does a ratio over zero."""
    old, new = _figures(before), _figures(after)
    result: dict[str, Any] = {}
    for name in FIGURES:
        a, b = _number(old.get(name)), _number(new.get(name))
        delta = ratio = None
        if a is not None and b is not None:
            delta = _round(b - a)
            ratio = round(b / a, 4) if a != 0 else None
        result[name] = {"before": a, "after": b, "delta": delta, "ratio": ratio}
    return result


# -- quantities ----------------------------------------------------------------------------


def parse_quantity_text(text: str | int | float) -> Decimal:
    """A Kubernetes quantity (``250m``, ``0.5``, ``128Mi``, ``1G``, ``1e3``) as a number;
    UsageError when it is not one, or is negative."""
    if isinstance(text, bool):
        raise UsageError(f"not a quantity: {text!r}")
    try:
        value: Decimal = parse_quantity(text)
    except ValueError as exc:
        raise UsageError(
            f"not a quantity: {text!r} (write e.g. 500m or 0.5 for CPU, 256Mi or 1G for memory)"
        ) from exc
    if value < 0:
        raise UsageError(f"a quantity must not be negative: {text!r}")
    return value


def cpu_millicores(quantity: str | int | float) -> float:
    """CPU cores as a quantity (``250m``, ``150004386n``, ``1``) in millicores."""
    return float(parse_quantity_text(quantity) * 1000)


def memory_bytes(quantity: str | int | float) -> int:
    """Memory as a quantity (``128Mi``, ``1G``, ``1048576``) in bytes (rounded up)."""
    value = parse_quantity_text(quantity)
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def format_cpu(millicores: float) -> str:
    return f"{millicores:.3f}".rstrip("0").rstrip(".") + "m"


def format_memory(count: float) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if abs(count) >= size:
            return f"{count / size:.1f}".removesuffix(".0") + unit
    return f"{count:g}B"


# -- reading the cluster -------------------------------------------------------------------


def snapshot_ready(ctx: AppContext) -> bool:
    """Whether a snapshot from metrics.k8s.io taken now would not wait (whatever
    ``ctx.metrics_source`` says): every pod of the app that should have
    figures (running, not being deleted, with a running container) has fresh ones (the
    module docstring's rule), or the cluster does not serve metrics.k8s.io at all (no
    wait would bring figures). One look: a list of the app's pods and one of their
    PodMetrics, no waiting. False while a registered metrics-server is not Available yet
    or the API answers with a passing error (a snapshot would wait for those too), so a
    caller can do other work and take the snapshot once this is true, or when its own
    bound passes (the snapshot then waits for what is left of it)."""
    try:
        pods_metrics = ctx.lister_for(ctx.resolver.by_name(PODS_METRICS))
    except UsageError:
        return _apiservice_state(ctx) is None
    except CLIENT_ERRORS:  # discovery failing: a snapshot records that at once
        return True
    try:
        usage = _usage(ctx, pods_metrics)
    except _Pending:
        return False
    except KubeApiError:  # a lasting error: a snapshot records it at once
        return True
    waiting, stale = _not_fresh(ctx.release_pods(), usage)
    return not waiting and not stale


def _read(
    ctx: AppContext, wait: float
) -> tuple[list[Obj], dict[str, Obj] | None, str | None, str, str | None]:
    """The app's pods, their fresh figures by pod name, as PodMetrics (None when no source
    is usable), the reason figures are missing (if some are), the source, and why the
    kubelet was not read (``--metrics-source auto`` falling back to metrics.k8s.io)."""
    started = time.monotonic()
    unused = None
    if ctx.metrics_source in (AUTO, KUBELET):
        try:
            pods, figures, reason = _read_kubelet(ctx, wait)
            return pods, figures, reason, KUBELET, None
        except Unreadable as exc:
            if ctx.metrics_source == KUBELET:
                return ctx.release_pods(), None, f"metrics unavailable: {exc}", UNAVAILABLE, None
            unused = str(exc)
    else:
        unused = f"--metrics-source {ctx.metrics_source}"
    left = max(0.0, wait - (time.monotonic() - started))
    pods, usage, reason = _read_metrics_api(ctx, left)
    return pods, usage, reason, UNAVAILABLE if usage is None else SOURCE, unused


def _read_kubelet(ctx: AppContext, wait: float) -> tuple[list[Obj], dict[str, Obj], str | None]:
    """The app's pods and their figures from the kubelets' resource metrics (the module
    docstring's kubelet rule), as PodMetrics, and the reason some are missing: polls while
    a running container has no usable sample yet, ``wait`` seconds at most.
    :class:`Unreadable` when a node's resource metrics cannot be read."""
    from kubernetes import client

    nodes: dict[str, Obj] = {}
    first: dict[Key, Sample] = {}  # each container's earliest sample: two-read CPU rates
    seen: list[tuple[list[Obj], dict[str, Obj]]] = []
    # A client of its own, without the API client's retry: a kubelet that does not answer
    # is a reason to use metrics.k8s.io, not to wait out the retry.
    with client.ApiClient(ctx.api.configuration) as own:

        def attempt() -> None:
            pods = ctx.release_pods()
            expecting = [pod for pod in pods if _expects_figures(pod)]
            samples: dict[Key, Sample] = {}
            for node in sorted({str((p.get("spec") or {}).get("nodeName")) for p in expecting}):
                if node not in nodes:
                    found = call(client.CoreV1Api(ctx.api).read_node, node)
                    nodes[node] = ctx.api.sanitize_for_serialization(found)
                samples.update(read_node(own, nodes[node]))
            usage: dict[str, Obj] = {}
            waiting = []
            for pod in expecting:
                item, missing = _kubelet_pod_metrics(pod, samples, first)
                if item is not None:
                    usage[_name(pod)] = item
                if missing:
                    waiting.append(f"{_name(pod)} ({'; '.join(missing)})")
            for key, sample in samples.items():  # a counter that went back: a new run
                earlier = first.get(key)
                if earlier is None or (sample.cpu_seconds or 0.0) < (earlier.cpu_seconds or 0.0):
                    first[key] = sample
            seen.append((pods, usage))
            if waiting:
                raise _Pending(
                    f"no kubelet figures within {wait:g}s for pod(s) {', '.join(waiting)} "
                    "(a container shows once its runtime has stats of it)"
                )

        try:
            retry_until(attempt, timeout=wait, retry_on=_Pending)
        except _Pending as exc:
            return seen[-1][0], seen[-1][1], str(exc)
    return seen[-1][0], seen[-1][1], None


def _kubelet_pod_metrics(
    pod: Obj, samples: Mapping[Key, Sample], first: Mapping[Key, Sample]
) -> tuple[Obj | None, list[str]]:
    """The pod's figures as a PodMetrics from its running containers' samples (None when
    none has a usable one) and what is missing: for each running container without its
    memory and CPU, why."""
    namespace = str((pod.get("metadata") or {}).get("namespace"))
    status = pod.get("status") or {}
    containers, measured, windows = [], [], []
    missing: list[str] = []
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        running = (container.get("state") or {}).get("running")
        if not running:
            continue
        key = (namespace, _name(pod), str(container.get("name")))
        sample, not_before = samples.get(key), _not_before(pod, container)
        figures = _container_figures(sample, first.get(key), not_before)
        if figures is None:
            missing.append(f"{key[2]}: {_unusable(sample, not_before)}")
            continue
        usage, window, sample = figures
        if "cpu" not in usage:
            missing.append(f"{key[2]}: no CPU yet")
        containers.append({"name": key[2], "usage": usage})
        measured.append(sample.measured)
        if window is not None:
            windows.append(window)
    if not containers:
        return None, missing or ["no running container"]
    item: Obj = {
        "metadata": {"name": _name(pod), "namespace": namespace},
        "timestamp": datetime.fromtimestamp(min(measured), timezone.utc).isoformat(),
        "containers": containers,
    }
    if windows:
        item["window"] = f"{min(windows):.3f}s"
    return item, missing


def _not_before(pod: Obj, status: Mapping[str, Any]) -> float | None:
    """The time (seconds since the epoch, whole seconds as the API gives them) a sample of
    the container as it runs now cannot have started before: the pod's creation (a pod of
    the same name before it, a StatefulSet's, was another), and the end of the
    container's previous run when it restarted. None when the API says neither."""
    times = []
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    finished = (((status.get("lastState") or {}).get("terminated")) or {}).get("finishedAt")
    for text in (created, finished):
        with contextlib.suppress(ValueError):
            times.append(_timestamp(str(text or "")).timestamp())
    return max(times) if times else None


def _container_figures(
    sample: Sample | None, earlier: Sample | None, not_before: float | None
) -> tuple[dict[str, str], float | None, Sample] | None:
    """The container's usage as quantities (``memory``, and ``cpu`` when it can be told
    yet), the CPU's window (seconds) and the sample; None without a usable sample: none
    yet, or one of an earlier run of the container (it started before ``not_before``,
    :func:`_not_before`). CPU waits, where the kubelet gives no start time, for a second
    sample at least :data:`MIN_CPU_WINDOW` after the first.

    The kubelet's start time is the runtime's creation of the container, which may come
    seconds before the start the API gives (``state.running.startedAt``: a slow volume
    mount, a loaded node), so it is held to what came before the container, never to
    that start."""
    if _unusable(sample, not_before) or sample is None or sample.memory_bytes is None:
        return None  # (the last two only narrow the types: _unusable says "no sample")
    usage = {"memory": f"{round(sample.memory_bytes)}"}
    if sample.start is not None and _is_epoch(sample.start):
        window = sample.measured - sample.start
        used = sample.cpu_seconds
    else:  # no start time to count from (kwok reports the age): two reads
        window = sample.measured - earlier.measured if earlier is not None else 0.0
        used = None
        if earlier is not None and sample.cpu_seconds is not None:
            used = sample.cpu_seconds - (earlier.cpu_seconds or 0.0)
    if used is None or used < 0 or window < MIN_CPU_WINDOW:
        return usage, None, sample
    usage["cpu"] = f"{round(used / window * 1e9)}n"
    return usage, window, sample


def _unusable(sample: Sample | None, not_before: float | None) -> str | None:
    """Why a container's sample cannot be used (None: it can): there is none, or it is of
    an earlier run of the container (a start before ``not_before``)."""
    if sample is None or sample.memory_bytes is None:
        return "no sample"
    start = sample.start
    if start is not None and _is_epoch(start) and not_before is not None:
        if start < not_before - 1:
            return (
                f"only a sample of an earlier run (started at {start:.0f}, before {not_before:.0f})"
            )
    return None


def _is_epoch(start: float) -> bool:
    """Whether a kubelet's start time is a time (seconds since the epoch, after 2001), not
    an age as kwok's simulated kubelet reports."""
    return start > 1e9


def _read_metrics_api(
    ctx: AppContext, wait: float
) -> tuple[list[Obj], dict[str, Obj] | None, str | None]:
    """The app's pods, their fresh PodMetrics by pod name (None when the API is not
    usable) and the reason figures are missing, if some are."""
    bound = wait
    started = time.monotonic()
    try:
        pods_metrics = _metrics_lister(ctx, wait)
    except _NotServed as exc:
        return ctx.release_pods(), None, str(exc)
    except CLIENT_ERRORS as exc:  # discovery failing (kubernetes.dynamic's errors derive from it)
        return ctx.release_pods(), None, f"metrics unavailable: discovery failed: {exc}"
    wait = max(0.0, wait - (time.monotonic() - started))
    seen: list[tuple[list[Obj], dict[str, Obj]]] = []

    def attempt() -> None:
        pods = ctx.release_pods()
        usage = _usage(ctx, pods_metrics)
        waiting, stale = _not_fresh(pods, usage)
        fresh = {name: item for name, item in usage.items() if name not in stale}
        seen.append((pods, fresh))
        if waiting or stale:
            raise _Pending(_missing(bound, waiting, stale))

    try:
        retry_until(attempt, timeout=wait, retry_on=_Pending)
    except _Pending as exc:
        if not seen:
            return ctx.release_pods(), None, f"metrics unavailable: {exc}"
        return seen[-1][0], seen[-1][1], str(exc)
    except KubeApiError as exc:
        return (
            ctx.release_pods(),
            None,
            f"metrics unavailable: {SOURCE} answered {exc.status} {exc.reason}",
        )
    return seen[-1][0], seen[-1][1], None


def _usage(ctx: AppContext, pods_metrics: Any) -> dict[str, Obj]:
    """The namespace's PodMetrics by pod name; _Pending on a passing error."""
    try:
        items = pods_metrics(namespace=ctx.namespace)["items"]
    except CLIENT_ERRORS as exc:
        error = api_error(exc, SOURCE)
        if isinstance(error, TransientApiError):
            raise _Pending(f"{SOURCE} answered {error.status} {error.reason}") from exc
        raise error from exc
    return {item["metadata"]["name"]: item for item in items}


def _not_fresh(pods: list[Obj], usage: Mapping[str, Obj]) -> tuple[list[str], set[str]]:
    """The pods that should have figures and have no fresh ones, and every pod whose
    figures are stale (measured before it, or one of its running containers, started)."""
    stale = {_name(pod) for pod in pods if _name(pod) in usage and not _fresh(pod, usage)}
    waiting = [
        _name(pod)
        for pod in pods
        if _expects_figures(pod) and (_name(pod) not in usage or _name(pod) in stale)
    ]
    return waiting, stale


def _missing(wait: float, waiting: list[str], stale: set[str]) -> str:
    none = sorted(name for name in waiting if name not in stale)
    old = sorted(name for name in waiting if name in stale)
    parts = []
    if none:
        parts.append(f"no figures within {wait:g}s for pod(s) {', '.join(none)}")
    if old:
        parts.append(
            f"{'none' if none else 'no figures'} newer than the pod's start within {wait:g}s "
            f"for pod(s) {', '.join(old)}"
        )
    return "; ".join(parts) + " (metrics-server shows a pod after its second scrape of it)"


def _fresh(pod: Obj, usage: Mapping[str, Obj]) -> bool:
    """Whether the pod's PodMetrics was measured after the pod (its latest running
    container) started, in whole seconds (the module docstring's rule)."""
    item = usage.get(_name(pod))
    if item is None:
        return False
    start = _pod_start(pod)
    if start is None:
        return True
    try:
        measured = _timestamp(str(item.get("timestamp") or ""))
    except ValueError:  # no timestamp, or not one
        return False
    return measured.replace(microsecond=0) > start.replace(microsecond=0)


def _pod_start(pod: Obj) -> datetime | None:
    """The latest ``state.running.startedAt`` of the pod's running containers (sidecar
    init containers too), else its ``status.startTime``, else None."""
    status = pod.get("status") or {}
    starts: list[datetime] = []
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for container in statuses:
        running = (container.get("state") or {}).get("running") or {}
        with contextlib.suppress(ValueError):
            starts.append(_timestamp(str(running.get("startedAt") or "")))
    if starts:
        return max(starts)
    try:
        return _timestamp(str(status.get("startTime") or ""))
    except ValueError:
        return None


class _NotServed(Exception):
    """The metrics API cannot be used (the reason is the message)."""


def _metrics_lister(ctx: AppContext, wait: float) -> Any:
    """The PodMetrics lister. A metrics-server that is registered (its APIService exists)
    but not Available yet, as on a cluster that has just started, is waited for within
    ``wait``; a cluster with no such APIService does not serve metrics at all."""
    try:
        return ctx.lister_for(ctx.resolver.by_name(PODS_METRICS))
    except UsageError:
        pass
    if _apiservice_state(ctx) is None:
        raise _NotServed(
            f"metrics unavailable: the cluster does not serve {SOURCE} (no metrics-server)"
        )
    found: list[Any] = []

    def attempt() -> None:
        try:
            found.append(ctx.lister_for(ctx.resolver.by_name(PODS_METRICS)))
        except UsageError as exc:
            raise _Pending(str(exc)) from exc

    try:
        retry_until(attempt, timeout=wait, retry_on=_Pending)
    except _Pending as exc:
        raise _NotServed(
            f"metrics unavailable: {METRICS_APISERVICE} is registered but not Available "
            f"within {wait:g}s ({_apiservice_state(ctx)})"
        ) from exc
    return found[-1]


def _apiservice_state(ctx: AppContext) -> str | None:
    """None when the metrics APIService does not exist, else its Available condition."""
    from kubernetes import client

    try:
        registration = client.ApiregistrationV1Api(ctx.api)
        service = call(registration.read_api_service, METRICS_APISERVICE, _request_timeout=10)
    except NotFound:
        return None
    except KubeApiError as exc:
        return f"could not read it: {exc.status} {exc.reason}"
    for condition in (service.status.conditions if service.status else None) or []:
        if condition.type == "Available":
            return f"Available={condition.status}: {condition.reason}: {condition.message}"
    return "no Available condition yet"


def _expects_figures(pod: Obj) -> bool:
    """A running pod, not being deleted, with a running container: metrics-server reports
    those."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any((c.get("state") or {}).get("running") for c in status.get("containerStatuses") or [])


def _pod_record(pod: Obj, usage: Mapping[str, Obj] | None) -> dict[str, Any]:
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    pod_usage = (usage or {}).get(_name(pod))
    by_container = {
        c.get("name"): c.get("usage") or {} for c in (pod_usage or {}).get("containers") or []
    }
    restarts = {
        s.get("name"): int(s.get("restartCount") or 0)
        for s in (status.get("initContainerStatuses") or [])
        + (status.get("containerStatuses") or [])
    }
    containers = []
    for init, key in ((True, "initContainers"), (False, "containers")):
        for container in spec.get(key) or []:
            name = container.get("name")
            figures = by_container.get(name)
            containers.append(
                {
                    "name": name,
                    "init": init,
                    "cpu_millicores": _round(cpu_millicores(figures["cpu"]))
                    if figures and "cpu" in figures
                    else None,
                    "memory_bytes": memory_bytes(figures["memory"])
                    if figures and "memory" in figures
                    else None,
                    "restarts": restarts.get(name, 0),
                }
            )
    ready = _ready_condition(pod)
    return {
        "name": _name(pod),
        "phase": status.get("phase"),
        "ready": ready is not None,
        "time_to_ready_s": _seconds_between(
            (pod.get("metadata") or {}).get("creationTimestamp"),
            ready.get("lastTransitionTime") if ready else None,
        ),
        "metrics_timestamp": (pod_usage or {}).get("timestamp"),
        "metrics_window_s": _window(pod_usage),
        "containers": containers,
    }


def _totals(records: list[dict[str, Any]], *, available: bool) -> dict[str, Any]:
    containers = [c for record in records for c in record["containers"]]
    cpu = [c["cpu_millicores"] for c in containers if c["cpu_millicores"] is not None]
    memory = [c["memory_bytes"] for c in containers if c["memory_bytes"] is not None]
    ready = [r["time_to_ready_s"] for r in records if r["time_to_ready_s"] is not None]
    return {
        "cpu_millicores": _round(sum(cpu)) if available else None,
        "memory_bytes": sum(memory) if available else None,
        "restarts": sum(c["restarts"] for c in containers),
        "time_to_ready_s": max(ready) if ready else None,
        "pods": len(records),
    }


def _ready_condition(pod: Obj) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return dict(condition)
    return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((_timestamp(end) - _timestamp(start)).total_seconds(), 3)


def _timestamp(text: str) -> datetime:
    # Python 3.10's fromisoformat does not take the "Z" the API server writes.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _window(pod_usage: Obj | None) -> float | None:
    text = (pod_usage or {}).get("window")
    if not text:
        return None
    try:
        return round(parse_duration(str(text)), 3)
    except ValueError:  # not a duration (Go's, such as 1m0.5s, are read too)
        return None


def _figures(snapshot_or_summary: Mapping[str, Any]) -> Mapping[str, Any]:
    totals = snapshot_or_summary.get("totals")
    return totals if isinstance(totals, Mapping) else snapshot_or_summary


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _round(value: float) -> float:
    return round(value, 3)


def _name(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("name"))


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "_"


__all__ = [
    "METRICS_WAIT",
    "compare",
    "cpu_millicores",
    "format_cpu",
    "format_memory",
    "memory_bytes",
    "metrics_path",
    "parse_quantity_text",
    "snapshot",
    "snapshot_ready",
    "summary",
    "take_snapshot",
]
