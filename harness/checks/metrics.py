"""``metrics``: budgets on the app's CPU and memory, judged on a metric snapshot taken when
the check runs (:func:`harness.report.snapshots.snapshot`, kept on ``ctx.metrics``)::

    - metrics: {memory: "<= 256Mi", cpu: "<= 500m"}       # the app's total over its pods
    - metrics: {memory: "< 64Mi", perContainer: true}     # each container on its own

A budget is a comparison (``<=``, ``<``, ``>=``, ``>``, ``==``; none means ``<=``) and a
Kubernetes quantity: CPU in cores or millicores (``0.5``, ``500m``), memory in bytes with
an optional suffix (``256Mi``, ``1Gi``, ``512k``, ``1G``). A bare number is cores for
``cpu`` and bytes for ``memory``. Figures are the snapshot's (``--metrics-source``: the
kubelet's, CPU averaged since the container started or over two reads, else
metrics-server's, averaged over its last window; memory the working set), so ``==``
rarely holds for CPU. With ``perContainer:
true`` each container that has figures (init containers that have finished have none) is
held to the budget instead of the sum.

The snapshot waits for figures of freshly started pods up to the check's ``timeout``
(default :data:`harness.report.snapshots.METRICS_WAIT`). The check fails, naming the reason, when
no source has figures (the kubelet cannot be read and the cluster does not serve
metrics.k8s.io) or a running pod still has none: an
unjudged budget is not a pass. A failure names the figure, the budget and the biggest
consumers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError
from harness.report.snapshots import (
    METRICS_WAIT,
    cpu_millicores,
    format_cpu,
    format_memory,
    memory_bytes,
    snapshot,
)
from harness.suite.model import Check

KEYS = ("cpu", "memory", "perContainer")
SHOWN = 5  # consumers listed in a failure
_BUDGET = re.compile(r"^\s*(<=|>=|==|<|>)?\s*(\S.*?)\s*$")
_COMPARE = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "==": lambda a, b: a == b,
}


@dataclass(frozen=True)
class Budget:
    figure: str  # "cpu" or "memory"
    op: str
    limit: float  # millicores or bytes
    text: str  # as written

    def holds(self, value: float) -> bool:
        return bool(_COMPARE[self.op](value, self.limit))

    def show(self, value: float) -> str:
        return format_cpu(value) if self.figure == "cpu" else format_memory(value)

    def __str__(self) -> str:
        return f"{self.figure} {self.op} {self.show(self.limit)}"


def run(ctx: AppContext, check: Check) -> None:
    budgets, per_container = parse(check.spec)
    document = snapshot(ctx, wait=ctx.timeout_for(check, default=METRICS_WAIT))
    scope = "per container" if per_container else "for the app's pods together"
    expected = " and ".join(str(b) for b in budgets) + f" {scope}"
    if document["reason"]:
        raise CheckFailed(expected, document["reason"])
    observed: list[str] = []
    details: list[str] = []
    for budget in budgets:
        figures = _consumers(document, budget.figure)
        verdict = _judge(budget, figures, per_container, document["totals"]["pods"])
        if verdict is not None:
            observed.append(verdict[0])
            details += verdict[1]
    if observed:
        details.append(f"snapshot taken {document['taken_at']} ({document['source']})")
        raise CheckFailed(expected, "; ".join(observed), details="\n".join(details))


def _judge(
    budget: Budget, figures: list[tuple[str, float]], per_container: bool, pods: int
) -> tuple[str, list[str]] | None:
    """None when ``figures`` (consumer, value; biggest first) keep the budget, else what was
    observed and the lines listing the consumers."""
    if per_container:
        over = [(who, value) for who, value in figures if not budget.holds(value)]
        if not over:
            return None
        count = f"{len(over)} container{'s' if len(over) != 1 else ''}"
        return (
            f"{budget.figure} outside the budget in {count} "
            f"(highest {budget.show(over[0][1])}, {over[0][0]})",
            _listing(budget, over, "outside the budget"),
        )
    total = sum(value for _, value in figures)
    if budget.holds(total):
        return None
    return (
        f"{budget.figure} {budget.show(total)} in total over {pods} pod{'s' if pods != 1 else ''}",
        _listing(budget, figures, "biggest consumers"),
    )


def parse(spec: dict[str, Any]) -> tuple[list[Budget], bool]:
    """The budgets of a ``metrics`` check and whether they apply per container."""
    unknown = set(spec) - set(KEYS)
    if unknown:
        raise UsageError(
            f"metrics: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(KEYS)})"
        )
    per_container = spec.get("perContainer", False)
    if not isinstance(per_container, bool):
        raise UsageError(f"metrics.perContainer must be true or false, not {per_container!r}")
    budgets = [parse_budget(key, spec[key]) for key in ("cpu", "memory") if key in spec]
    if not budgets:
        raise UsageError('metrics: give a cpu and/or memory budget, e.g. memory: "<= 256Mi"')
    return budgets, per_container


def parse_budget(figure: str, text: object) -> Budget:
    """``"<= 500m"`` for ``cpu`` -> Budget("cpu", "<=", 500.0); UsageError naming the key."""
    example = '"<= 500m"' if figure == "cpu" else '"<= 256Mi"'
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise UsageError(f"metrics.{figure}: write a budget such as {example}, not {text!r}")
    match = _BUDGET.match(str(text))
    if match is None:
        raise UsageError(f"metrics.{figure}: write a budget such as {example}, not {text!r}")
    op, quantity = match.group(1) or "<=", match.group(2)
    try:
        limit = cpu_millicores(quantity) if figure == "cpu" else float(memory_bytes(quantity))
    except UsageError as exc:
        raise UsageError(
            f"metrics.{figure}: {exc}; write a budget such as {example} "
            "(<=, <, >=, > or == and a quantity)"
        ) from exc
    return Budget(figure, op, limit, str(text))


def _consumers(document: dict[str, Any], figure: str) -> list[tuple[str, float]]:
    """(``pod/NAME container NAME``, millicores or bytes) of every container that has the
    figure, biggest first."""
    key = "cpu_millicores" if figure == "cpu" else "memory_bytes"
    found = [
        (f"pod/{pod['name']} container {container['name']}", float(container[key]))
        for pod in document["pods"]
        for container in pod["containers"]
        if container[key] is not None
    ]
    return sorted(found, key=lambda item: item[1], reverse=True)


def _listing(budget: Budget, figures: list[tuple[str, float]], title: str) -> list[str]:
    lines = [f"{budget.figure} ({title}):"]
    lines += [f"  {who}: {budget.show(value)}" for who, value in figures[:SHOWN]]
    if len(figures) > SHOWN:
        lines.append(f"  +{len(figures) - SHOWN} more")
    return lines
