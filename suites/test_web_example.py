"""An example of a Python test beside suite files: it uses the plugin's fixtures to install
the project's fixture web chart on the run's cluster, waits for its Deployment, runs its
``helm test`` and removes it again."""

from __future__ import annotations

import uuid
from pathlib import Path

from kubernetes import client

from harness.helm.client import Helm
from harness.kube.readiness import deployment_ready
from harness.kube.wait import wait_for

CHART = Path(__file__).resolve().parent.parent / "fixtures" / "charts" / "web"


def test_web_chart_installs_and_passes_its_helm_test(helm: Helm, k8s: client.ApiClient) -> None:
    namespace = f"example-{uuid.uuid4().hex[:6]}"
    helm.install("web", str(CHART), namespace=namespace, values={"replicaCount": 2})
    try:
        wait_for(
            client.AppsV1Api(k8s).list_namespaced_deployment,
            lambda items: len(items) == 1 and deployment_ready(items[0]),
            expected="deployment/web-web rolled out",
            timeout=60,
            namespace=namespace,
        )
        assert "Succeeded" in helm.test("web", namespace=namespace, timeout="60s")
    finally:
        helm.uninstall("web", namespace=namespace)
        client.CoreV1Api(k8s).delete_namespace(namespace)
