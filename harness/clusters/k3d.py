"""Clusters made by the ``k3d`` CLI: k3s nodes as Docker containers.

Every call goes through :meth:`K3dProvider._k3d` (argv lists, never a shell), with
``KUBECONFIG`` pointed at the harness's own file for the cluster: ``k3d cluster create``
is told not to touch the default kubeconfig, and ``k3d cluster delete`` edits whichever
file ``KUBECONFIG`` names, so ``~/.kube/config`` is never read or written.

The containers carry Docker labels (``--runtime-label``, k3d 5.3 and later):
``app.kubernetes.io/managed-by=helm-harness`` and ``helm-harness.io/cluster=<name>``;
ownership is also recorded in the harness's state files, which ``cluster sweep`` reads.
``--k8s-version vX.Y.Z`` selects ``rancher/k3s:vX.Y.Z-k3s1`` (see
:func:`harness.clusters.k3s.k3s_image`).
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness import tools
from harness.clusters import records
from harness.clusters.base import (
    ClusterInfo,
    ClusterSpec,
    kubeconfig_path,
    name_taken,
    removed_on_failure,
    write_private,
)
from harness.clusters.k3s import k3s_image
from harness.errors import (
    ClusterError,
    CommandError,
    MissingBinariesError,
)

K3D_VERSION = "v5.9.0"
K3D_INSTALL_HINT = (
    f"the k3d {K3D_VERSION} release (https://k3d.io/stable/#installation: "
    f"curl -s https://raw.githubusercontent.com/k3d-io/k3d/main/install.sh | "
    f"TAG={K3D_VERSION} bash); k3d also needs a running Docker engine"
)
COMMAND_TIMEOUT = 600.0  # on top of the wait: pulling the k3s image takes a while
RUNTIME_LABELS = ("app.kubernetes.io/managed-by=helm-harness",)


class K3dProvider:
    """``k3d cluster create/list/delete``, ``k3d kubeconfig get``, ``k3d image import``."""

    name = "k3d"

    # -- the one place k3d is called ------------------------------------------------------

    def _k3d(
        self,
        *args: str,
        kubeconfig: Path,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self._binary()), *args]
        env = dict(os.environ, KUBECONFIG=str(kubeconfig))
        return tools.run_command(argv, env=env, timeout=timeout, check=check)

    def _binary(self) -> Path:
        found = shutil.which("k3d")
        if found is None:
            raise MissingBinariesError(["k3d"], K3D_INSTALL_HINT)
        return Path(found)

    # -- ClusterProvider ------------------------------------------------------------------

    def check(self) -> None:
        self._binary()

    def list(self) -> list[str]:
        # The JSON holds each cluster's join token: read the names, never show the rest.
        out = self._k3d("cluster", "list", "-o", "json", kubeconfig=_scratch()).stdout
        try:
            clusters = json.loads(out or "[]")
        except ValueError as exc:
            raise ClusterError("k3d cluster list -o json printed no JSON") from exc
        return [str(c["name"]) for c in clusters if isinstance(c, dict) and c.get("name")]

    def exists(self, name: str) -> bool:
        return name in self.list()

    def create(self, spec: ClusterSpec) -> ClusterInfo:
        self.check()
        if self.exists(spec.name):
            raise name_taken(self.name, spec.name)
        argv = self.create_argv(spec)
        kubeconfig = kubeconfig_path(self.name, spec.name)
        records.record_cluster(self.name, spec.name, kubeconfig=kubeconfig)
        with removed_on_failure(self.name, spec.name, "k3d", lambda: self._removed(spec.name)):
            self._k3d(*argv, kubeconfig=kubeconfig, timeout=spec.wait_seconds + COMMAND_TIMEOUT)
            return self.get(spec.name, created=True)

    def create_argv(self, spec: ClusterSpec) -> builtins.list[str]:
        """``k3d cluster create`` arguments for ``spec`` (without the binary)."""
        config = spec.config or tools.data_file("k3d", "default.yaml")
        argv = [
            "cluster",
            "create",
            spec.name,
            "--config",
            str(config),
            "--wait",
            "--timeout",
            f"{int(spec.wait_seconds)}s",
            "--kubeconfig-update-default=false",
            "--kubeconfig-switch-context=false",
        ]
        for label in (*RUNTIME_LABELS, f"helm-harness.io/cluster={spec.name}"):
            argv += ["--runtime-label", f"{label}@all"]
        if spec.k8s_version:
            argv += ["--image", k3s_image(spec.k8s_version)]
        return argv

    def get(self, name: str, *, created: bool = False) -> ClusterInfo:
        if not self.exists(name):
            raise ClusterError(
                f"no k3d cluster named {name!r} (k3d cluster list)",
                provider=self.name,
                name=name,
            )
        own = kubeconfig_path(self.name, name)
        text = self._k3d("kubeconfig", "get", name, kubeconfig=own).stdout
        kubeconfig = write_private(own, text)
        return ClusterInfo(
            provider=self.name,
            name=name,
            kubeconfig=kubeconfig,
            context=f"k3d-{name}",
            created=created,
        )

    def delete(self, name: str) -> None:
        if self.exists(name):
            self._k3d("cluster", "delete", name, kubeconfig=self._own_kubeconfig(name))
        self._remove_files(name)

    def load_images(self, name: str, images: Sequence[str]) -> None:
        """Import images from the local Docker engine into cluster ``name``."""
        if not images:
            return
        try:
            self._k3d("image", "import", *images, "-c", name, kubeconfig=_scratch())
        except CommandError as exc:
            raise ClusterError(
                f"k3d could not import {', '.join(images)} into cluster {name!r}: {exc.stderr}",
                provider=self.name,
                name=name,
            ) from exc

    # -- helpers --------------------------------------------------------------------------

    def _own_kubeconfig(self, name: str) -> Path:
        """The harness's kubeconfig of the cluster, made (empty, private) if missing, for
        k3d to edit instead of the user's."""
        own = kubeconfig_path(self.name, name)
        if not own.exists():
            write_private(own, "")
        return own

    def _removed(self, name: str) -> str:
        self._remove(name)
        return ""

    def _remove(self, name: str) -> None:
        try:
            self._k3d("cluster", "delete", name, kubeconfig=self._own_kubeconfig(name), check=False)
        finally:
            self._remove_files(name)

    def _remove_files(self, name: str) -> None:
        kubeconfig_path(self.name, name).unlink(missing_ok=True)
        records.forget_cluster(self.name, name)


def _scratch() -> Path:
    """A kubeconfig path for k3d commands that name no cluster (k3d reads none of it)."""
    return kubeconfig_path("k3d", "_scratch")
