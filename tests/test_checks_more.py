"""The noRestarts, events, rbac, security and python checks: their parsers on their own, and
each check passing on a healthy app and failing on a broken one on the session's kwok
cluster, with ``tests/charts/guarded``: a hardened Deployment with a least-privilege
ServiceAccount, and values that break it (a crash loop, a Role granting too much, a
privileged container)."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.checks import run_check
from harness.checks.context import AppContext
from harness.checks.no_restarts import PODS
from harness.checks.python import import_folder, parse_call
from harness.checks.rbac import Access, parse_access, parse_spec
from harness.checks.security import Workload, parse_rules, problems, workloads
from harness.errors import CheckFailed, UsageError
from harness.kube.wait import Obj, wait_for
from harness.suite.model import Check

GUARDED = Path(__file__).parent / "charts" / "guarded"
READY = Check(kind="ready", spec={})


def check(kind: str, **spec: Any) -> Check:
    return Check(kind=kind, spec=spec)


def failure(ctx: AppContext, kind: str, **spec: Any) -> str:
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, check(kind, **spec))
    return str(info.value)


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


# -- python call strings ------------------------------------------------------------------------


def test_python_call_strings() -> None:
    assert parse_call("tests.checks:web_cart_works") == ("tests.checks", "web_cart_works")
    assert parse_call("checks:Suite.method") == ("checks", "Suite.method")
    for bad in ("tests.checks", "a:b:c", "tests/checks.py:fn", "mod:", ":fn", "mod:1fn", None):
        with pytest.raises(UsageError, match="python.call must read 'package.module:function'"):
            parse_call(bad)


def test_python_modules_are_found_beside_the_suite_or_above_it(tmp_path: Path) -> None:
    top = f"hh_pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / top).mkdir()
    (tmp_path / "suites").mkdir()
    assert import_folder(f"{top}.checks", tmp_path / "suites") == tmp_path
    assert import_folder("json", tmp_path / "suites") is None  # importable as is
    assert import_folder(f"{top}_missing.checks", tmp_path / "suites") is None


# -- the checks on the cluster ------------------------------------------------------------------


def _with_restarts(pods: list[Obj]) -> bool:
    return bool(pods) and all(
        s.get("restartCount", 0) > 0
        for p in pods
        for s in (p.get("status") or {}).get("containerStatuses") or [{}]
    )


@pytest.mark.cluster
def test_no_restarts(install_app: Any) -> None:
    healthy = install_app(GUARDED, name="calm")
    run_check(healthy, READY)
    run_check(healthy, check("noRestarts"))
    run_check(healthy, check("noRestarts", max=0))

    # A crash-looping pod the release does not own does not count.
    stranger = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="stranger", annotations={"helm-harness.io/simulate": "crashloop"}
        ),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="c", image="registry.example.invalid/x:1")]
        ),
    )
    client.CoreV1Api(healthy.api).create_namespaced_pod(healthy.namespace, stranger)
    wait_for(
        healthy.lister_for(PODS),
        _with_restarts,
        expected="the stranger pod crash-looping",
        timeout=60,
        namespace=healthy.namespace,
        field_selector="metadata.name=stranger",
    )
    run_check(healthy, check("noRestarts"))


@pytest.mark.cluster
def test_no_restarts_fails_on_a_crash_loop(install_app: Any) -> None:
    ctx = install_app(GUARDED, name="loop", values={"simulate": {"pods": "crashloop"}})
    pods = wait_for(
        ctx.lister_for(PODS),
        _with_restarts,
        expected="crash-looping pods",
        timeout=60,
        namespace=ctx.namespace,
    )
    message = failure(ctx, "noRestarts", max=0)
    assert "expected at most 0 restarts per container of the release's pods" in message
    assert "observed 1 container over the limit" in message
    pod = pods[0]["metadata"]["name"]
    assert (
        f"pod/{pod} container app: restartCount 3; last terminated: Error (exit 1); "
        "now waiting: CrashLoopBackOff"
    ) in message
    run_check(ctx, check("noRestarts", max=3))
    with pytest.raises(UsageError, match="noRestarts.max must be a whole number"):
        run_check(ctx, check("noRestarts", max=-1))


def _warning(ctx: AppContext, reason: str, message: str, count: int = 1) -> None:
    now = datetime.now(timezone.utc)
    deployment = ctx.objects_of("Deployment")[0]["metadata"]["name"]
    client.CoreV1Api(ctx.api).create_namespaced_event(
        ctx.namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{deployment}.{uuid.uuid4().hex[:12]}"),
            involved_object=client.V1ObjectReference(
                kind="Deployment", name=deployment, namespace=ctx.namespace
            ),
            reason=reason,
            message=message,
            type="Warning",
            count=count,
            first_timestamp=now,
            last_timestamp=now,
            source=client.V1EventSource(component="helm-harness-tests"),
        ),
    )


@pytest.mark.cluster
def test_events(install_app: Any) -> None:
    ctx = install_app(GUARDED, name="noisy")
    run_check(ctx, READY)
    run_check(ctx, check("events", noWarnings=True))

    _warning(ctx, "FailedMount", 'MountVolume.SetUp failed for volume "config"', count=4)
    message = failure(ctx, "events", noWarnings=True)
    assert f"expected no Warning events in namespace {ctx.namespace}" in message
    assert "observed 1 Warning event (FailedMount)" in message
    assert (
        'FailedMount Deployment/noisy-guarded (x4): MountVolume.SetUp failed for volume "config"'
    ) in message
    run_check(ctx, check("events", noWarnings=True, allow=["FailedMount"]))
    run_check(ctx, check("events", noWarnings=False))

    for i in range(11):
        _warning(ctx, "BackOff", f"Back-off restarting failed container {i}")
    message = failure(ctx, "events", allow=["FailedMount"])
    assert "observed 11 Warning events (BackOff)" in message
    assert "other than FailedMount" in message
    assert "+1 more" in message
    assert "FailedMount Deployment" not in message
    with pytest.raises(UsageError, match="events.allow must be a list"):
        run_check(ctx, check("events", allow="BackOff"))


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


PY_CHECKS = """
from harness.checks.no_restarts import PODS


