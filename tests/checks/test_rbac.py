"""The rbac check: its entries and specs parsed on their own, and the check passing on a
least-privilege ServiceAccount and failing on a Role that grants too much on the session's
kwok cluster (``tests/charts/guarded``)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import run_check
from harness.checks.rbac import Access, parse_access, parse_spec
from harness.errors import CheckFailed, UsageError
from tests.checks.conftest import GUARDED, check, failure

# -- rbac entries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("create secrets", Access("create secrets", "create", "secrets")),
        ("get nodes", Access("get nodes", "get", "nodes")),
        ("list Pods", Access("list Pods", "list", "pods")),
        ("get pods/log", Access("get pods/log", "get", "pods", subresource="log")),
        (
            "update deployments.apps/scale in kube-system",
            Access(
                "update deployments.apps/scale in kube-system",
                "update",
                "deployments",
                group="apps",
                subresource="scale",
                namespace="kube-system",
            ),
        ),
        (
            "watch widgets.example.com",
            Access("watch widgets.example.com", "watch", "widgets", group="example.com"),
        ),
        ("* *", Access("* *", "*", "*")),
        ("  get   /metrics ", Access("  get   /metrics ", "get", "/metrics")),
    ],
)
def test_rbac_entries_parse(text: str, parsed: Access) -> None:
    assert parse_access(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "write 'VERB RESOURCE'"),
        ("create", "write 'VERB RESOURCE'"),
        ("create secrets now", "write 'VERB RESOURCE'"),
        ("create secrets in", "write 'VERB RESOURCE'"),
        ("create secrets on prod", "write 'VERB RESOURCE'"),
        ("create secrets in Prod_1", "'Prod_1' is not a namespace name"),
        ("Create secrets", "'Create' is not a verb"),
        ("get-all secrets", "'get-all' is not a verb"),
        ("get se@crets", "'se@crets' is not a resource"),
        ("get pods/log/tail", "'pods/log/tail' is not a resource"),
        ("get /healthz in prod", "a URL has no namespace"),
        (42, "is not a string"),
    ],
)
def test_malformed_rbac_entries_are_usage_errors(text: Any, message: str) -> None:
    with pytest.raises(UsageError, match="rbac entry") as info:
        parse_access(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"serviceAccount": "web"}, "rbac needs 'can' or 'cannot'"),
        ({"cannot": "create secrets"}, "rbac.cannot must be a list"),
        ({"cannot": ["create secrets"], "verbs": []}, "unknown key(s) verbs"),
        ({"serviceAccount": "Web App", "can": ["get pods"]}, "rbac.serviceAccount must be"),
        ({"can": ["get pods", "oops"]}, "rbac entry 'oops'"),
    ],
)
def test_malformed_rbac_specs_are_usage_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_spec(spec)
    assert message in str(info.value)


# -- the check on the cluster ------------------------------------------------------------------


@pytest.mark.cluster
def test_rbac_passes_on_least_privilege(install_app: Any) -> None:
    ctx = install_app(GUARDED, name="least")
    account = "least-guarded"
    spec = {
        "can": ["list pods", "get pod", "get pods in " + ctx.namespace],
        "cannot": [
            "create secrets",
            "get nodes",
            "delete pods",
            "get pods in kube-system",
            "get pods/log",
            "create deployments.apps",
            "update deploy/scale",
            "* *",
        ],
    }
    run_check(ctx, check("rbac", serviceAccount=account, **spec))
    run_check(ctx, check("rbac", **spec))  # every ServiceAccount the release renders

    with pytest.raises(CheckFailed, match=f"ServiceAccount {ctx.namespace}/nobody to exist"):
        run_check(ctx, check("rbac", serviceAccount="nobody", cannot=["create secrets"]))
    with pytest.raises(UsageError, match="nodes are cluster-scoped; drop 'in default'"):
        run_check(ctx, check("rbac", serviceAccount=account, cannot=["get nodes in default"]))
    with pytest.raises(UsageError, match="rbac entry 'get gadgets'.*unknown resource type"):
        run_check(ctx, check("rbac", serviceAccount=account, cannot=["get gadgets"]))
    with pytest.raises(UsageError, match="rbac entry 'create': write 'VERB RESOURCE'"):
        run_check(ctx, check("rbac", serviceAccount=account, cannot=["create"]))


@pytest.mark.cluster
def test_rbac_fails_when_a_role_grants_too_much(install_app: Any) -> None:
    ctx = install_app(GUARDED, name="greedy", values={"rbac": {"createSecrets": True}})
    message = failure(
        ctx,
        "rbac",
        serviceAccount="greedy-guarded",
        can=["list pods", "get nodes"],
        cannot=["create secrets", "delete pods"],
    )
    ns = ctx.namespace
    assert (
        f"expected ServiceAccount {ns}/greedy-guarded can list pods, get nodes; "
        "cannot create secrets, delete pods"
    ) in message
    assert "observed 1 allowed that should be denied; 1 denied that should be allowed" in message
    assert message.splitlines()[1:] == [
        "allowed but should not be:",
        f"  {ns}/greedy-guarded: create secrets in {ns} — RBAC: allowed by RoleBinding "
        f'"greedy-guarded/{ns}" of Role "greedy-guarded" to ServiceAccount "greedy-guarded/{ns}"',
        "denied but should be allowed:",
        f"  {ns}/greedy-guarded: get nodes (cluster-wide) — no rule allows it",
    ]
