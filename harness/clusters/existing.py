"""A cluster the user already has: a kubeconfig (and optionally a context). Never created
or deleted by the harness."""

from __future__ import annotations

from pathlib import Path

from harness.clusters.base import ClusterInfo, ClusterSpec
from harness.errors import UsageError


class ExistingProvider:
    name = "existing"

    def __init__(self, kubeconfig: Path, context: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.context = context

    def check(self) -> None:
        if not self.kubeconfig.is_file():
            raise UsageError(f"--kubeconfig {self.kubeconfig}: no such file")

    def exists(self, name: str) -> bool:
        return self.kubeconfig.is_file()

    def list(self) -> list[str]:
        return [self.context or "current-context"] if self.kubeconfig.is_file() else []

    def create(self, spec: ClusterSpec) -> ClusterInfo:
        return self.get(spec.name)

    def get(self, name: str) -> ClusterInfo:
        self.check()
        return ClusterInfo(
            provider=self.name,
            name=self.context or name,
            kubeconfig=self.kubeconfig,
            context=self.context,
            created=False,
        )

    def delete(self, name: str) -> None:
        """An existing cluster belongs to the user: never deleted."""
