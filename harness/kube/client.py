"""Kubernetes API clients for a cluster, and small facts read through them."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from harness.errors import ClusterError


def api_client(kubeconfig: Path, context: str | None = None) -> k8s_client.ApiClient:
    """An API client for ``kubeconfig`` (and ``context``), independent of ~/.kube/config."""
    try:
        api: k8s_client.ApiClient = k8s_config.new_client_from_config(
            config_file=str(kubeconfig), context=context
        )
        return api
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise ClusterError(f"cannot use kubeconfig {kubeconfig}: {exc}") from exc


def server_version(api: k8s_client.ApiClient) -> str:
    """The API server's gitVersion, e.g. ``v1.36.3``."""
    info = k8s_client.VersionApi(api).get_code(_request_timeout=10)
    return str(info.git_version)
