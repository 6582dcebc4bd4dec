"""The podSecurity check with the kwok API server's own Pod Security admission deciding: the
app's namespace enforces the level from the install on, a privileged pod is rejected under
restricted (the failure names the pod spec and the rule), a plain pod passes baseline, a
namespace without the labels fails. And the suite file's validation of the check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.checks import run_check
from harness.errors import CheckFailed
from harness.kube.wait import wait_for
from harness.suite.model import Check, load_suite
from tests.checks.conftest import READY, suite_error, suite_with
from tests.conftest import tiny_chart

PRIVILEGED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: priv}
spec:
  selector: {matchLabels: {app: priv}}
  template:
    metadata: {labels: {app: priv}}
    spec:
      containers:
        - name: c
          image: helm-harness/fixture-app:1
          securityContext: {privileged: true}
"""


def pod_security(level: str, **more: Any) -> Check:
    return Check(kind="podSecurity", spec={"level": level, **more})


def test_restricted_rejects_a_privileged_pod_naming_the_spec_and_rule(
    install_app: Any, tmp_path: Path
) -> None:
    check = pod_security("restricted")
    ctx = install_app(tiny_chart(tmp_path, "priv", PRIVILEGED), checks=(check,))
    core = client.CoreV1Api(ctx.api)
    labels = core.read_namespace(ctx.namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, check)
    text = str(info.value)
    assert text.startswith(
        "expected Pod Security admission (restricted:latest) to admit every pod spec of the "
        "release; observed 1 pod spec rejected\n"
        '  Deployment/priv: violates PodSecurity "restricted:latest": privileged (container '
        '"c" must not set securityContext.privileged=true)'
    ), text
    assert "runAsNonRoot != true" in text  # every rule the server names
    # The enforcement is real: the ReplicaSet controller's pods were refused at creation.
    events = wait_for(
        core.list_namespaced_event,
        lambda found: any("violates PodSecurity" in (e.get("message") or "") for e in found),
        expected="a FailedCreate event",
        timeout=30,
        namespace=ctx.namespace,
        field_selector="reason=FailedCreate",
    )
    assert events
    assert not core.list_namespaced_pod(ctx.namespace, label_selector="app=priv").items


def test_baseline_admits_a_plain_pod(install_app: Any) -> None:
    check = pod_security("baseline", version="v1.30")
    ctx = install_app("web", checks=(check,))
    labels = client.CoreV1Api(ctx.api).read_namespace(ctx.namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.30"
    run_check(ctx, check)
    run_check(ctx, READY)  # its pods were created under the enforced level


def test_restricted_judges_hook_pods_too(install_app: Any) -> None:
    """The web chart runs as non-root but drops no capabilities, nor does its test pod."""
    check = pod_security("restricted")
    ctx = install_app("web", checks=(check,))
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, check)
    lines = str(info.value).splitlines()
    assert lines[0].endswith("observed 2 pod specs rejected")
    assert lines[1].startswith('  Deployment/web-web: violates PodSecurity "restricted:latest": ')
    assert lines[2].startswith("  Pod/web-web-test (hook): violates PodSecurity")
    assert all("unrestricted capabilities" in line for line in lines[1:])


def test_a_namespace_not_enforcing_the_level_fails(install_app: Any) -> None:
    ctx = install_app("web")  # installed without the check: no labels
    with pytest.raises(CheckFailed) as info:
        run_check(ctx, pod_security("restricted"))
    assert str(info.value) == (
        f"expected namespace {ctx.namespace} to enforce Pod Security 'restricted:latest'; "
        "observed its labels say pod-security.kubernetes.io/enforce=(unset), "
        "pod-security.kubernetes.io/enforce-version=(unset) (the harness labels only the "
        "namespaces it creates; label this one yourself)"
    )


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (
            "- podSecurity: {level: strict}\n",
            ":7: apps[0].checks[0].podSecurity.level: must be one of restricted, baseline; "
            "got the text 'strict'",
        ),
        (
            "- podSecurity: {level: restricted}\n- podSecurity: {level: baseline}\n",
            ":8: apps[0].checks[1]: apps[0].checks[0] (line 7) is a podSecurity check "
            "already: the app's namespace enforces one Pod Security level",
        ),
    ],
)
def test_a_malformed_pod_security_check_is_one_line(
    tmp_path: Path, checks: str, message: str
) -> None:
    assert suite_error(tmp_path, checks) == message


def test_a_pod_security_check_loads_with_its_level_as_id(tmp_path: Path) -> None:
    suite = load_suite(suite_with(tmp_path, "- podSecurity: {level: baseline, version: v1.31}\n"))
    assert [c.id for c in suite.apps[0].checks or ()] == ["podSecurity[baseline]"]
