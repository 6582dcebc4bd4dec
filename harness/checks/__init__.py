"""Health checks: the one registry of check kinds, and one module per kind, named as the
kind (``ready``, ``wait``, ``helm_test`` for ``helmTest``, ``no_restarts`` for
``noRestarts``, ...). Each module exposes ``run(ctx, check)``, which returns when the app is
healthy and raises :class:`~harness.errors.CheckFailed` (or ``WaitTimeout``) with what was
expected and what was observed.

The suite loader, the schema test and the docs read :data:`KINDS`; this module imports
nothing heavy, so the suite layer can use it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.checks.context import AppContext
    from harness.suite.model import Check

CheckFn = Callable[["AppContext", "Check"], None]


@dataclass(frozen=True)
class CheckKind:
    """A check kind as suite files write it, the module implementing it, and the key of its
    mapping that names its item (``http[/healthz]``), if any."""

    name: str
    module: str
    param: str | None = None
    default: str = ""  # the param's value when the check does not give it
    # Or: the check's mapping gives one of these keys, which names its item (disrupt[restart])
    choices: tuple[str, ...] = ()
    # May run in a thread ahead of its item (plugin/prefetch.py): it looks at the app's own
    # objects only. Not the user's Python, which may expect pytest's main thread.
    ahead: bool = True
    # Or: a function of the check's mapping names its item (assert[Widget/small])
    param_of: Callable[[Mapping[str, Any]], str] | None = None

    def item_param(self, spec: Mapping[str, Any]) -> str:
        if self.param_of is not None:
            return self.param_of(spec)
        if self.choices:
            return next((key for key in self.choices if key in spec), "")
        return str(spec.get(self.param, self.default)) if self.param else ""


def _object_param(spec: Mapping[str, Any]) -> str:
    """``Kind/name`` of an assert or error check's object, template text and the ``-`` or
    ``.`` next to it left out (``{{ .Release.Name }}-small``: ``small``; ``a.{{ x }}.b``:
    ``a.b``); ``Kind`` alone when it gives no name."""
    obj = spec.get("object")
    if not isinstance(obj, Mapping):
        return ""
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if isinstance(name, str):
        name = re.sub(r"([-.])[-.]+", r"\1", re.sub(r"\{\{.*?\}\}", "", name)).strip("-.")
    else:
        name = ""
    kind = str(obj.get("kind", ""))
    return f"{kind}/{name}" if name else kind


KINDS: dict[str, CheckKind] = {
    kind.name: kind
    for kind in (
        CheckKind("ready", "ready"),
        CheckKind("wait", "wait", param="resource"),
        CheckKind("http", "http", param="path", default="/"),
        CheckKind("logs", "logs", param="selector"),
        CheckKind("helmTest", "helm_test"),
        CheckKind("noRestarts", "no_restarts"),
        CheckKind("events", "events"),
        CheckKind("metrics", "metrics"),
        CheckKind("rbac", "rbac", param="serviceAccount"),
        CheckKind("security", "security"),
        CheckKind("podSecurity", "pod_security", param="level"),
        # it disrupts the app: never while other checks of the app run
        CheckKind("disrupt", "disrupt", choices=("deletePods", "restart", "drain"), ahead=False),
        CheckKind("python", "python", param="call", ahead=False),
        # it changes the app: in its turn, never ahead
        CheckKind("apply", "apply", param="file", ahead=False),
        CheckKind("assert", "assertion", param_of=_object_param),
        CheckKind("error", "error", param_of=_object_param),
    )
}
CHECK_KINDS = tuple(KINDS)


def check_function(kind: str) -> CheckFn:
    """The ``run`` function of check kind ``kind`` (its module imported on first use)."""
    known = KINDS.get(kind)
    if known is None:
        raise UsageError(f"unknown check {kind!r} (known: {', '.join(CHECK_KINDS)})")
    module = importlib.import_module(f"harness.checks.{known.module}")
    run: CheckFn = module.run
    return run


def run_check(ctx: AppContext, check: Check) -> None:
    """Run ``check`` alone; its item runs it with its ``catch`` and ``finally`` steps
    (:func:`harness.checks.steps.run_with_steps`)."""
    check_function(check.kind)(ctx, check)


__all__ = ["CHECK_KINDS", "KINDS", "CheckFn", "CheckKind", "check_function", "run_check"]
