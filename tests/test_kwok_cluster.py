"""The kwok provider against real control planes (etcd, kube-apiserver, controller-manager,
scheduler as local processes)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from harness import tools
from harness.checks import run_check
from harness.clusters.base import ClusterInfo, ClusterSpec
from harness.clusters.kwok import (
    LOOPBACK_NODE_ADDRESS,
    NODE_ADDRESS,
    NODE_NETWORK,
    KwokProvider,
    node_address,
)
from harness.errors import ClusterError, ClusterExistsError
from harness.kube.client import api_client, server_version
from harness.kube.wait import all_have_condition, wait_for
from harness.suite.model import Check
from tests.conftest import tiny_chart

# A node agent on the host's network, and a Service in front of it: its endpoints are the
# nodes' addresses, which the API server refuses when they are loopback ones.
HOST_NETWORK_AGENT = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      containers:
        - name: agent
          image: registry.example.invalid/agent
          ports: [{name: metrics, containerPort: 9100}]
---
apiVersion: v1
kind: Service
metadata: {name: agent}
spec:
  selector: {app: agent}
  ports: [{name: metrics, port: 9100, targetPort: metrics}]
"""


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


def test_a_service_in_front_of_a_host_network_daemonset_becomes_ready(
    harness_cluster: ClusterInfo, k8s: client.ApiClient, install_app: Any, tmp_path: Path
) -> None:
    if os.geteuid() != 0 and not harness_cluster.details["node-address"].startswith(NODE_ADDRESS):
        pytest.skip(f"not root: the nodes' address is {harness_cluster.details['node-address']}")
    assert harness_cluster.details["node-address"].startswith(f"{NODE_ADDRESS} ")
    ctx = install_app(tiny_chart(tmp_path, "agent", HOST_NETWORK_AGENT))
    run_check(ctx, Check(kind="ready", spec={}, timeout=60))  # the Service's endpoints too
    nodes = client.CoreV1Api(k8s).list_node().items
    node_ips = {a.address for n in nodes for a in n.status.addresses if a.type == "InternalIP"}
    assert node_ips and all(ipaddress.ip_address(ip) in NODE_NETWORK for ip in node_ips)
    slices = client.DiscoveryV1Api(k8s).list_namespaced_endpoint_slice(
        ctx.namespace, label_selector="kubernetes.io/service-name=agent"
    )
    endpoints = [e for s in slices.items for e in s.endpoints or []]
    assert {ip for e in endpoints for ip in e.addresses} == node_ips  # a pod per node, at its IP
    assert all(e.conditions.ready for e in endpoints)


def test_nodes_fall_back_to_loopback_when_their_network_cannot_be_local() -> None:
    too_many = NODE_NETWORK.num_addresses  # more nodes than the network has addresses
    assert node_address(too_many, metrics_server=True) == LOOPBACK_NODE_ADDRESS
    assert node_address(too_many, metrics_server=False) is None  # kwok's own default
