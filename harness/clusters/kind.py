"""Clusters made by the ``kind`` CLI: Kubernetes nodes as Docker containers.

Every call goes through :meth:`KindProvider._kind` (argv lists, never a shell). The
cluster's kubeconfig is written to the harness's own file (``--kubeconfig``), never to
``~/.kube/config``. kind cannot label a cluster, so who made it is recorded in the
harness's state files (:mod:`harness.clusters.records`), which ``cluster sweep`` reads.

The node image: ``--kind-image IMAGE`` (``$HELM_HARNESS_KIND_IMAGE``), else the image the
kind config file names for its nodes (kind reads it; :func:`config_image` reports it), else
``--k8s-version``'s image, else kind's default. For ``--k8s-version``, kind publishes node
images per kind release and guarantees only those: the ones built for kind
:data:`KIND_VERSION` are pinned here by digest (a minor version, e.g. ``1.36``, means its
newest patch below); any other patch version is used as the plain tag
``kindest/node:vX.Y.Z``, which kind supports on a best effort basis.
"""

from __future__ import annotations

import builtins
import functools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

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
from harness.errors import (
    ClusterError,
    CommandError,
    MissingBinariesError,
    UsageError,
)
from harness.units import normalize_k8s_version

KIND_VERSION = "v0.33.0"
KIND_INSTALL_HINT = (
    f"go install sigs.k8s.io/kind@{KIND_VERSION} (or see https://kind.sigs.k8s.io/docs/user/"
    "quick-start/#installation); kind also needs a running Docker engine"
)
# The node images released with kind v0.33.0 (its release notes), by digest as kind asks.
NODE_DIGESTS = {
    "v1.37.0": "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "v1.36.4": "sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "v1.35.8": "sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
    "v1.34.11": "sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
}
COMMAND_TIMEOUT = 600.0  # on top of the wait: pulling a node image takes a while


def node_image(version: str) -> str:
    """The kind node image for a Kubernetes version (see the module docstring)."""
    try:
        wanted = normalize_k8s_version(version)
    except ValueError as exc:
        raise UsageError(f"--k8s-version: {exc}") from exc
    if "-k3s" in wanted:
        raise UsageError(f"--k8s-version {version}: a k3s build; kind wants vX.Y or vX.Y.Z")
    if wanted in NODE_DIGESTS:
        return f"kindest/node:{wanted}@{NODE_DIGESTS[wanted]}"
    if wanted.count(".") == 2:
        return f"kindest/node:{wanted}"
    patches = [v for v in NODE_DIGESTS if v.startswith(wanted + ".")]
    if not patches:
        known = ", ".join(sorted({v.rsplit(".", 1)[0] for v in NODE_DIGESTS}))
        raise UsageError(
            f"--k8s-version {version}: kind {KIND_VERSION} has no node image for it "
            f"(it has {known}); give a full version, e.g. {wanted}.0, to try kindest/node:<it>"
        )
    newest = max(patches, key=lambda v: int(v.rsplit(".", 1)[1]))
    return f"kindest/node:{newest}@{NODE_DIGESTS[newest]}"


