"""helm-harness: Helm charts deployed on throwaway clusters and proved healthy, as pytest items."""

from __future__ import annotations

from harness.clusters.base import ClusterInfo, ClusterProvider, ClusterSpec
from harness.errors import (
    ClusterError,
    ClusterExistsError,
    CommandError,
    HarnessError,
    HelmError,
    MissingBinariesError,
    UsageError,
    WaitTimeout,
)
from harness.helm.client import Helm

__version__ = "0.1.0"

__all__ = [
    "ClusterError",
    "ClusterExistsError",
    "ClusterInfo",
    "ClusterProvider",
    "ClusterSpec",
    "CommandError",
    "HarnessError",
    "Helm",
    "HelmError",
    "MissingBinariesError",
    "UsageError",
    "WaitTimeout",
    "__version__",
]
