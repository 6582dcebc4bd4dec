"""A k3s cluster in one Docker container, through testcontainers' ``K3SContainer``.

Like any testcontainers resource it lives with the process that started it: testcontainers'
reaper (Ryuk) removes the container when that process ends, unless
``TESTCONTAINERS_RYUK_DISABLED=true``. So ``--keep-cluster`` and ``--reuse-cluster`` across
runs want kind or k3d; within a run, ``create`` starts the container (and stops it again
if the start fails), ``delete`` stops it.

The container carries the Docker labels ``app.kubernetes.io/managed-by=helm-harness``,
``helm-harness.io/provider=k3s`` and ``helm-harness.io/cluster=<name>`` beside
testcontainers' own session labels, so another process can find it (``list``, ``delete``,
``cluster sweep``). Its kubeconfig (``container.config_yaml()``) is written, mode 0600, to
the harness's kubeconfig folder. Starting one needs a Docker engine; :meth:`check` says
clearly when none answers.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

from harness.clusters import records
from harness.clusters.base import (
    ClusterInfo,
    ClusterSpec,
    docker_engine_problem,
    kubeconfig_path,
    write_private,
)
from harness.errors import ClusterError, ClusterExistsError, UsageError
from harness.units import normalize_k8s_version

DEFAULT_IMAGE = "rancher/k3s:v1.35.5-k3s1"
LABEL_OWNER = "app.kubernetes.io/managed-by"
LABEL_PROVIDER = "helm-harness.io/provider"
LABEL_CLUSTER = "helm-harness.io/cluster"
LABEL_PID = "helm-harness.io/pid"


def k3s_image(version: str) -> str:
    """``rancher/k3s:vX.Y.Z-k3s1`` for ``vX.Y.Z`` (``vX.Y.Z-k3sN`` picks that build).
    k3s images are tagged per patch release, so a minor version alone is refused."""
    try:
        wanted = normalize_k8s_version(version)
    except ValueError as exc:
        raise UsageError(f"--k8s-version: {exc}") from exc
    if wanted.count(".") < 2:
        raise UsageError(
            f"--k8s-version {version}: k3s images are tagged per patch release; give one, "
            f"e.g. {wanted}.1 (rancher/k3s:{wanted}.1-k3s1)"
        )
    if "-k3s" not in wanted:
        wanted += "-k3s1"
    return f"rancher/k3s:{wanted}"


class K3sProvider:
    """testcontainers' ``K3SContainer``: one privileged k3s container per cluster."""

    name = "k3s"

    def __init__(self) -> None:
        self._containers: dict[str, Any] = {}  # the containers this process started

    # -- ClusterProvider ------------------------------------------------------------------

    def check(self) -> None:
        problem = docker_engine_problem()
        if problem is not None:
            raise ClusterError(
                f"--cluster k3s needs a Docker engine: {problem}. Start Docker (or point "
                "DOCKER_HOST at one), or use --cluster kwok, which needs none.",
                provider=self.name,
            )

    def list(self) -> list[str]:
        names = set(self._containers)
        for container in self._labelled():
            names.add(str(container.labels.get(LABEL_CLUSTER, "")))
        return sorted(name for name in names if name)

    def exists(self, name: str) -> bool:
        return name in self._containers or bool(self._labelled(name))

    def create(self, spec: ClusterSpec) -> ClusterInfo:
        self.check()
        if self.exists(spec.name):
            raise ClusterExistsError(
                f"a k3s container for cluster {spec.name!r} already runs; pick another "
                "--cluster-name or delete it with "
                f"'helm-harness cluster down --cluster k3s --name {spec.name}'",
                provider=self.name,
                name=spec.name,
            )
        from testcontainers.community import k3s as tc_k3s

        image = k3s_image(spec.k8s_version) if spec.k8s_version else DEFAULT_IMAGE
        kubeconfig = kubeconfig_path(self.name, spec.name)
        records.record_cluster(
            self.name, spec.name, kubeconfig=kubeconfig, details={"image": image}
        )
        container = None
        try:
            container = tc_k3s.K3SContainer(image=image)
            # K3SContainer sets privileged through with_kwargs, which replaces: say both.
            container.with_kwargs(privileged=True, labels=self.labels(spec.name))
            container.start()
            self._containers[spec.name] = container
            write_private(kubeconfig, container.config_yaml())
            info = self._info(spec.name, created=True)
            from harness.clusters.kwok import wait_usable

            wait_usable(info, nodes=1, timeout=spec.wait_seconds)
            return info
        except BaseException as exc:  # KeyboardInterrupt too: leave nothing behind
            self._containers.pop(spec.name, None)
            if container is not None:
                _stop(container)
            self._remove_files(spec.name)
            if isinstance(exc, (ClusterError, KeyboardInterrupt, SystemExit)):
                raise
            # testcontainers' and Docker's errors, and a control plane that never answered
            raise ClusterError(
                f"the k3s container for cluster {spec.name!r} did not start: {exc}",
                provider=self.name,
                name=spec.name,
            ) from exc

    def labels(self, name: str) -> dict[str, str]:
        return {
            LABEL_OWNER: "helm-harness",
            LABEL_PROVIDER: self.name,
            LABEL_CLUSTER: name,
            LABEL_PID: str(os.getpid()),
        }

    def get(self, name: str) -> ClusterInfo:
        if not self.exists(name) or not kubeconfig_path(self.name, name).is_file():
            raise ClusterError(
                f"no k3s cluster named {name!r} that this harness started",
                provider=self.name,
                name=name,
            )
        return self._info(name, created=False)

    def delete(self, name: str) -> None:
        container = self._containers.pop(name, None)
        if container is not None:
            _stop(container)
        elif records.read_cluster(self.name, name) is not None:
            problem = docker_engine_problem()
            if problem is not None:  # keep the record: the container may still run
                raise ClusterError(
                    f"cannot delete k3s cluster {name!r}: {problem}",
                    provider=self.name,
                    name=name,
                )
        for leftover in self._labelled(name):
            leftover.remove(force=True, v=True)
        self._remove_files(name)

    # -- helpers --------------------------------------------------------------------------

    def _info(self, name: str, *, created: bool) -> ClusterInfo:
        return ClusterInfo(
            provider=self.name,
            name=name,
            kubeconfig=kubeconfig_path(self.name, name),
            context=None,
            created=created,
        )

    def _labelled(self, name: str | None = None) -> builtins.list[Any]:
        """Containers of this provider (of cluster ``name``) that Docker knows; none when
        no Docker engine answers."""
        if docker_engine_problem() is not None:
            return []
        import docker

        wanted = [f"{LABEL_OWNER}=helm-harness", f"{LABEL_PROVIDER}={self.name}"]
        if name is not None:
            wanted.append(f"{LABEL_CLUSTER}={name}")
        engine = docker.from_env()
        try:
            return list(engine.containers.list(all=True, filters={"label": wanted}))
        finally:
            engine.close()

    def _remove_files(self, name: str) -> None:
        kubeconfig_path(self.name, name).unlink(missing_ok=True)
        records.forget_cluster(self.name, name)


def _stop(container: Any) -> None:
    try:
        container.stop()
    except Exception:  # already gone, or Docker went away: nothing more to stop
        pass
