"""What every cluster provider offers, and the facts about a running cluster."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.errors import ClusterError, ClusterExistsError, HarnessError
from harness.files import write_atomic


@dataclass(frozen=True)
class ClusterInfo:
    """A cluster the harness can talk to."""

    provider: str
    name: str
    kubeconfig: Path
    context: str | None = None
    created: bool = False  # this run created it (so this run may delete it)
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterSpec:
    """What the user asked for; providers ignore what does not apply to them."""

    name: str
    config: Path | None = None
    k8s_version: str | None = None
    nodes: int = 1
    wait_seconds: float = 120.0
    image: str | None = None  # the node image (kind --image); None: from k8s_version or config
    logs_dir: Path | None = None  # where a failed create leaves the provider's logs


@runtime_checkable
class ClusterProvider(Protocol):
    """Creates, finds and deletes clusters of one kind (kind, k3d, k3s, kwok, existing)."""

    name: str

    def check(self) -> None:
        """Raise MissingBinariesError (or ClusterError) when this provider cannot work here."""

    def exists(self, name: str) -> bool:
        """Whether a cluster of this name exists."""

    def list(self) -> list[str]:
        """Names of the clusters this provider knows."""

    def create(self, spec: ClusterSpec) -> ClusterInfo:
        """Create and wait until usable; ClusterExistsError if the name is taken."""

    def get(self, name: str) -> ClusterInfo:
        """The existing cluster ``name``; ClusterError if there is none."""

    def delete(self, name: str) -> None:
        """Delete the cluster and everything it started; no error if it is gone."""


def kubeconfig_path(provider: str, name: str) -> Path:
    """Where the harness keeps the kubeconfig of a cluster it manages."""
    from harness.tools import cache_dir

    return cache_dir() / "kubeconfigs" / f"{provider}-{name}.yaml"


def write_private(path: Path, text: str) -> Path:
    """Write a file only its owner can read (kubeconfigs hold credentials), whole."""
    return write_atomic(path, text, private=True)


def name_taken(provider: str, name: str) -> ClusterExistsError:
    """The error for a create whose cluster name is in use."""
    return ClusterExistsError(
        f"a {provider} cluster named {name!r} already exists; pick another --cluster-name, "
        "pass --reuse-cluster to use it, or delete it with "
        f"'helm-harness cluster down --cluster {provider} --name {name}'",
        provider=provider,
        name=name,
    )


@contextmanager
def removed_on_failure(
    provider: str, name: str, tool: str, remove: Callable[[], str]
) -> Iterator[None]:
    """Around a cluster's creation: on any failure, KeyboardInterrupt too, ``remove()``
    what was made (it returns evidence for the message, or ""), and turn the harness's
    errors into a ClusterError naming the tool."""
    try:
        yield
    except BaseException as exc:
        evidence = remove()
        if isinstance(exc, HarnessError) and not isinstance(exc, ClusterError):
            raise ClusterError(
                f"{tool} could not create cluster {name!r}: {exc}{evidence}",
                provider=provider,
                name=name,
            ) from exc
        raise


DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"
DOCKER_PING_TIMEOUT = 5


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
