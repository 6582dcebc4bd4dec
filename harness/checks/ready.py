"""``ready``: every object of the release that has a notion of readiness becomes ready —
Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs (completed), CronJobs (present,
not suspended unless ``allowSuspended``), bare Pods, PVCs (Bound), Services (ready
endpoints, unless headless, ExternalName or selector-less) and the CRDs the chart
installs (Established). One deadline covers them all: the app's install + readiness
timeout, or the check's own.

It does not wait for what cannot happen: while it waits for workloads and pods it asks,
every second, whether a pod of the release can ever become ready
(:mod:`harness.kube.diagnosis`: an image that cannot be pulled, a crash loop past
``maxRestarts``, a pod no node can ever take, a claim of a missing StorageClass), and a
CRD that an upgrade's crd-drift found missing from the cluster fails at once."""

from __future__ import annotations

import time
from collections import defaultdict
from functools import partial
from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, WaitTimeout
from harness.kube.diagnosis import DEFAULT_MAX_RESTARTS, hopeless
from harness.kube.readiness import (
    PREDICATES,
    Unrecoverable,
    container_states,
    cronjob_ready,
    service_needs_endpoints,
    slices_have_ready_endpoint,
)
from harness.kube.wait import Obj, describe, wait_for
from harness.suite.model import Check

WORKLOADS_WITH_PODS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def run(ctx: AppContext, check: Check) -> None:
    timeout = check.timeout if check.timeout is not None else ctx.remaining()
    deadline = time.monotonic() + max(timeout, 1.0)
    allow_suspended = bool(check.spec.get("allowSuspended", False))
    max_restarts = int(check.spec.get("maxRestarts", DEFAULT_MAX_RESTARTS))
    predicates = dict(PREDICATES)
    predicates["CronJob"] = partial(cronjob_ready, allow_suspended=allow_suspended)

    missing = sorted(
        crd["metadata"]["name"] for crd in ctx.crds if crd["metadata"]["name"] in ctx.missing_crds
    )
    if missing:
        raise CheckFailed(
            f"CustomResourceDefinition {', '.join(missing)} Established",
            "not in the cluster: Helm installs a chart's crds/ on first install only and "
            "never upgrades them (see this phase's crd-drift item)",
        )
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for obj in [*ctx.manifest, *ctx.crds]:
        kind = obj.get("kind", "")
        if kind in predicates:
            namespace = "" if kind == "CustomResourceDefinition" else ctx.namespace_of(obj)
            groups[(obj.get("apiVersion", ""), kind, namespace)].append(obj["metadata"]["name"])
    for (api_version, kind, namespace), names in groups.items():
        doctor = _doctor(ctx, namespace, max_restarts) if kind in WITH_PODS else None
        _wait_group(ctx, api_version, kind, namespace, names, predicates[kind], deadline, doctor)
    for service in ctx.objects_of("Service"):
        if service_needs_endpoints(service):
            _wait_endpoints(ctx, service, deadline)


def _wait_group(
    ctx: AppContext,
    api_version: str,
    kind: str,
    namespace: str,
    names: list[str],
    ready: Any,
    deadline: float,
    doctor: Any = None,
) -> None:
    rtype = ctx.resolver.by_kind(kind, api_version)
    wanted = set(names)

    def all_ready(objects: list[Obj]) -> bool:
        mine = [o for o in objects if o["metadata"]["name"] in wanted]
        return len(mine) == len(wanted) and all(ready(o) for o in mine)

    label = f"{kind} {', '.join(sorted(wanted))}"
    kwargs: dict[str, Any] = {"namespace": namespace} if rtype.namespaced else {}
    try:
        wait_for(
            ctx.lister_for(rtype),
            all_ready,
            expected=f"{label} ready",
            timeout=max(deadline - time.monotonic(), 0.5),
            kind=kind,
            observe=lambda objects: describe(
                [o for o in objects if o["metadata"]["name"] in wanted]
            ),
            probe=doctor,
            **kwargs,
        )
    except Unrecoverable as exc:
        raise CheckFailed(
            f"{label} ready", str(exc), details=_pod_evidence(ctx, namespace)
        ) from exc
    except WaitTimeout as exc:
        details = _pod_evidence(ctx, namespace) if kind in WORKLOADS_WITH_PODS else ""
        raise CheckFailed(
            f"{label} ready within {exc.timeout:.0f}s", exc.observed, details=details
        ) from exc


