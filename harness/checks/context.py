"""What a check gets to work with: the installed app and clients for its cluster."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiClient

from harness.helm.client import Helm
from harness.kube.resources import Resolver, ResourceType, lister
from harness.suite.model import App, Check, Suite

if TYPE_CHECKING:
    from harness.checks.steps import Caught

DEFAULT_CHECK_TIMEOUT = 60.0


@dataclass
class AppContext:
    suite: Suite
    app: App
    namespace: str
    api: ApiClient
    helm: Helm
    manifest: list[dict[str, Any]] = field(default_factory=list)  # the release's objects
    hooks: list[dict[str, Any]] = field(default_factory=list)  # its hook objects
    crds: list[dict[str, Any]] = field(default_factory=list)  # from the chart's crds/
    deadline: float = 0.0  # monotonic: install + readiness must be done by then
    simulated: bool = False  # kwok: pods are simulated, no container answers or logs
    metrics: dict[str, Any] | None = None  # the last metric snapshot (harness.report.snapshots)
    metrics_source: str = "auto"  # where snapshots read figures: auto, kubelet or metrics-api
    missing_crds: set[str] = field(default_factory=set)  # crds/ an upgrade left out (crd-drift)
    # disrupt checks: by check id, the disruption and the seconds the app took to recover
    recoveries: dict[str, dict[str, Any]] = field(default_factory=dict)
    # by check id: what its catch steps collected when it failed (harness.checks.steps)
    caught: dict[str, list[Caught]] = field(default_factory=dict)
    # apply checks: what they applied outside the app's namespace (cluster-scoped objects,
    # other namespaces), as {apiVersion, kind, name, namespace}, for the app's teardown
    applied: list[dict[str, str]] = field(default_factory=list)

    @cached_property
    def resolver(self) -> Resolver:
        return Resolver(self.api)

    @property
    def release(self) -> str:
        return self.app.release

    def timeout_for(self, check: Check, default: float = DEFAULT_CHECK_TIMEOUT) -> float:
        """The check's own timeout, else ``default``; never below one second."""
        return max(check.timeout if check.timeout is not None else default, 1.0)

    def remaining(self) -> float:
        """Seconds left of the app's install + readiness deadline (at least one)."""
        return max(self.deadline - time.monotonic(), 1.0)

    def lister_for(self, rtype: ResourceType) -> Any:
        return lister(self.api, rtype)

    def objects_of(self, *kinds: str) -> list[dict[str, Any]]:
        """The release's rendered objects of the given kinds."""
        return [obj for obj in self.manifest if obj.get("kind") in kinds]

    def namespace_of(self, obj: dict[str, Any]) -> str:
        return str((obj.get("metadata") or {}).get("namespace") or self.namespace)

    def release_pods(self) -> list[dict[str, Any]]:
        """Pods in the app's namespace that are not Helm hook or test pods."""
        pods = self.lister_for(self.resolver.by_name("pods"))(namespace=self.namespace)["items"]
        return [
            pod
            for pod in pods
            if "helm.sh/hook" not in ((pod.get("metadata") or {}).get("annotations") or {})
        ]
