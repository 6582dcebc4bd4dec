"""The wait check against the real kwok API server: conditions, jsonpath, create and
delete; a wait that never holds says what it saw."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from harness.checks import run_check
from harness.errors import CheckFailed, UsageError
from harness.suite.model import Check


def test_wait_condition_on_a_deployment(install_app: Any) -> None:
    ctx = install_app("web")
    run_check(
        ctx,
        Check(kind="wait", spec={"resource": "deployment/web-web", "for": "condition=Available"}),
    )


def test_wait_jsonpath_on_pods_by_selector(install_app: Any) -> None:
    ctx = install_app("web", values={"replicaCount": 2})
    spec = {
        "resource": "pods",
        "selector": "app.kubernetes.io/name=web",
        "for": "jsonpath={.status.phase}=Running",
    }
    run_check(ctx, Check(kind="wait", spec=spec))


def test_wait_that_never_holds_says_what_it_saw(install_app: Any) -> None:
    ctx = install_app("web", set_values={"simulate.pods": "crashloop"})
    spec = {"resource": "deployment/web-web", "for": "condition=Available", "timeout": "2s"}
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="wait", spec=spec))
    assert "deployment/web-web to meet condition=Available within 2s" in str(info.value)
    assert "Available=False" in str(info.value)


def test_a_failed_jsonpath_wait_says_the_value_it_saw(install_app: Any) -> None:
    """Once it said only "no status" for a ConfigMap; now the expression's value."""
    ctx = install_app("web")
    spec = {"resource": "deployment/web-web", "for": "jsonpath={.spec.replicas}=5", "timeout": "1s"}
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="wait", spec=spec))
    assert "Deployment/web-web: {.spec.replicas} = '1'" in str(info.value)
    missing = {"resource": "deployment/web-web", "for": "jsonpath={.spec.nope}=x", "timeout": "1s"}
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, Check(kind="wait", spec=missing))
    assert "{.spec.nope} = nothing (no such field)" in str(info.value)


def test_wait_for_delete_and_create(install_app: Any) -> None:
    ctx = install_app("web")
    core = client.CoreV1Api(ctx.api)
    core.create_namespaced_config_map(
        ctx.namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gone"))
    )
    run_check(ctx, Check(kind="wait", spec={"resource": "configmap/gone", "for": "create"}))
    core.delete_namespaced_config_map("gone", ctx.namespace)
    run_check(ctx, Check(kind="wait", spec={"resource": "cm/gone", "for": "delete"}, timeout=10))


def test_wait_on_an_unknown_resource_type_is_a_usage_error(install_app: Any) -> None:
    ctx = install_app("web")
    with pytest.raises(UsageError, match="unknown resource type 'gizmo'"):
        run_check(ctx, Check(kind="wait", spec={"resource": "gizmo/x", "for": "create"}))
