"""``disrupt``: the app recovers from a disruption within a budget (the check's ``timeout``,
default 60s). One of:

- ``deletePods: {selector, all}``: delete one pod (the first by name), or with ``all: true``
  every pod, of those matching ``selector`` (default: every pod of the release);
- ``restart: {resource}``: restart rollouts as ``kubectl rollout restart`` does, by setting
  the pod template's ``kubectl.kubernetes.io/restartedAt`` annotation: ``resource`` is a
  Deployment, StatefulSet or DaemonSet as ``KIND/NAME`` (default: every one of the release);
- ``drain: {node, selector}``: cordon a node (default: the node of the first pod matching
  ``selector``, or of the release's first pod) and evict the app's pods on it, DaemonSet
  pods excepted, as ``kubectl drain`` does. Only the app's own pods are evicted: other apps
  of the run may share the node. An eviction a PodDisruptionBudget refuses (429) is tried
  again, as ``kubectl drain`` does, until the check's own deadline (the API client's retry
  is not used: its time would not count); a drain that cannot finish by then fails as
  "could not drain", naming the budget and its status. The cordon is undone at the end of
  the check, whatever happened. It needs another schedulable node to move the pods to
  (kwok: ``--cluster-nodes N``); a single-node cluster (kind) skips it and says so.

Recovered means: as many ready pods match the selector as did before, none of them a pod
the disruption removed, and then the ``ready`` check passes (:mod:`harness.checks.ready`,
one deadline). The seconds from the disruption to recovery are kept in
``AppContext.recoveries`` under the check's id, and reach the app's record (results.json)
and its metric snapshot. It never runs ahead of its item: it changes the app."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.checks import ready
from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError, WaitTimeout
from harness.kube.client import CLIENT_ERRORS, api_error, call, status_body
from harness.kube.diagnosis import _expression_holds
from harness.kube.readiness import Unrecoverable, container_states, pod_ready
from harness.kube.wait import Obj, condition_is, retry_until, wait_for
from harness.suite.model import Check

ACTIONS = ("deletePods", "restart", "drain")
ROLLOUTS = ("Deployment", "StatefulSet", "DaemonSet")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def run(ctx: AppContext, check: Check) -> None:
    action = next((name for name in ACTIONS if name in check.spec), None)
    if action is None:
        raise UsageError(f"disrupt needs one of: {', '.join(ACTIONS)}")
    options: dict[str, Any] = check.spec.get(action) or {}
    budget = ctx.timeout_for(check)
    if action == "restart":
        what = _restart(ctx, options.get("resource"))
        started = time.monotonic()
        _recover(ctx, check, what, started=started, budget=budget)
        return
    selector = options.get("selector")
    pods = _pods(ctx, selector)
    if not pods:
        raise CheckFailed(
            f"pods {_matching(selector)} in namespace {ctx.namespace} to disrupt",
            "none: the selector matches no pod",
        )
    wanted = sum(1 for pod in pods if _is_ready(pod))
    if action == "deletePods":
        chosen = pods if options.get("all") else pods[:1]
        started = time.monotonic()
        for pod in chosen:
            _delete(ctx, pod)
        _recover(ctx, check, _named(chosen, "deleted"), started, budget, chosen, selector, wanted)
        return
    node = options.get("node") or _node_of(pods)
    _drain(ctx, check, node, selector, pods, wanted, budget)


def _drain(
    ctx: AppContext,
    check: Check,
    node: str,
    selector: str | None,
    pods: list[Obj],
    wanted: int,
    budget: float,
) -> None:
    core = client.CoreV1Api(ctx.api)
    nodes = ctx.lister_for(ctx.resolver.by_name("nodes"))()["items"]
    if node not in {n["metadata"]["name"] for n in nodes}:
        raise CheckFailed(f"node {node} to drain", "no such node in the cluster")
    others = [
        n["metadata"]["name"]
        for n in nodes
        if n["metadata"]["name"] != node
        and not (n.get("spec") or {}).get("unschedulable")
        and condition_is(n, "Ready")
    ]
    if not others:
        pytest.skip(
            f"drain needs another schedulable node to move pods to; this cluster has none "
            f"besides {node} (kind is single-node; kwok: --cluster-nodes 2 or more)"
        )
    cordoned = _cordon(core, node, True)
    try:
        evicted = [
            pod
            for pod in pods
            if (pod.get("spec") or {}).get("nodeName") == node and not _owned_by_daemonset(pod)
        ]
        started = time.monotonic()
        what = f"drain of node {node}: {_named(evicted, 'evicted') if evicted else 'no pods'}"
        # A client of its own, without the API client's retry: a refused eviction is
        # retried here, within the check's deadline.
        with client.ApiClient(ctx.api.configuration) as own:
            refused = _evict_all(client.CoreV1Api(own), evicted, ctx.namespace, started + budget)
        if refused is not None:
            raise _not_drained(ctx, check, node, budget, *refused)
        _recover(ctx, check, what, started, budget, evicted, selector, wanted)
    finally:
        if cordoned:
            _cordon(core, node, False)


def _not_drained(
    ctx: AppContext,
    check: Check,
    node: str,
    budget: float,
    pod: Obj,
    refusal: ApiException,
    done: list[Obj],
) -> CheckFailed:
    """The failure of a drain an eviction was refused for until the deadline (recorded as
    not recovered): the pod, the API server's answer and the budgets that select the pod."""
    what = f"drain of node {node}: {_named(done, 'evicted') if done else 'no pod evicted'}"
    ctx.recoveries[check.id] = {
        "disruption": what,
        "budget_s": round(budget, 3),
        "recovered": False,
        "seconds": None,
    }
    status = status_body(refusal)
    causes = [str(c.get("message")) for c in (status.get("details") or {}).get("causes") or []]
    answer = f"{refusal.status} {status.get('reason') or refusal.reason}"
    return CheckFailed(
        f"the app to recover from the drain of node {node} within {budget:.0f}s",
        f"could not drain: the eviction of Pod/{pod['metadata']['name']} was refused until "
        f"the deadline ({answer}: {status.get('message') or refusal.body}); "
        f"{_budgets_of(ctx, pod)}",
        details="\n".join([*causes, f"before that: {what}"]),
    )