class KindProvider:
    """``kind create/get/delete cluster``, ``kind get kubeconfig``, ``kind load``."""

    name = "kind"

    # -- the one place kind is called -----------------------------------------------------

    def _kind(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self._binary()), *args]
        return tools.run_command(argv, timeout=timeout, check=check)

    def _binary(self) -> Path:
        found = find_kind()
        if found is None:
            raise MissingBinariesError(["kind"], KIND_INSTALL_HINT)
        return found

    # -- ClusterProvider ------------------------------------------------------------------

    def check(self) -> None:
        self._binary()

    def list(self) -> list[str]:
        # "No kind clusters found." goes to stderr; stdout holds only names.
        out = self._kind("get", "clusters").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def exists(self, name: str) -> bool:
        return name in self.list()

    def create(self, spec: ClusterSpec) -> ClusterInfo:
        self.check()
        if self.exists(spec.name):
            raise name_taken(self.name, spec.name)
        argv = self.create_argv(spec)
        kubeconfig = kubeconfig_path(self.name, spec.name)
        records.record_cluster(self.name, spec.name, kubeconfig=kubeconfig)
        removed = functools.partial(self._removed, spec.name, spec.logs_dir)
        with removed_on_failure(self.name, spec.name, "kind", removed):
            self._kind(*argv, timeout=spec.wait_seconds + COMMAND_TIMEOUT)
            return self.get(spec.name, created=True)

    def create_argv(self, spec: ClusterSpec) -> builtins.list[str]:
        """``kind create cluster`` arguments for ``spec`` (without the binary)."""
        config = cluster_config(spec)
        argv = [
            "create",
            "cluster",
            "--name",
            spec.name,
            "--config",
            str(config),
            "--kubeconfig",
            str(kubeconfig_path(self.name, spec.name)),
            "--wait",
            f"{int(spec.wait_seconds)}s",
        ]
        if spec.image and spec.k8s_version:
            raise UsageError(
                f"--kind-image {spec.image} and --k8s-version {spec.k8s_version}: give one "
                "(the node image decides the Kubernetes version)"
            )
        configured = config_image(spec.config)
        if spec.k8s_version and configured:
            raise UsageError(
                f"--k8s-version {spec.k8s_version}: the kind config {spec.config} names the "
                f"node image {configured}, which --k8s-version would replace: give one"
            )
        if spec.image:
            argv += ["--image", spec.image]
        elif spec.k8s_version:
            argv += ["--image", node_image(spec.k8s_version)]
        return argv

    def get(self, name: str, *, created: bool = False) -> ClusterInfo:
        if not self.exists(name):
            raise ClusterError(
                f"no kind cluster named {name!r} (kind get clusters)",
                provider=self.name,
                name=name,
            )
        text = self._kind("get", "kubeconfig", "--name", name).stdout
        kubeconfig = write_private(kubeconfig_path(self.name, name), text)
        return ClusterInfo(
            provider=self.name,
            name=name,
            kubeconfig=kubeconfig,
            context=f"kind-{name}",
            created=created,
        )

    def delete(self, name: str) -> None:
        if self.exists(name):
            self._kind(*self._delete_argv(name))
        self._remove_files(name)

    def load_images(self, name: str, images: Sequence[str]) -> None:
        """Load images from the local Docker engine into every node of cluster ``name``."""
        if not images:
            return
        try:
            self._kind("load", "docker-image", "--name", name, *images)
        except CommandError as exc:
            raise ClusterError(
                f"kind could not load {', '.join(images)} into cluster {name!r}: {exc.stderr}",
                provider=self.name,
                name=name,
            ) from exc

    # -- helpers --------------------------------------------------------------------------

    def _delete_argv(self, name: str) -> builtins.list[str]:
        # kind edits the kubeconfig it is given: the harness's own copy, never ~/.kube/config.
        own = kubeconfig_path(self.name, name)
        return ["delete", "cluster", "--name", name, "--kubeconfig", str(own)]

    def _removed(self, name: str, logs_dir: Path | None) -> str:
        evidence = self._export_logs(name, logs_dir)
        self._remove(name)
        return evidence

    def _export_logs(self, name: str, logs_dir: Path | None) -> str:
        """``kind export logs`` of a cluster whose create failed (the nodes' journals,
        kubelet and containerd logs), before it is removed; the message names the folder."""
        if logs_dir is None or not self.exists(name):
            return ""
        target = logs_dir / f"kind-{name}-logs"
        try:
            self._kind("export", "logs", str(target), "--name", name, timeout=120)
        except Exception as exc:  # evidence is best effort: the create failed already
            return f"\n(kind export logs failed: {exc})"
        return f"\nthe nodes' logs (kind export logs): {target}"

    def _remove(self, name: str) -> None:
        """Delete whatever a failed create left (kind deletes its nodes itself unless
        --retain, but a timeout or an interrupt may leave them)."""
        try:
            self._kind(*self._delete_argv(name), check=False)
        finally:
            self._remove_files(name)

    def _remove_files(self, name: str) -> None:
        kubeconfig_path(self.name, name).unlink(missing_ok=True)
        kubeconfig_path(self.name, name).with_suffix(".config.yaml").unlink(missing_ok=True)
        records.forget_cluster(self.name, name)


def find_kind() -> Path | None:
    """kind on PATH, else the one ``helm-harness tools install --kind`` built."""
    found = shutil.which("kind")
    if found:
        return Path(found)
    cached = tools.bin_dir() / "kind"
    return cached if cached.is_file() else None


def cluster_config(spec: ClusterSpec) -> Path:
    """The kind config to create ``spec`` with: the user's (or the harness's default), and
    on a cgroup v1 host a copy that lets the kubelet run there (Kubernetes 1.35 and later
    refuse cgroup v1 unless ``failCgroupV1: false``)."""
    config = spec.config or tools.data_file("kind", "default.yaml")
    if not host_is_cgroup_v1():
        return config
    try:
        data = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{config}: not a readable kind config ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{config}: a kind config is a mapping (kind: Cluster)")
    patches = list(data.get("kubeadmConfigPatches") or [])
    if not any("failCgroupV1" in str(patch) for patch in patches):
        patches.append(CGROUP_V1_PATCH)
    data["kubeadmConfigPatches"] = patches
    derived = kubeconfig_path("kind", spec.name).with_suffix(".config.yaml")
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(
        "# helm-harness: "
        + str(config)
        + " plus failCgroupV1: false (cgroup v1 host)\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return derived


CGROUP_V1_PATCH = "kind: KubeletConfiguration\nfailCgroupV1: false\n"


def host_is_cgroup_v1() -> bool:
    """Whether this host mounts cgroup v1 (no unified hierarchy at /sys/fs/cgroup)."""
    root = Path("/sys/fs/cgroup")
    return root.is_dir() and not (root / "cgroup.controllers").exists()


def config_image(config: Path | None) -> str | None:
    """The node image a kind config file names (its first node's ``image``), if any."""
    if config is None:
        return None
    try:
        data: Any = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError):
        return None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and node.get("image"):
            return str(node["image"])
    return None
