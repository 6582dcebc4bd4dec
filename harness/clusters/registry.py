"""Cluster providers: one module each, behind :class:`~harness.clusters.base.ClusterProvider`,
and the lifecycle every caller (the pytest plugin, ``helm-harness cluster``) shares.

The providers, what each runs and what it needs: :data:`PROVIDERS` (the docs' table is
checked against it).
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.clusters.base import ClusterInfo, ClusterProvider, ClusterSpec, docker_engine_problem
from harness.errors import HarnessError, UsageError

CLUSTER_LOCK_TIMEOUT = 900.0  # s, on top of a create's wait: what a create or delete may take


@dataclass(frozen=True)
class Provider:
    """A provider as the registry knows it: its name, the class implementing it (imported
    when first used), what it runs and what it needs (for the docs and error messages)."""

    name: str
    implementation: str  # "module:Class"
    runs: str
    needs: str

    def load(self) -> type[ClusterProvider]:
        module, _, cls = self.implementation.partition(":")
        loaded: type[ClusterProvider] = getattr(importlib.import_module(module), cls)
        return loaded


# The one list of providers: options, the CLI, ``auto`` and the docs read it.
PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "kind",
            "harness.clusters.kind:KindProvider",
            "kind (nodes are Docker containers)",
            "Docker, kind on PATH",
        ),
        Provider(
            "k3d",
            "harness.clusters.k3d:K3dProvider",
            "k3d (k3s in Docker containers)",
            "Docker, k3d on PATH",
        ),
        Provider(
            "k3s",
            "harness.clusters.k3s:K3sProvider",
            "testcontainers' K3SContainer (one k3s container)",
            "Docker",
        ),
        Provider(
            "kwok",
            "harness.clusters.kwok:KwokProvider",
            "kwokctl --runtime binary (a local control plane, simulated nodes)",
            "the kwok binaries",
        ),
        Provider(
            "existing",
            "harness.clusters.existing:ExistingProvider",
            "a kubeconfig the user gives; never created or deleted",
            "--kubeconfig",
        ),
    )
}
PROVIDER_CHOICES = ("auto", *PROVIDERS)


def get_provider(
    name: str,
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    pod_startup: float = 0.0,
    pod_jitter: float = 0.0,
) -> ClusterProvider:
    """The provider called ``name`` (``auto`` picks as :func:`_pick_auto` says)."""
    if name == "auto":
        name = _pick_auto(kubeconfig)
    entry = PROVIDERS.get(name)
    if entry is None:
        raise UsageError(
            f"unknown cluster provider {name!r}; choose one of: {', '.join(PROVIDER_CHOICES)}"
        )
    cls: Any = entry.load()
    if name == "existing":
        if kubeconfig is None:
            raise UsageError("--cluster existing needs --kubeconfig FILE")
        return cls(kubeconfig, context)  # type: ignore[no-any-return]
    if name == "kwok":
        return cls(pod_startup=pod_startup, pod_jitter=pod_jitter)  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]


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
    try:
        PROVIDERS["kwok"].load()().check()
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


def acquire(
    provider: ClusterProvider, spec: ClusterSpec, *, reuse: bool, run_id: str = ""
) -> ClusterInfo:
    """Use the cluster ``spec.name`` when reuse is asked and it exists; else create it.

    This process becomes a holder of the cluster's ownership record (when the harness
    made the cluster, also when it is used as ``existing`` through the harness's own
    kubeconfig), and ``run_id``, when given, is registered as a live run, so that
    ``helm-harness cluster sweep`` leaves both alone while this process runs."""
    from harness.clusters import records

    with cluster_lock(provider, spec.name, timeout=CLUSTER_LOCK_TIMEOUT + spec.wait_seconds):
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
    with cluster_lock(provider, info.name) as lock:
        if info.created and not keep:
            provider.delete(info.name)
            if lock is not None:
                lock.unlink(missing_ok=True)  # the cluster is gone; waiters take a new file
            return True
        for record_provider, record_name in _records_of(provider, info):
            records.unhold_cluster(record_provider, record_name, run_id=run_id)
    return False


@contextmanager
def cluster_lock(
    provider: ClusterProvider, name: str, *, timeout: float = CLUSTER_LOCK_TIMEOUT
) -> Iterator[Path | None]:
    """One process at a time finds, creates, holds or deletes the cluster ``name``: two
    runs with ``--reuse-cluster`` that start together would otherwise both find no cluster
    and both create it (the second kwokctl failing, and its clean-up deleting the first's
    cluster). The second waits here until the first's cluster is up, then reuses it; after
    ``timeout`` seconds it gives up with a :class:`ClusterError` saying what holds the lock.

    One lock file per cluster, ``<cache>/locks/clusters/<provider>-<name>.lock``, yielded
    to its holder; :func:`release` removes it with the cluster. None for ``existing``
    clusters, which are never created."""
    if provider.name == "existing":
        yield None
        return
    from harness.clusters import records

    path = records.cluster_lock_path(provider.name, name)
    purpose = f"find, create or delete {provider.name} cluster {name}"
    with records.file_lock(
        path, timeout=timeout, purpose=purpose, provider=provider.name, name=name
    ) as held:
        yield held


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
    "release",
]