WITH_PODS = (*WORKLOADS_WITH_PODS, "Pod", "PersistentVolumeClaim")  # asked while waiting


def _doctor(ctx: AppContext, namespace: str, max_restarts: int) -> Any:
    """The probe the waits for workloads and pods call every second: Unrecoverable when a
    pod of the release cannot become ready (nodes and StorageClasses are read once)."""
    cluster: dict[str, Any] = {}

    def probe() -> None:
        if not cluster:
            cluster["nodes"] = ctx.lister_for(ctx.resolver.by_name("nodes"))()["items"]
            classes = ctx.lister_for(ctx.resolver.by_name("storageclasses.storage.k8s.io"))()
            cluster["classes"] = {c["metadata"]["name"] for c in classes["items"]}
        pods = [
            pod
            for pod in ctx.lister_for(ctx.resolver.by_name("pods"))(namespace=namespace)["items"]
            if "helm.sh/hook" not in ((pod.get("metadata") or {}).get("annotations") or {})
        ]
        listed = ctx.lister_for(ctx.resolver.by_name("persistentvolumeclaims"))(
            namespace=namespace
        )["items"]
        claims = {c["metadata"]["name"]: c for c in listed}
        cause = hopeless(
            pods,
            cluster["nodes"],
            max_restarts=max_restarts,
            storage_classes=cluster["classes"],
            claims=claims,
        )
        if cause:
            raise Unrecoverable(cause)

    return probe


def _wait_endpoints(ctx: AppContext, service: Obj, deadline: float) -> None:
    name = service["metadata"]["name"]
    namespace = ctx.namespace_of(service)
    rtype = ctx.resolver.by_name("endpointslices.discovery.k8s.io")
    try:
        wait_for(
            ctx.lister_for(rtype),
            slices_have_ready_endpoint,
            expected=f"Service {name} has a ready endpoint",
            timeout=max(deadline - time.monotonic(), 0.5),
            namespace=namespace,
            label_selector=f"kubernetes.io/service-name={name}",
        )
    except WaitTimeout as exc:
        raise CheckFailed(
            f"Service {name} to have a ready endpoint",
            "no ready endpoints (no ready pod matches its selector "
            f"{service['spec'].get('selector')})",
            details=_pod_evidence(ctx, namespace),
        ) from exc


def _pod_evidence(ctx: AppContext, namespace: str) -> str:
    """The release namespace's pods and their container states, for the failure message."""
    try:
        pods = ctx.lister_for(ctx.resolver.by_name("pods"))(namespace=namespace)["items"]
    except Exception as exc:  # evidence is best effort; the failure itself stands
        return f"(could not list pods: {exc})"
    lines = [f"  pod/{p['metadata']['name']}: {container_states(p)}" for p in pods[:10]]
    text = "pods:\n" + "\n".join(lines) if lines else "no pods in the namespace"
    return text + _latest_warning(ctx, namespace)


def _latest_warning(ctx: AppContext, namespace: str) -> str:
    """The namespace's most recent Warning event, as the cause Kubernetes states."""
    try:
        events = ctx.lister_for(ctx.resolver.by_name("events"))(
            namespace=namespace, field_selector="type=Warning"
        )["items"]
    except Exception:  # evidence is best effort
        return ""
    if not events:
        return ""

    def when(event: Obj) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event["metadata"].get("creationTimestamp")
            or ""
        )

    latest = max(events, key=when)
    involved = latest.get("involvedObject") or {}
    return (
        f"\nlatest warning: {latest.get('reason')} on {involved.get('kind')}/"
        f"{involved.get('name')}: {' '.join(str(latest.get('message') or '').split())[:240]}"
    )
