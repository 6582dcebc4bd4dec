"""The helmTest check against the real kwok API server: a chart's test hooks pass or fail,
and a chart without any is skipped unless they are required."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import run_check
from harness.errors import CheckFailed
from harness.suite.model import Check
from tests.conftest import tiny_chart


def test_helm_test_passes_and_fails(install_app: Any) -> None:
    good = install_app("web", name="good")
    run_check(good, Check(kind="helmTest", spec={}))
    bad = install_app("web", name="bad", set_values={"simulate.test": "fail"})
    with pytest.raises(CheckFailed) as info:
        run_check(bad, Check(kind="helmTest", spec={}))
    assert "helm test of bad to pass (bad-web-test)" in str(info.value)
    assert "pod/bad-web-test: check: terminated Error exit 1" in str(info.value)


def test_helm_test_is_skipped_when_the_chart_has_no_tests(install_app: Any, tmp_path: Any) -> None:
    chart = tiny_chart(tmp_path, "plain", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    ctx = install_app(chart)
    with pytest.raises(pytest.skip.Exception, match="has no helm test hooks"):
        run_check(ctx, Check(kind="helmTest", spec={}))
    with pytest.raises(CheckFailed, match="to have helm test hooks"):
        run_check(ctx, Check(kind="helmTest", spec={"required": True}))
