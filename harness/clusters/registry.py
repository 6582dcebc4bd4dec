"""Cluster providers: one module each, behind :class:`~harness.clusters.base.ClusterProvider`,
and the lifecycle every caller (the pytest plugin, ``helm-harness cluster``) shares.

======== ====================================================== ==========================
provider what it runs                                           needs
======== ====================================================== ==========================
kind     ``kind`` (nodes are Docker containers)                 Docker, ``kind`` on PATH
k3d      ``k3d`` (k3s in Docker containers)                     Docker, ``k3d`` on PATH
k3s      testcontainers' ``K3SContainer`` (one k3s container)   Docker
kwok     ``kwokctl --runtime binary`` (local control plane)     the kwok binaries
existing a kubeconfig the user gives; never created or deleted  ``--kubeconfig``
======== ====================================================== ==========================
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.clusters.base import ClusterInfo, ClusterProvider, ClusterSpec
from harness.errors import HarnessError, UsageError

PROVIDERS = ("auto", "kind", "k3d", "k3s", "kwok", "existing")
DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"
DOCKER_PING_TIMEOUT = 5
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(-k3s\d+)?$")


def get_provider(
    name: str,
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    pod_startup: float = 0.0,
    pod_jitter: float = 0.0,
) -> ClusterProvider:
    """The provider called ``name`` (``auto`` picks as the README describes)."""
    if name == "auto":
        name = _pick_auto(kubeconfig)
    if name == "existing":
        if kubeconfig is None:
            raise UsageError("--cluster existing needs --kubeconfig FILE")
        from harness.clusters.existing import ExistingProvider

        return ExistingProvider(kubeconfig, context)
    if name == "kwok":
        from harness.clusters.kwok import KwokProvider

        return KwokProvider(pod_startup=pod_startup, pod_jitter=pod_jitter)
    if name == "kind":
        from harness.clusters.kind import KindProvider

        return KindProvider()
    if name == "k3d":
        from harness.clusters.k3d import K3dProvider

        return K3dProvider()
    if name == "k3s":
        from harness.clusters.k3s import K3sProvider

        return K3sProvider()
    raise UsageError(f"unknown cluster provider {name!r}; choose one of: {', '.join(PROVIDERS)}")


def _pick_auto(kubeconfig: Path | None) -> str:
    """existing with --kubeconfig; else kind, then k3d, when Docker answers and the CLI is
    on PATH; else kwok when its binaries are found; else an error saying what was tried."""
    if kubeconfig is not None:
        return "existing"
    tried = ["existing: no --kubeconfig given"]
    docker = docker_engine_problem()
    for cli in ("kind", "k3d"):
        reasons = [docker] if docker else []
        if _find_cli(cli) is None:
            reasons.append(f"{cli} is not on PATH")
        if not reasons:
            return cli
        tried.append(f"{cli}: {'; '.join(reasons)}")
    from harness.clusters.kwok import KwokProvider

    try:
        KwokProvider().check()
    except HarnessError as exc:
        tried.append(f"kwok: {exc}")
    else:
        return "kwok"
    raise UsageError(
        "--cluster auto found no cluster to use. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nPass --kubeconfig FILE, start Docker and install kind or k3d, "
        "or run 'helm-harness tools install' for local kwok clusters."
    )


def _find_cli(cli: str) -> Path | None:
    if cli == "kind":  # also the one `helm-harness tools install --kind` built
        from harness.clusters.kind import find_kind

        return find_kind()
    found = shutil.which(cli)
    return Path(found) if found else None


def docker_engine_problem() -> str | None:
    """None when a Docker engine answers a ping (through the ``docker`` SDK that
    testcontainers uses), else why not, naming where it was looked for."""
    where = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_SOCKET
    try:
        import docker

        engine = docker.from_env(timeout=DOCKER_PING_TIMEOUT)
        try:
            engine.ping()
        finally:
            engine.close()
    except Exception as exc:  # the SDK raises many kinds (DockerException, OSError, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"no Docker engine answers at {where} ({reason})"
    return None


def normalize_k8s_version(text: str) -> str:
    """``1.36``, ``v1.36.4`` or ``v1.36.4-k3s1`` as ``v1.36`` / ``v1.36.4`` /
    ``v1.36.4-k3s1``; ValueError for anything else."""
    match = _VERSION.match(text.strip())
    if match is None:
        raise ValueError(
            f"not a Kubernetes version: {text!r} (write it like 1.36, v1.36.4 or v1.36.4-k3s1)"
        )
    major, minor, patch, k3s = match.groups()
    if k3s and patch is None:
        raise ValueError(f"not a Kubernetes version: {text!r} (a k3s build needs the patch)")
    version = f"v{major}.{minor}" + (f".{patch}" if patch is not None else "")
    return version + (k3s or "")


def acquire(
    provider: ClusterProvider, spec: ClusterSpec, *, reuse: bool, run_id: str = ""
) -> ClusterInfo:
    """Use the cluster ``spec.name`` when reuse is asked and it exists; else create it.

    This process becomes a holder of the cluster's ownership record (when the harness
    made the cluster, also when it is used as ``existing`` through the harness's own
    kubeconfig), and ``run_id``, when given, is registered as a live run, so that
    ``helm-harness cluster sweep`` leaves both alone while this process runs."""
    from harness.clusters import records

    with cluster_lock(provider, spec.name):
        if reuse and provider.exists(spec.name):
            info = provider.get(spec.name)
        else:
            info = provider.create(spec)
        for record_provider, record_name in _records_of(provider, info):
            records.hold_cluster(record_provider, record_name, run_id=run_id)
    if run_id:
        records.register_run(run_id)
    return info


def release(provider: ClusterProvider, info: ClusterInfo, *, keep: bool, run_id: str = "") -> bool:
    """Delete the cluster if this run created it and nobody asked to keep it."""
    from harness.clusters import records

    if run_id:
        records.forget_run(run_id)
    with cluster_lock(provider, info.name):
        if info.created and not keep:
            provider.delete(info.name)
            return True
        for record_provider, record_name in _records_of(provider, info):
            records.unhold_cluster(record_provider, record_name)
    return False


@contextmanager
def cluster_lock(provider: ClusterProvider, name: str) -> Iterator[None]:
    """One process at a time finds, creates, holds or deletes the cluster ``name``: two
    runs with ``--reuse-cluster`` that start together would otherwise both find no cluster
    and both create it (the second kwokctl failing, and its clean-up deleting the first's
    cluster). The second waits here until the first's cluster is up, then reuses it.

    One lock file, ``<cache>/locks/clusters.lock``, with a one-byte record lock per
    cluster at an offset from a hash of its provider and name (so no file per cluster
    piles up; a hash collision only makes two clusters wait for each other). None for
    ``existing`` clusters, which are never created."""
    if provider.name == "existing":
        yield
        return
    from harness import tools

    digest = hashlib.sha256(f"{provider.name}/{name}".encode()).digest()
    offset = int.from_bytes(digest[:4], "big") >> 1  # below 2**31
    path = tools.cache_dir() / "locks" / "clusters.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX, 1, offset)  # released when the file is closed
        yield


def _records_of(provider: ClusterProvider, info: ClusterInfo) -> list[tuple[str, str]]:
    """The ownership records (provider, name) that ``info`` is the cluster of."""
    from harness.clusters import records

    if provider.name != "existing":
        return [(provider.name, info.name)]
    used = info.kubeconfig.resolve()
    return [
        (record.provider, record.name)
        for record in records.cluster_records()
        if Path(record.kubeconfig).resolve() == used
    ]


__all__ = [
    "PROVIDERS",
    "ClusterInfo",
    "ClusterProvider",
    "ClusterSpec",
    "acquire",
    "docker_engine_problem",
    "get_provider",
    "normalize_k8s_version",
    "release",
]
