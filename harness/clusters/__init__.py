"""Cluster providers: one module each, behind :class:`~harness.clusters.base.ClusterProvider`,
and the lifecycle every caller (the pytest plugin, ``helm-harness cluster``) shares."""

from __future__ import annotations

from pathlib import Path

from harness.clusters.base import ClusterInfo, ClusterProvider, ClusterSpec
from harness.errors import MissingBinariesError, UsageError

PROVIDERS = ("auto", "kwok", "existing")


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
    raise UsageError(f"unknown cluster provider {name!r}; choose one of: {', '.join(PROVIDERS)}")


def _pick_auto(kubeconfig: Path | None) -> str:
    if kubeconfig is not None:
        return "existing"
    from harness.clusters.kwok import KwokProvider

    try:
        KwokProvider().check()
    except MissingBinariesError as exc:
        raise UsageError(
            "--cluster auto found no cluster to use. Tried: existing (no --kubeconfig given); "
            f"kwok ({exc}). Pass --kubeconfig FILE, or run 'helm-harness tools install'."
        ) from exc
    return "kwok"


def acquire(provider: ClusterProvider, spec: ClusterSpec, *, reuse: bool) -> ClusterInfo:
    """Use the cluster ``spec.name`` when reuse is asked and it exists; else create it."""
    if reuse and provider.exists(spec.name):
        return provider.get(spec.name)
    return provider.create(spec)


def release(provider: ClusterProvider, info: ClusterInfo, *, keep: bool) -> bool:
    """Delete the cluster if this run created it and nobody asked to keep it."""
    if info.created and not keep:
        provider.delete(info.name)
        return True
    return False


__all__ = ["ClusterInfo", "ClusterProvider", "ClusterSpec", "acquire", "get_provider", "release"]
