"""The security check: its rules on rendered objects on their own, and the check passing on
a hardened Deployment and failing on a privileged container on the session's kwok cluster
(``tests/charts/guarded``)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import run_check
from harness.checks.security import Workload, parse_rules, problems, workloads
from harness.errors import UsageError
from harness.kube.wait import Obj
from tests.checks.conftest import GUARDED, check, failure

# -- security rules on rendered objects ---------------------------------------------------------


def _pod(name: str, *containers: Obj, init: tuple[Obj, ...] = (), **pod_context: Any) -> Obj:
    return {
        "securityContext": pod_context,
        "initContainers": list(init),
        "containers": list(containers),
    }


def _container(name: str, resources: Obj | None = None, **context: Any) -> Obj:
    return {"name": name, "securityContext": context, "resources": resources or {}}


def test_security_reads_every_kind_of_pod_template_and_hooks() -> None:
    spec = _pod("p", _container("c"))
    manifest = [
        {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": spec}}},
        {
            "kind": "CronJob",
            "metadata": {"name": "cj"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}},
        },
        {"kind": "Service", "metadata": {"name": "svc"}, "spec": {}},
    ]
    hooks = [{"kind": "Pod", "metadata": {"name": "t"}, "spec": spec}]
    found = workloads(manifest, hooks)
    assert [w.label for w in found] == ["Deployment/d", "CronJob/cj", "Pod/t (hook)"]
    assert all(w.pod_spec is spec for w in found)


def test_run_as_non_root_container_level_overrides_pod_level() -> None:
    rules = parse_rules({"runAsNonRoot": True})
    pod = _pod(
        "p",
        _container("inherits"),
        _container("root", runAsUser=0),
        _container("opts-out", runAsNonRoot=False),
        _container("own-user", runAsNonRoot=False, runAsUser=1000),
        init=(_container("init-root", runAsUser=0),),
        runAsNonRoot=True,
    )
    assert problems([Workload("Deployment/d", pod)], rules) == [
        "Deployment/d init container init-root: runs as root (runAsUser: 0)",
        "Deployment/d container root: runs as root (runAsUser: 0)",
        "Deployment/d container opts-out: may run as root "
        "(neither runAsNonRoot: true nor a non-zero runAsUser)",
    ]
    unset = _pod("p", _container("c"))
    assert problems([Workload("Pod/p", unset)], rules) == [
        "Pod/p container c: may run as root (neither runAsNonRoot: true nor a non-zero runAsUser)"
    ]
    pod_root = _pod("p", _container("c"), runAsUser=0, runAsNonRoot=True)
    assert problems([Workload("Pod/p", pod_root)], rules) == [
        "Pod/p container c: runs as root (runAsUser: 0)"
    ]


def test_other_security_rules() -> None:
    rules = parse_rules(
        {
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "resources": "required",
        }
    )
    good = _container(
        "good",
        {"limits": {"cpu": "1", "memory": "1Gi"}},  # limits stand in for requests
        readOnlyRootFilesystem=True,
        allowPrivilegeEscalation=False,
    )
    bad = _container("bad", {"requests": {"memory": "1Gi"}}, privileged=True)
    assert problems([Workload("StatefulSet/s", _pod("p", good, bad))], rules) == [
        "StatefulSet/s container bad: privileged: true",
        "StatefulSet/s container bad: readOnlyRootFilesystem is unset, not true",
        "StatefulSet/s container bad: allowPrivilegeEscalation is unset (defaults to true)",
        "StatefulSet/s container bad: no cpu request, no memory limit",
    ]
    # The opposite values ask for nothing.
    lax = parse_rules({"privileged": True, "runAsNonRoot": False, "resources": "optional"})
    assert problems([Workload("StatefulSet/s", _pod("p", bad))], lax) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "security needs at least one of"),
        ({"privileged": "no"}, "security.privileged must be true or false"),
        ({"resources": "yes"}, "security.resources must be 'required'"),
        ({"hostNetwork": False}, "unknown key(s) hostNetwork"),
    ],
)
def test_malformed_security_specs_are_usage_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_rules(spec)
    assert message in str(info.value)


# -- the check on the cluster ------------------------------------------------------------------


@pytest.mark.cluster
def test_security(install_app: Any) -> None:
    baseline = {
        "runAsNonRoot": True,
        "privileged": False,
        "resources": "required",
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
    }
    run_check(install_app(GUARDED, name="hardened"), check("security", **baseline))

    ctx = install_app(GUARDED, name="loose", values={"privileged": True})
    message = failure(ctx, "security", **baseline)
    assert "observed 2 problems" in message
    assert "  Deployment/loose-guarded container app: privileged: true\n" in message
    assert (
        "  Deployment/loose-guarded container app: allowPrivilegeEscalation is unset "
        "(defaults to true)"
    ) in message
    assert "setup" not in message and "(hook)" not in message
    run_check(ctx, check("security", runAsNonRoot=True, resources="required"))
