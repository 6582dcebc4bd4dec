"""Health checks: one module per check family, each exposing ``run(ctx, check)`` which
returns when the app is healthy and raises :class:`~harness.errors.CheckFailed` (or
``WaitTimeout``) with what was expected and what was observed."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from harness.checks.context import AppContext
from harness.errors import UsageError
from harness.suite.model import Check

CheckFn = Callable[[AppContext, Check], None]

# check kind -> module in this package implementing it
MODULES = {
    "ready": "ready",
    "wait": "wait",
    "helmTest": "helm_test",
    "http": "http",
    "logs": "logs",
    "noRestarts": "no_restarts",
    "events": "events",
    "rbac": "rbac",
    "security": "security",
    "python": "python",
    "metrics": "metrics",
}


def check_function(kind: str) -> CheckFn:
    module_name = MODULES.get(kind)
    if module_name is None:
        raise UsageError(f"unknown check {kind!r}")
    try:
        module = importlib.import_module(f"harness.checks.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"harness.checks.{module_name}":
            raise UsageError(f"the {kind!r} check is not available in this version") from exc
        raise
    run: CheckFn = module.run
    return run


def run_check(ctx: AppContext, check: Check) -> None:
    check_function(check.kind)(ctx, check)


__all__ = ["AppContext", "CheckFn", "check_function", "run_check"]
