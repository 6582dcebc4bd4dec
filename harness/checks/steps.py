"""A check's ``catch`` and ``finally`` steps, around the check wherever it runs (in its item
or ahead of it: :func:`harness.plugin.prefetch.run_and_time`).

``catch`` runs when the check fails (not when it is skipped or the run stops) and collects
evidence: ``events`` (the events whose involvedObject is an object), ``podLogs`` (logs of the
app's pods that a selector matches) and ``get`` (an object as YAML, without managedFields).
What each step collected is kept on the app's context (:attr:`AppContext.caught`) until the
item writes the failure's evidence bundle, where each step becomes a file of its own
(``catch/<item name>/<n>-<step>.yaml``, listed in ``index.txt``). A step that cannot
collect says why in its file: it never hides the check's own failure.

``finally`` runs after the check (and its catch), whether it passed or failed: ``delete``
removes an object and waits (up to :data:`DELETE_TIMEOUT`) until it is gone; ``apply``
applies manifests as an ``apply`` check does (:mod:`harness.checks.apply`). A failing
step fails a passing check with its cause; on a failing check it is noted in the evidence
(``catch/<item name>/finally.txt``) and the check's own failure is what is reported.

Resources are ``KIND/NAME`` (``KIND.GROUP/NAME``) in the app's namespace, resolved as
``wait`` resolves them; ``{{ .Release.Name }}`` and ``{{ .Release.Namespace }}`` are put in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.errors import CheckFailed, HarnessError, Stopped
from harness.kube.client import CLIENT_ERRORS, api_error, api_errors
from harness.kube.resources import ResourceType, lister
from harness.kube.wait import wait_for
from harness.suite import templating

if TYPE_CHECKING:
    from harness.checks.context import AppContext
    from harness.suite.model import Check, Step

log = logging.getLogger("harness.checks.steps")
DELETE_TIMEOUT = 60.0  # seconds a finally `delete` waits for its object to go
DEFAULT_TAIL = 200  # lines of each container's log that podLogs keeps


@dataclass(frozen=True)
class Caught:
    """One file of a failed check's evidence: its name in the check's folder, what it
    holds (for the bundle's index) and its text."""

    name: str
    what: str
    text: str


def run_with_steps(ctx: AppContext, check: Check, run: Callable[[], None] | None = None) -> None:
    """``run()`` (default: the check itself), then its catch steps if it failed, then its
    finally steps."""
    if run is None:
        from harness.checks import run_check

        run = partial(run_check, ctx, check)
    if not check.catch and not check.cleanup:
        run()
        return
    ctx.caught.pop(check.id, None)
    try:
        run()
    except (Stopped, KeyboardInterrupt):
        raise  # the run is ending: its namespace goes with everything in it
    except Exception:
        caught = [collect(ctx, check, index, step) for index, step in enumerate(check.catch, 1)]
        problems = clean_up(ctx, check)
        if problems:
            caught.append(Caught("finally.txt", "finally steps that failed", "\n".join(problems)))
        ctx.caught[check.id] = caught
        raise
    except BaseException:  # pytest's skip: clean up all the same, the skip stands
        for problem in clean_up(ctx, check):
            log.warning("%s::%s: %s", ctx.app.name, check.id, problem)
        raise
    problems = clean_up(ctx, check)
    if problems:
        raise CheckFailed(
            "its finally steps to succeed",
            f"{len(problems)} failed",
            details="\n".join(f"  {problem}" for problem in problems),
        )


# --- catch -------------------------------------------------------------------------------


def collect(ctx: AppContext, check: Check, index: int, step: Step) -> Caught:
    """The evidence of one catch step; a step that fails says why in its text."""
    spec = {key: _render(ctx, value) for key, value in step.spec.items()}
    target = spec.get("resource") or spec.get("selector", "")
    what = f"catch step {index} of {check.id}: {step.kind} {target}"
    suffix = ".log" if step.kind == "podLogs" else ".yaml"
    name = f"{index}-{step.kind}{suffix}"
    try:
        text = _COLLECTORS[step.kind](ctx, spec)
    except (Stopped, KeyboardInterrupt):
        raise
    except Exception as exc:
        reason = _reason(exc)
        return Caught(name, f"{what} (failed: {reason})", f"# could not collect: {reason}\n")
    return Caught(name, what, text)


def _events(ctx: AppContext, spec: dict[str, Any]) -> str:
    from harness.report.evidence import event_rows

    rtype, name, namespace = _target(ctx, spec["resource"])
    selector = f"involvedObject.name={name},involvedObject.kind={rtype.kind}"
    core = client.CoreV1Api(ctx.api)
    with api_errors(f"events of {spec['resource']}"):
        events = core.list_namespaced_event(namespace or "default", field_selector=selector).items
    if not events:
        return f"# no events about {rtype.kind}/{name}\n"
    return event_rows(events)


def _get(ctx: AppContext, spec: dict[str, Any]) -> str:
    from harness.report.evidence import redact_object

    rtype, name, namespace = _target(ctx, spec["resource"])
    with api_errors(f"get {spec['resource']}"):
        found = lister(ctx.api, rtype)(namespace=namespace, field_selector=f"metadata.name={name}")[
            "items"
        ]
    if not found:
        where = f" in namespace {namespace}" if namespace else ""
        return f"# {rtype.kind}/{name} not found{where}\n"
    obj = {"apiVersion": rtype.api_version, "kind": rtype.kind, **found[0]}
    return yaml.safe_dump(redact_object(obj), sort_keys=False)


def _pod_logs(ctx: AppContext, spec: dict[str, Any]) -> str:
    core = client.CoreV1Api(ctx.api)
    with api_errors(f"pods {spec['selector']}"):
        pods = core.list_namespaced_pod(ctx.namespace, label_selector=spec["selector"]).items
    if not pods:
        return f"# no pod in namespace {ctx.namespace} matches {spec['selector']}\n"
    wanted = spec.get("container")
    tail = int(spec.get("tail", DEFAULT_TAIL))
    parts = []
    for pod in pods:
        pod_name = str(pod.metadata.name) if pod.metadata else ""
        for container in [c.name for c in (pod.spec.containers if pod.spec else None) or []]:
            if wanted and container != wanted:
                continue
            header = f"==> pod {pod_name}, container {container} (last {tail} lines) <=="
            try:
                text = core.read_namespaced_pod_log(
                    pod_name,
                    ctx.namespace,
                    container=container,
                    tail_lines=tail,
                    _request_timeout=10,
                )
            except CLIENT_ERRORS as exc:
                why = _reason(api_error(exc))
                if ctx.simulated:
                    why = f"kwok simulates this pod: it has no logs ({why})"
                text = f"# no logs: {why}"
            parts.append(f"{header}\n{text.rstrip() or '# no output'}\n")
    if not parts:
        return f"# no container {wanted!r} in the pods that match {spec['selector']}\n"
    return "\n".join(parts)


_COLLECTORS: dict[str, Callable[[AppContext, dict[str, Any]], str]] = {
    "events": _events,
    "get": _get,
    "podLogs": _pod_logs,
}


# --- finally -----------------------------------------------------------------------------


def clean_up(ctx: AppContext, check: Check) -> list[str]:
    """Run every finally step in order (a failing one does not stop the next); what failed."""
    problems = []
    for index, step in enumerate(check.cleanup, 1):
        if step.kind == "apply":
            shown = f"apply {step.spec.get('file') or 'manifest'}"
        else:
            shown = f"delete {_render(ctx, step.spec['resource'])}"
        try:
            _FINALLY[step.kind](ctx, step.spec)
        except (Stopped, KeyboardInterrupt):
            raise
        except Exception as exc:
            problems.append(f"finally step {index} ({shown}): {_reason(exc)}")
    return problems


def _apply(ctx: AppContext, spec: dict[str, Any]) -> None:
    """As an ``apply`` check (its file was read when the suite loaded)."""
    from harness.checks.apply import apply_objects, documents

    apply_objects(ctx, documents(ctx, str(spec["manifest"])))


def _delete(ctx: AppContext, spec: dict[str, Any]) -> None:
    from harness.kube.apply import delete

    ref = _render(ctx, spec["resource"])
    rtype, name, namespace = _target(ctx, ref)
    if not delete(ctx.api, rtype, name, namespace):
        return  # gone already
    wait_for(
        lister(ctx.api, rtype),
        lambda objects: not objects,
        expected=f"{ref} to be deleted",
        timeout=DELETE_TIMEOUT,
        kind=rtype.kind,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )


_FINALLY: dict[str, Callable[[AppContext, dict[str, Any]], None]] = {
    "apply": _apply,
    "delete": _delete,
}


# --- shared ------------------------------------------------------------------------------


def _render(ctx: AppContext, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return templating.render(value, ctx.release, ctx.namespace)


def _target(ctx: AppContext, ref: str) -> tuple[ResourceType, str, str | None]:
    """A rendered ``KIND/NAME``: its type, name and namespace (None: cluster-scoped)."""
    kind, _, name = ref.partition("/")
    rtype = ctx.resolver.by_name(kind)
    return rtype, name, ctx.namespace if rtype.namespaced else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        exc = api_error(exc)
    text = str(exc).strip() if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


__all__ = ["DELETE_TIMEOUT", "Caught", "clean_up", "collect", "run_with_steps"]
