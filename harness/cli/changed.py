"""``helm-harness changed``, and the ``--changed-since REF`` option of ``helm-harness run``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import UsageError
from harness.suite.changed import Changes, find_changes

RUN_OPTION = "--changed-since"


class NothingToRun(Exception):
    """No suite among a run's paths uses what changed: the message says so."""


def changed(args: argparse.Namespace) -> int:
    """Print what changed and the suites to run for it, as text or JSON; exit 0 either way."""
    changes = find_changes(
        Path.cwd(),
        since=args.since,
        target_branch=args.target_branch,
        suites=[args.suites],
        exclude=args.exclude,
    )
    if args.format == "json":
        print(json.dumps(changes.as_json(), indent=2))
    else:
        print(as_text(changes))
    return 0


def as_text(changes: Changes) -> str:
    lines = [f"base: {changes.base} ({_base_origin(changes)})"]
    if not changes.charts:
        lines.append("changed charts: none")
    else:
        lines.append("changed charts:")
        for chart in changes.charts:
            moved = f" (from {chart.previous})" if chart.previous else ""
            lines.append(f"  {chart.change:9} {chart.path}{moved}")
    if not changes.suites:
        lines.append("suites to run: none")
    else:
        lines.append("suites to run:")
        lines.extend(f"  {path}" for path in changes.suites)
    if changes.errors:
        lines.append("suites that do not load (they run, so that the run reports them):")
        lines.extend(f"  {error}" for error in changes.errors)
    return "\n".join(lines)


def _base_origin(changes: Changes) -> str:
    if not changes.merge_base:
        return f"{changes.ref}, a tree"
    return f"the merge base of HEAD and {changes.ref}"


def take_run_option(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """(REF of ``--changed-since REF`` or ``--changed-since=REF``, the other args)."""
    since: str | None = None
    rest: list[str] = []
    waiting = False
    for arg in args:
        if waiting:
            since, waiting = arg, False
        elif arg == RUN_OPTION:
            waiting = True
        elif arg.startswith(f"{RUN_OPTION}="):
            since = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if waiting or since == "":
        raise UsageError(f"{RUN_OPTION} needs a value: a git ref, e.g. origin/main")
    return since, rest


def changed_only(args: Sequence[str], paths: Sequence[str], since: str) -> list[str]:
    """``args`` with each of its ``paths`` narrowed to the suites that use what changed since
    ``since``: a folder becomes the selected suite files in it, a file stays if selected.
    :class:`NothingToRun` when none is."""
    changes = find_changes(
        Path.cwd(), since=since, suites=[_file_of(path) for path in paths], option=RUN_OPTION
    )
    selected = {path.resolve(): path for path in changes.suites}
    narrowed: list[str] = []
    kept = 0
    for arg in args:
        if arg not in paths:
            narrowed.append(arg)
            continue
        where = _file_of(arg).resolve()
        if where.is_dir():
            picks = [str(path) for real, path in selected.items() if real.is_relative_to(where)]
        else:
            picks = [arg] if where in selected else []
        narrowed.extend(picks)
        kept += len(picks)
    if not kept:
        raise NothingToRun(f"no suite uses a changed chart since {since}: nothing to run")
    charts = ", ".join(f"{chart.path} ({chart.change})" for chart in changes.charts) or "none"
    print(
        f"helm-harness: changed since {since} (base {changes.base[:12]}): charts {charts}; "
        f"suites selected: {len(changes.suites)}",
        file=sys.stderr,
    )
    return narrowed


def _file_of(arg: str) -> Path:
    """The path of a pytest argument (``file::node`` included)."""
    return Path(arg.split("::")[0])
