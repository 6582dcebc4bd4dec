"""Helpers shared by the check tests. The fixtures they use (``install_app``, ``namespace``)
and ``tiny_chart`` come from ``tests/conftest.py``; the session's kwok cluster from the
plugin's ``harness_cluster``."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.checks import run_check
from harness.checks.context import AppContext
from harness.errors import CheckFailed
from harness.suite.model import Check, SuiteError, load_suite
from tests.conftest import FIXTURE_CHARTS

# ``tests/charts/guarded``: a hardened Deployment with a least-privilege ServiceAccount, and
# values that break it (a crash loop, a Role granting too much, a privileged container).
GUARDED = Path(__file__).resolve().parent.parent / "charts" / "guarded"
READY = Check(kind="ready", spec={})
# The labels of the ``web`` fixture chart's pods.
LABELS = {"app.kubernetes.io/name": "web"}


def check(kind: str, **spec: Any) -> Check:
    return Check(kind=kind, spec=spec)


def failure(ctx: AppContext, kind: str, **spec: Any) -> str:
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, check(kind, **spec))
    return str(info.value)


def suite_with(folder: Path, checks: str) -> Path:
    """A suite file of one app (the web chart) with these checks (YAML list items, unindented)."""
    path = folder / "d.suite.yaml"
    path.write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        f"  - name: web\n    chart: {FIXTURE_CHARTS / 'web'}\n    checks:\n"
        + textwrap.indent(textwrap.dedent(checks), "      ")
    )
    return path


def suite_error(folder: Path, checks: str) -> str:
    """The loader's error for a suite with these checks, the file's path left out."""
    path = suite_with(folder, checks)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    return str(info.value).removeprefix(str(path))
