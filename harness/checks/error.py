"""``error``: the opposite of ``assert`` (chainsaw's and kuttl's error files): passes as
soon as no object matches the partial object (at once when none exists), and fails when
one still matches at the end of the check's timeout (default 60s), showing it. The object
is found, and matched, as :mod:`harness.checks.assertion` does."""

from __future__ import annotations

from harness.checks.assertion import follow, object_name, observed_object, shown, target_of
from harness.checks.context import AppContext
from harness.errors import CheckFailed
from harness.kube import match
from harness.suite.model import Check


def run(ctx: AppContext, check: Check) -> None:
    target = target_of(ctx, check)
    expected = target.expected
    left = follow(
        ctx, check, target, lambda objs: not any(match.matches(expected, o) for o in objs)
    )
    if left is None:
        return
    matching = [obj for obj in left if match.matches(expected, obj)]
    more = f" (and {len(matching) - 1} more)" if len(matching) > 1 else ""
    raise CheckFailed(
        f"no {target} matching within {ctx.timeout_for(check):g}s",
        f"{object_name(matching[0])}{more} still matches",
        details=shown("the partial object it must not match", expected)
        + "\n"
        + shown("the matching object", observed_object(target, matching[0])),
    )


__all__ = ["run"]
