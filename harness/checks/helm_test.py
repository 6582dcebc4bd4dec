"""``helmTest``: ``helm test`` on the release; a failure carries Helm's reason and the
test pods' states."""

from __future__ import annotations

import pytest

from harness.checks.context import AppContext
from harness.errors import CheckFailed, HelmError
from harness.kube.readiness import container_states
from harness.suite.model import Check

TEST_HOOKS = {"test", "test-success"}


def test_hooks(ctx: AppContext) -> list[str]:
    names = []
    for hook in ctx.hooks:
        kinds = str((hook.get("metadata", {}).get("annotations") or {}).get("helm.sh/hook", ""))
        if TEST_HOOKS & {part.strip() for part in kinds.split(",")}:
            names.append(hook["metadata"]["name"])
    return names


def run(ctx: AppContext, check: Check) -> None:
    hooks = test_hooks(ctx)
    if not hooks:
        if check.spec.get("required"):
            raise CheckFailed("the chart to have helm test hooks", "none in the release")
        pytest.skip(f"chart {ctx.app.source.chart} has no helm test hooks")
    timeout = ctx.timeout_for(check, default=ctx.app.timeout)
    try:
        ctx.helm.test(ctx.release, namespace=ctx.namespace, timeout=f"{int(timeout)}s")
    except HelmError as exc:
        pods = ctx.lister_for(ctx.resolver.by_name("pods"))(namespace=ctx.namespace)["items"]
        states = [
            f"  pod/{p['metadata']['name']}: {container_states(p)}"
            for p in pods
            if p["metadata"]["name"] in hooks
        ]
        raise CheckFailed(
            f"helm test of {ctx.release} to pass ({', '.join(hooks)})",
            exc.reason,
            details="test pods:\n" + "\n".join(states) if states else "",
        ) from exc
