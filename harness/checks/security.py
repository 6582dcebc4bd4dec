"""``security``: the pod specs the release renders follow a security baseline.

Read from what Helm rendered (``ctx.manifest`` and ``ctx.hooks``), not from the cluster:
Pods, and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets,
ReplicationControllers, Jobs and CronJobs (``jobTemplate``). Init containers count.
Only the keys given are checked:

- ``runAsNonRoot: true``: the container's effective ``runAsUser`` (its own, else the pod's)
  is not 0, and either the effective ``runAsNonRoot`` is true or that ``runAsUser`` is set.
  Neither set counts as running as root (the image's user is unknown).
- ``privileged: false``: no container has ``privileged: true``.
- ``readOnlyRootFilesystem: true``: every container sets it to true.
- ``allowPrivilegeEscalation: false``: every container sets it to false (unset means true).
- ``resources: required``: every container has cpu and memory requests and a memory limit.
  A limit without a request counts as the request, as the API server defaults it so.

The opposite values (``runAsNonRoot: false``, ``privileged: true``...) ask for nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError
from harness.kube.wait import Obj
from harness.suite.model import Check

# where each kind keeps its pod spec
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# the value of each key that asks for the rule; the other value asks for nothing
RULE_KEYS: dict[str, object] = {
    "runAsNonRoot": True,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "resources": "required",
}

Rule = Callable[[Obj, Obj], str | None]  # (container, pod spec) -> problem or None


@dataclass(frozen=True)
class Workload:
    label: str  # "Deployment/web", "Pod/web-test (hook)"
    pod_spec: Obj


def parse_rules(spec: dict[str, Any]) -> list[Rule]:
    unknown = set(spec) - set(RULE_KEYS)
    if unknown:
        raise UsageError(
            f"security: unknown key(s) {', '.join(sorted(unknown))} "
            f"(allowed: {', '.join(RULE_KEYS)})"
        )
    if not spec:
        raise UsageError(f"security needs at least one of: {', '.join(RULE_KEYS)}")
    rules: list[Rule] = []
    for key, value in spec.items():
        if key == "resources":
            if value not in ("required", "optional", None, False):
                raise UsageError(f"security.resources must be 'required', not {value!r}")
        elif not isinstance(value, bool):
            raise UsageError(f"security.{key} must be true or false, not {value!r}")
        if value == RULE_KEYS[key]:
            rules.append(RULES[key])
    return rules


def run(ctx: AppContext, check: Check) -> None:
    rules = parse_rules(check.spec)
    found = problems(workloads(ctx.manifest, ctx.hooks), rules)
    if found:
        asked = ", ".join(f"{key}: {_yaml(value)}" for key, value in check.spec.items())
        count = len(found)
        raise CheckFailed(
            f"every container the release renders to meet {{{asked}}}",
            f"{count} problem{'s' if count != 1 else ''}",
            details="\n".join(f"  {line}" for line in found),
        )


def workloads(manifest: list[Obj], hooks: list[Obj] | None = None) -> list[Workload]:
    """Every pod spec among the rendered objects, with a label naming its owner."""
    found = []
    for objects, suffix in ((manifest, ""), (hooks or [], " (hook)")):
        for obj in objects:
            path = POD_SPEC_PATHS.get(str(obj.get("kind")))
            if path is None:
                continue
            pod_spec: Any = obj
            for step in path:
                pod_spec = (pod_spec or {}).get(step)
            label = f"{obj['kind']}/{(obj.get('metadata') or {}).get('name')}{suffix}"
            found.append(Workload(label, pod_spec or {}))
    return found


def problems(found: list[Workload], rules: list[Rule]) -> list[str]:
    """``Kind/name container NAME: problem`` for every rule a container breaks."""
    lines = []
    for workload in found:
        for what, container in _containers(workload.pod_spec):
            for rule in rules:
                problem = rule(container, workload.pod_spec)
                if problem:
                    lines.append(f"{workload.label} {what} {container.get('name')}: {problem}")
    return lines


def _containers(pod_spec: Obj) -> Iterator[tuple[str, Obj]]:
    for container in pod_spec.get("initContainers") or []:
        yield "init container", container
    for container in pod_spec.get("containers") or []:
        yield "container", container


def _context(obj: Obj) -> Obj:
    return obj.get("securityContext") or {}


def _run_as_non_root(container: Obj, pod_spec: Obj) -> str | None:
    own, pod = _context(container), _context(pod_spec)
    user = own.get("runAsUser", pod.get("runAsUser"))
    non_root = own.get("runAsNonRoot", pod.get("runAsNonRoot"))
    if user == 0:
        return "runs as root (runAsUser: 0)"
    if non_root is True or user is not None:
        return None
    return "may run as root (neither runAsNonRoot: true nor a non-zero runAsUser)"


def _not_privileged(container: Obj, pod_spec: Obj) -> str | None:
    return "privileged: true" if _context(container).get("privileged") is True else None


def _read_only_root(container: Obj, pod_spec: Obj) -> str | None:
    value = _context(container).get("readOnlyRootFilesystem")
    return None if value is True else f"readOnlyRootFilesystem is {_yaml(value)}, not true"


def _no_escalation(container: Obj, pod_spec: Obj) -> str | None:
    value = _context(container).get("allowPrivilegeEscalation")
    if value is False:
        return None
    return f"allowPrivilegeEscalation is {_yaml(value)}" + (
        " (defaults to true)" if value is None else ""
    )


def _resources_set(container: Obj, pod_spec: Obj) -> str | None:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    missing = [
        f"no {name} request"
        for name in ("cpu", "memory")
        if name not in requests and name not in limits
    ]
    if "memory" not in limits:
        missing.append("no memory limit")
    return ", ".join(missing) or None


RULES: dict[str, Rule] = {
    "runAsNonRoot": _run_as_non_root,
    "privileged": _not_privileged,
    "readOnlyRootFilesystem": _read_only_root,
    "allowPrivilegeEscalation": _no_escalation,
    "resources": _resources_set,
}


def _yaml(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
