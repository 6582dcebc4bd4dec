"""The kwok provider against real control planes (etcd, kube-apiserver, controller-manager,
scheduler as local processes)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from harness import tools
from harness.clusters.base import ClusterInfo, ClusterSpec
from harness.clusters.kwok import KwokProvider
from harness.errors import ClusterError, ClusterExistsError
from harness.kube.client import api_client, server_version
from harness.kube.wait import all_have_condition, wait_for


def processes_of(cluster_dir: Path) -> list[str]:
    """Command lines of running processes that belong to a kwok cluster folder."""
    out = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(cluster_dir) in line]


@pytest.fixture
def own_name() -> Iterator[str]:
    name = f"hh-own-{uuid.uuid4().hex[:6]}"
    yield name
    KwokProvider().delete(name)  # whatever a failed test left


def test_session_cluster_is_a_real_v1_36_api_server(
    harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    assert harness_cluster.provider == "kwok"
    assert server_version(k8s) == tools.K8S_VERSION
    nodes = client.CoreV1Api(k8s).list_node().items
    assert nodes and all(
        any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
        for node in nodes
    )


def test_kubeconfig_is_private(harness_cluster: ClusterInfo) -> None:
    assert harness_cluster.kubeconfig.stat().st_mode & 0o777 == 0o600


def test_a_taken_name_is_a_clear_error(harness_cluster: ClusterInfo) -> None:
    with pytest.raises(ClusterExistsError, match="--reuse-cluster"):
        KwokProvider().create(ClusterSpec(name=harness_cluster.name))


def test_reuse_returns_the_running_cluster_without_creating(harness_cluster: ClusterInfo) -> None:
    from harness.clusters.registry import acquire

    info = acquire(KwokProvider(), ClusterSpec(name=harness_cluster.name), reuse=True)
    assert info.name == harness_cluster.name and not info.created


def test_create_with_startup_delay_then_delete_leaves_nothing(own_name: str) -> None:
    provider = KwokProvider(pod_startup=1.5, pod_jitter=0.5)
    info = provider.create(ClusterSpec(name=own_name, nodes=2))
    workdir = provider.cluster_dir(own_name)
    assert info.created and processes_of(workdir)
    with api_client(info.kubeconfig) as api:
        core = client.CoreV1Api(api)
        wait_for(
            core.list_node,
            all_have_condition("Ready", at_least=2),
            expected="2 nodes Ready",
            timeout=30,
        )
        core.create_namespaced_pod(
            "default",
            client.V1Pod(
                metadata=client.V1ObjectMeta(name="slow"),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x")]),
            ),
        )
        started = time.monotonic()
        wait_for(
            core.list_namespaced_pod,
            all_have_condition("Ready"),
            expected="pod slow Ready",
            timeout=30,
            namespace="default",
            field_selector="metadata.name=slow",
        )
        took = time.monotonic() - started
    assert took >= 1.3, f"pod was Ready after {took:.2f}s, before the 1.5s start-up delay"
    provider.delete(own_name)
    assert not provider.exists(own_name)
    assert not workdir.exists()
    assert processes_of(workdir) == []


def test_a_failed_start_leaves_no_processes_or_folders(own_name: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    # A configuration kube-apiserver refuses at start: the control plane never comes up.
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                "kind": "KwokctlConfiguration",
                "componentsPatches": [
                    {"name": "kube-apiserver", "extraArgs": [{"key": "no-such-flag", "value": "1"}]}
                ],
            }
        )
    )
    provider = KwokProvider()
    with pytest.raises(ClusterError) as info:
        provider.create(ClusterSpec(name=own_name, config=bad, wait_seconds=8))
    assert "kwokctl could not create cluster" in str(info.value)
    assert "unknown flag: --no-such-flag" in str(info.value)  # the component's own words
    assert info.value.__cause__ is not None  # kwokctl's own error is chained, stderr included
    assert not provider.exists(own_name)
    assert not provider.cluster_dir(own_name).exists()
    assert processes_of(provider.cluster_dir(own_name)) == []


def test_stages_keep_kwok_defaults_and_add_the_harness_ones() -> None:
    docs = list(yaml.safe_load_all(KwokProvider(pod_startup=2, pod_jitter=1).stages_yaml()))
    names = [d["metadata"]["name"] for d in docs]
    for default in (
        "node-initialize",
        "node-heartbeat-with-lease",
        "pod-ready",
        "pod-complete",
        "pod-delete",
    ):
        assert default in names
    for own in (
        "helm-harness-test-pod-succeed",
        "helm-harness-pod-fail",
        "helm-harness-pod-crashloop",
    ):
        assert own in names
    ready = docs[names.index("pod-ready")]
    assert ready["spec"]["delay"] == {
        "durationMilliseconds": 2000,
        "jitterDurationMilliseconds": 3000,
    }
    no_delay = list(yaml.safe_load_all(KwokProvider().stages_yaml()))
    assert all("delay" not in d["spec"] for d in no_delay if d["metadata"]["name"] == "pod-ready")