def _recover(
    ctx: AppContext,
    check: Check,
    what: str,
    started: float,
    budget: float,
    removed: list[Obj] | None = None,
    selector: str | None = None,
    wanted: int = 0,
) -> None:
    """Wait until the app is ready again, within ``budget`` seconds of ``started``; record
    the recovery either way."""
    deadline = started + budget
    gone = {pod["metadata"]["uid"] for pod in removed or []}
    record = {"disruption": what, "budget_s": round(budget, 3)}
    try:
        if removed:
            _wait_pods_back(ctx, selector, gone, wanted, deadline)
        ready.run(ctx, Check(kind="ready", spec={}, timeout=max(deadline - time.monotonic(), 1)))
    except CheckFailed as exc:
        ctx.recoveries[check.id] = {**record, "recovered": False, "seconds": None}
        raise CheckFailed(
            f"the app to recover from the {what} within {budget:.0f}s",
            f"not recovered: {exc.observed}",
            details="\n".join(x for x in (exc.details, _no_controller(removed or [])) if x),
        ) from exc
    seconds = time.monotonic() - started
    ctx.recoveries[check.id] = {**record, "recovered": True, "seconds": round(seconds, 3)}


def _wait_pods_back(
    ctx: AppContext, selector: str | None, gone: set[str], wanted: int, deadline: float
) -> None:
    """As many ready pods as before, none of them one that was removed."""

    def fresh(pods: list[Obj]) -> list[Obj]:
        return [
            pod
            for pod in _release_only(pods, selector)
            if pod["metadata"]["uid"] not in gone and not pod["metadata"].get("deletionTimestamp")
        ]

    def back(pods: list[Obj]) -> bool:
        return sum(1 for pod in fresh(pods) if _is_ready(pod)) >= wanted

    def observe(pods: list[Obj]) -> str:
        new = fresh(pods)
        ready_now = sum(1 for pod in new if _is_ready(pod))
        states = "; ".join(f"Pod/{p['metadata']['name']}: {container_states(p)}" for p in new[:5])
        return f"{ready_now} of {wanted} pods ready again" + (f" ({states})" if states else "")

    kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
    try:
        wait_for(
            ctx.lister_for(ctx.resolver.by_name("pods")),
            back,
            expected=f"{wanted} ready pods {_matching(selector)}",
            timeout=max(deadline - time.monotonic(), 0.5),
            observe=observe,
            kind="Pod",
            namespace=ctx.namespace,
            **kwargs,
        )
    except WaitTimeout as exc:
        raise CheckFailed(exc.expected, exc.observed) from exc


def _restart(ctx: AppContext, resource: str | None) -> str:
    """Patch each rollout's pod template as ``kubectl rollout restart`` does; what it did."""
    targets = [obj for obj in ctx.objects_of(*ROLLOUTS)]
    if resource:
        kind, _, name = resource.partition("/")
        targets = [
            obj
            for obj in targets
            if obj["kind"].lower() == kind.lower() and obj["metadata"]["name"] == name
        ]
        if not targets:
            rollouts = ", ".join(
                f"{o['kind']}/{o['metadata']['name']}" for o in ctx.objects_of(*ROLLOUTS)
            )
            raise CheckFailed(
                f"{resource} among the release's rollouts to restart",
                f"not there (the release has: {rollouts or 'no rollout'})",
            )
    if not targets:
        raise CheckFailed(
            "a Deployment, StatefulSet or DaemonSet in the release to restart", "none"
        )
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    apps = client.AppsV1Api(ctx.api)
    methods = {
        "Deployment": apps.patch_namespaced_deployment,
        "StatefulSet": apps.patch_namespaced_stateful_set,
        "DaemonSet": apps.patch_namespaced_daemon_set,
    }
    for obj in targets:
        name = obj["metadata"]["name"]
        call(methods[obj["kind"]], name, ctx.namespace_of(obj), patch, what=f"{obj['kind']}/{name}")
    return "restart of " + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in targets)


