"""The first end-to-end path on the real API server: the fixture chart installed with Helm
(through pyhelm3's builders and the harness's runner), its Deployment seen ready through a
watch, ``helm test`` run, and the release removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.errors import HelmError, WaitTimeout
from harness.helm.client import Helm
from harness.kube.readiness import deployment_ready
from harness.kube.wait import wait_for
from tests.conftest import tiny_chart


def wait_deployment(k8s: client.ApiClient, namespace: str, name: str, timeout: float = 30) -> dict:
    apps = client.AppsV1Api(k8s)
    objects = wait_for(
        apps.list_namespaced_deployment,
        lambda items: len(items) == 1 and deployment_ready(items[0]),
        expected=f"deployment/{name} rolled out",
        timeout=timeout,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )
    return objects[0]


def test_install_ready_helm_test_uninstall(
    helm: Helm, k8s: client.ApiClient, namespace: str, chart_dir: Path
) -> None:
    release = helm.install("web", str(chart_dir), namespace=namespace, values={"replicaCount": 2})
    assert release["info"]["status"] == "deployed"
    assert release["chart"]["metadata"]["name"] == "web"

    deployment = wait_deployment(k8s, namespace, "web-web")
    assert deployment["status"]["availableReplicas"] == 2

    output = helm.test("web", namespace=namespace, timeout="60s")
    assert "web-web-test" in output and "Succeeded" in output

    helm.uninstall("web", namespace=namespace)
    apps = client.AppsV1Api(k8s)
    assert apps.list_namespaced_deployment(namespace).items == []
    assert helm.command is not None
    with pytest.raises(HelmError, match="not found"):
        helm.status("web", namespace=namespace)


def test_failing_helm_test_is_a_helm_error_with_helms_reason(
    helm: Helm, k8s: client.ApiClient, namespace: str, chart_dir: Path
) -> None:
    helm.install("web", str(chart_dir), namespace=namespace, set_values={"simulate.test": "fail"})
    wait_deployment(k8s, namespace, "web-web")
    with pytest.raises(HelmError) as info:
        helm.test("web", namespace=namespace, timeout="60s")
    assert info.value.operation == "test"
    assert "pod web-web-test failed" in info.value.reason


def test_a_deployment_that_never_becomes_ready_times_out_with_what_was_seen(
    helm: Helm, k8s: client.ApiClient, namespace: str, chart_dir: Path
) -> None:
    helm.install(
        "web", str(chart_dir), namespace=namespace, set_values={"simulate.pods": "crashloop"}
    )
    with pytest.raises(WaitTimeout) as info:
        wait_deployment(k8s, namespace, "web-web", timeout=4)
    message = str(info.value)
    assert "deployment/web-web rolled out" in message
    assert "Available=False" in message or "Available" in message


def test_values_files_then_values_then_set_layer_like_helm(
    helm: Helm, k8s: client.ApiClient, namespace: str, chart_dir: Path, tmp_path: Path
) -> None:
    values_file = tmp_path / "ci.yaml"
    values_file.write_text("replicaCount: 5\nservice:\n  port: 8081\n")
    helm.install(
        "web",
        str(chart_dir),
        namespace=namespace,
        values_files=[values_file],
        values={"replicaCount": 3},
        set_values={"service.port": 9090},
    )
    deployment = wait_deployment(k8s, namespace, "web-web")
    service = client.CoreV1Api(k8s).read_namespaced_service("web-web", namespace)
    assert deployment["spec"]["replicas"] == 3  # inline values win over the values file
    assert service.spec.ports[0].port == 9090  # --set wins over both


def test_a_missing_chart_names_the_chart(helm: Helm, namespace: str, tmp_path: Path) -> None:
    with pytest.raises(HelmError) as info:
        helm.install("web", str(tmp_path / "no-chart"), namespace=namespace)
    assert "no-chart" in info.value.reason


WEBHOOK = """apiVersion: v1
kind: Service
metadata: {name: guard}
spec:
  ports: [{port: 443, targetPort: 8443}]
  selector: {app: guard}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: "guard-{{ .Release.Namespace }}"}
webhooks:
  - name: guard.fixtures.helm-harness.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig:
      service: {name: guard, namespace: "{{ .Release.Namespace }}", port: 443}
    objectSelector: {matchLabels: {guarded-by: "{{ .Release.Namespace }}"}}
    rules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
"""


def test_a_webhook_kwok_cannot_serve_is_explained(install_app: Any, tmp_path: Path) -> None:
    """The API server dials the webhook's Service IP; on kwok nothing runs there and the
    test bed's rules reject the dial at once. The failure says so, not just the dial."""
    webhook = install_app(tiny_chart(tmp_path, "guard", WEBHOOK), name="guard")
    guarded = tiny_chart(
        tmp_path,
        "guarded",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
        f"  labels: {{guarded-by: {webhook.namespace}}}\n",
    )
    with pytest.raises(HelmError) as failure:
        install_app(guarded, name="guarded")
    text = str(failure.value)
    assert 'failed calling webhook "guard.fixtures.helm-harness.io"' in text
    assert "kwok runs no containers" in text and "run this app on kind" in text


def test_set_values_are_written_as_helm_reads_them() -> None:
    from harness.helm.command import _values_argv

    argv = _values_argv([], {"a.enabled": False, "b": None, "c": 3, "d": "x"})
    assert argv == [
        "--values", "-",
        "--set", "a.enabled=false", "--set", "b=null", "--set", "c=3", "--set", "d=x",
    ]  # fmt: skip
