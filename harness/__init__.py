"""helm-harness: Helm charts deployed on throwaway clusters and proved healthy, as pytest items.

The public API is what ``__all__`` lists. Names are resolved on first use (PEP 562), so
importing the pytest plugin, which every pytest run in the environment does, does not load
the Helm and Kubernetes clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module defining it
_EXPORTS = {
    "ClusterError": "harness.errors",
    "ClusterExistsError": "harness.errors",
    "CommandError": "harness.errors",
    "HarnessError": "harness.errors",
    "HelmError": "harness.errors",
    "MissingBinariesError": "harness.errors",
    "UsageError": "harness.errors",
    "WaitTimeout": "harness.errors",
    "ClusterInfo": "harness.clusters.base",
    "ClusterProvider": "harness.clusters.base",
    "ClusterSpec": "harness.clusters.base",
    "Helm": "harness.helm.client",
}

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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