def _pods(ctx: AppContext, selector: str | None) -> list[Obj]:
    kwargs = {"label_selector": selector} if selector else {}
    listed = ctx.lister_for(ctx.resolver.by_name("pods"))(namespace=ctx.namespace, **kwargs)
    pods = [p for p in _release_only(listed["items"], selector) if not _deleting(p)]
    return sorted(pods, key=lambda pod: str(pod["metadata"]["name"]))


def _release_only(pods: list[Obj], selector: str | None) -> list[Obj]:
    """Without a selector, the release's pods: not Helm hook or test pods."""
    if selector:
        return pods
    return [
        pod
        for pod in pods
        if "helm.sh/hook" not in ((pod.get("metadata") or {}).get("annotations") or {})
    ]


def _delete(ctx: AppContext, pod: Obj) -> None:
    name = pod["metadata"]["name"]
    call(client.CoreV1Api(ctx.api).delete_namespaced_pod, name, ctx.namespace, what=f"Pod/{name}")


class _Refused(Exception):
    """An eviction refused for now (429: a PodDisruptionBudget allows no disruption yet, or
    the API server is busy; 503): worth asking again."""

    def __init__(self, refusal: ApiException) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def _evict(core: client.CoreV1Api, name: str, namespace: str) -> None:
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
    try:
        core.create_namespaced_pod_eviction(name, namespace, body)
    except ApiException as exc:
        if exc.status == 404:  # gone already
            return
        if exc.status in (429, 503):
            raise _Refused(exc) from exc
        raise api_error(exc, f"evict Pod/{name}") from exc
    except CLIENT_ERRORS as exc:
        raise api_error(exc, f"evict Pod/{name}") from exc


def _evict_all(
    core: client.CoreV1Api, pods: list[Obj], namespace: str, deadline: float
) -> tuple[Obj, ApiException, list[Obj]] | None:
    """Evict ``pods`` one after another; an eviction refused for now is tried again with
    back-off (:func:`~harness.kube.wait.retry_until`) until ``deadline``. ``None`` when
    every pod was evicted (or was gone already), else the pod still refused, the last
    refusal and the pods evicted before."""
    done: list[Obj] = []
    for pod in pods:
        name = pod["metadata"]["name"]
        try:
            retry_until(
                partial(_evict, core, name, namespace),
                timeout=max(deadline - time.monotonic(), 0.0),
                retry_on=_Refused,
            )
        except _Refused as refused:
            return pod, refused.refusal, done
        done.append(pod)
    return None


def _budgets_of(ctx: AppContext, pod: Obj) -> str:
    """The PodDisruptionBudgets selecting ``pod``, each with its status."""
    listed = ctx.lister_for(ctx.resolver.by_name("poddisruptionbudgets"))(namespace=ctx.namespace)
    labels = (pod.get("metadata") or {}).get("labels") or {}
    found = []
    for pdb in listed["items"]:
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        if not _selects(spec.get("selector") or {}, labels):
            continue
        rule = next(
            (f" ({key} {spec[key]})" for key in ("minAvailable", "maxUnavailable") if key in spec),
            "",
        )
        shown = ", ".join(
            f"{key} {status.get(key, '?')}"
            for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")
        )
        found.append(f"PodDisruptionBudget/{pdb['metadata']['name']}{rule}: {shown}")
    return "; ".join(found) or f"no PodDisruptionBudget in namespace {ctx.namespace} selects it"


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects ``labels``; an
    empty one selects every pod, as a PodDisruptionBudget's does."""
    match = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in match.items()):
        return False
    return all(_expression_holds(e, labels) for e in selector.get("matchExpressions") or [])


def _cordon(core: client.CoreV1Api, node: str, unschedulable: bool) -> bool:
    """Set the node's ``spec.unschedulable``; whether it changed anything."""
    current = call(core.read_node, node, what=f"node {node}")
    if bool(current.spec and current.spec.unschedulable) == unschedulable:
        return False
    call(core.patch_node, node, {"spec": {"unschedulable": unschedulable}}, what=f"node {node}")
    return True


def _node_of(pods: list[Obj]) -> str:
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            return str(node)
    raise CheckFailed("a pod on a node, to drain that node", "no matching pod is scheduled")


def _owned_by_daemonset(pod: Obj) -> bool:
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(owner.get("kind") == "DaemonSet" for owner in owners)


def _no_controller(pods: list[Obj]) -> str:
    bare = [p["metadata"]["name"] for p in pods if not p["metadata"].get("ownerReferences")]
    if not bare:
        return ""
    return f"no controller recreates Pod/{', Pod/'.join(bare)}: a bare pod is gone for good"


def _is_ready(pod: Obj) -> bool:
    try:
        return pod_ready(pod) and condition_is(pod, "Ready")
    except Unrecoverable:  # a Failed pod
        return False


def _deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _matching(selector: str | None) -> str:
    return f"matching {selector!r}" if selector else "of the release"


def _named(pods: list[Obj], verb: str) -> str:
    names = [p["metadata"]["name"] for p in pods]
    return f"{len(names)} pod{'s' if len(names) != 1 else ''} {verb} (Pod/{', Pod/'.join(names)})"
