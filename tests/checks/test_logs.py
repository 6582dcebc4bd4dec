"""The logs check against the real kwok API server. kwok runs no containers, so the tests
point the pods' logs at a local file (harness.clusters.kwok_sim): the check then reads the
API server's log subresource exactly as it does on kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.checks import run_check
from harness.clusters.kwok_sim import set_pod_logs, write_cri_log
from harness.errors import CheckFailed
from harness.suite.model import Check
from tests.checks.conftest import LABELS

SELECTOR = "app.kubernetes.io/name=web"


def test_logs_contains_and_absent(install_app: Any, tmp_path: Path) -> None:
    ctx = install_app("web")
    run_check(ctx, Check(kind="ready", spec={}))
    log = write_cri_log(tmp_path / "web.log", ["starting", "listening on :8080"])
    set_pod_logs(ctx.api, ctx.namespace, LABELS, "web", log)
    run_check(
        ctx,
        Check(
            kind="logs", spec={"selector": SELECTOR, "contains": ["listening"], "absent": ["panic"]}
        ),
    )

    write_cri_log(log, ["panic: runtime error: index out of range"], append=True)
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="logs", spec={"absent": ["panic"]}))
    assert "to log none of ['panic']" in str(info.value)
    assert "panic: runtime error: index out of range" in str(info.value)

    with pytest.raises(
        CheckFailed, match=r"to log \['ready to serve'\] within 1s.*no 'ready to serve'"
    ):
        run_check(ctx, Check(kind="logs", spec={"contains": ["ready to serve"]}, timeout=1))


def test_logs_on_kwok_without_a_log_file_are_skipped_with_the_reason(install_app: Any) -> None:
    ctx = install_app("web")
    run_check(ctx, Check(kind="ready", spec={}))
    with pytest.raises(pytest.skip.Exception, match="kwok simulates pods: no logs are configured"):
        run_check(ctx, Check(kind="logs", spec={"contains": ["listening"]}))