def pods_listed(app):
    return app.lister_for(PODS)(namespace=app.namespace)["items"] is not None


def nothing(app):
    return None


def says_no(app):
    return False


def wants_five_pods(app):
    pods = app.lister_for(PODS)(namespace=app.namespace)["items"]
    assert len(pods) == 5, f"want 5 pods in {app.namespace}, found {len(pods)}"


def bare_assert(app):
    assert app.namespace == "elsewhere"


def buggy(app):
    return {}["missing"]


not_a_function = 3
"""


@pytest.mark.cluster
def test_python(install_app: Any, tmp_path: Path) -> None:
    ctx = install_app(GUARDED, name="py")
    run_check(ctx, READY)
    module = f"hh_checks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(PY_CHECKS))  # beside t.suite.yaml

    run_check(ctx, check("python", call=f"{module}:pods_listed"))
    run_check(ctx, check("python", call=f"{module}:nothing"))
    message = failure(ctx, "python", call=f"{module}:says_no")
    assert message == f"expected {module}:says_no to pass; observed it returned False"
    message = failure(ctx, "python", call=f"{module}:wants_five_pods")
    assert f"AssertionError: want 5 pods in {ctx.namespace}, found 1 ({module}.py:" in message
    message = failure(ctx, "python", call=f"{module}:bare_assert")
    assert 'AssertionError: assert app.namespace == "elsewhere"' in message
    with pytest.raises(KeyError, match="missing"):
        run_check(ctx, check("python", call=f"{module}:buggy"))
    (tmp_path / f"{module}_broken.py").write_text("import hh_no_such_dependency\n")
    with pytest.raises(ModuleNotFoundError, match="hh_no_such_dependency"):
        run_check(ctx, check("python", call=f"{module}_broken:fn"))

    with pytest.raises(UsageError, match="has no 'absent'"):
        run_check(ctx, check("python", call=f"{module}:absent"))
    with pytest.raises(UsageError, match="'not_a_function' is not a function"):
        run_check(ctx, check("python", call=f"{module}:not_a_function"))
    with pytest.raises(UsageError, match=f"no module named '{module}_gone'"):
        run_check(ctx, check("python", call=f"{module}_gone:fn"))
    with pytest.raises(UsageError, match="python.call must read"):
        run_check(ctx, check("python", call="no colon"))
    assert str(tmp_path) not in sys.path


@pytest.mark.cluster
def test_python_package_beside_the_suites_folder(install_app: Any, tmp_path: Path) -> None:
    ctx = install_app(GUARDED, name="pkg")
    top = f"hh_pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / top).mkdir()
    (tmp_path / top / "__init__.py").write_text("")
    (tmp_path / top / "checks.py").write_text("def ok(app):\n    return app.release == 'pkg'\n")
    suite = dataclasses.replace(ctx.suite, path=tmp_path / "suites" / "shop.suite.yaml")
    moved = dataclasses.replace(ctx, suite=suite)
    run_check(moved, check("python", call=f"{top}.checks:ok"))
