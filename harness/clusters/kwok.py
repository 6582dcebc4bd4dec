"""Clusters made by kwokctl with the ``binary`` runtime: real etcd, kube-apiserver,
kube-controller-manager and kube-scheduler as local processes, with simulated nodes and
pods (kwok-controller). No container engine is needed.

The kwok configuration is put together per cluster: kwok's own default stages (kept in the
binary cache by the installer), the harness's stages (``harness/_data/kwok/stages.yaml``), an
optional pod start-up delay on the ``pod-ready`` stage, and the user's ``--cluster-config``.

kwok's port-forward and logs configurations (``ClusterPortForward``, ``PortForward``,
``ClusterLogs``, ``Logs``) are enabled as custom resources (``kwokctl --enable-crds``), so
tests can point a pod's port or logs at a local server or file while the cluster runs
(:mod:`harness.clusters.kwok_sim`). A kind that the user's ``--cluster-config`` gives statically
stays static: kwokctl takes each kind from one source only, and would drop the file's
documents of a kind enabled as a resource.

When metrics-server is in the binary cache (``helm-harness tools install`` builds it, and
keeps the APIService and Service kwokctl registers for it), the cluster runs it, so the
metrics.k8s.io API answers as on a real cluster. It scrapes every 10 s (its minimum; kwok's
default is 15 s) the kubelet resource metrics kwok-controller serves for the nodes (whose
InternalIP is then loopback) from kwok's ``Metric`` config, adjusted so that a pod shows
after two scrapes (10-20 s). A container's usage comes from a ``ResourceUsage`` named like
its pod (enabled as a custom resource, so tests set figures while the cluster runs), else
from kwok's default ``ClusterResourceUsage``: the pod annotations
``kwok.x-k8s.io/usage-cpu`` and ``kwok.x-k8s.io/usage-memory`` (default 1m and 1Mi),
applied to each container. Without the binary the cluster runs without metrics-server, and
``ClusterInfo.details["metrics"]`` says so.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    ToolError,
    UsageError,
)
from harness.units import normalize_k8s_version

DEFAULT_STAGES = (
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
)
KWOKCTL_TIMEOUT = 300.0
CREATE_LOCK_TIMEOUT = 2 * KWOKCTL_TIMEOUT  # s: the creates of other runs ahead
RUNTIME_CRDS = ("ClusterPortForward", "PortForward", "ClusterLogs", "Logs")
METRICS_CRDS = ("ResourceUsage",)  # only with metrics-server: usage figures per pod
# metrics-server's minimum resolution is 10s, and it must exceed the kubelet timeout by 10%.
METRICS_SERVER_ARGS = ("metric-resolution=10s", "kubelet-request-timeout=5s")
# metrics-server scrapes a node's InternalIP first (kwokctl's choice, which --extra-args
# cannot replace); kwok's documentation addresses (192.0.2.x) would not answer, loopback
# addresses reach kwok-controller's kubelet port.
NODE_IPS = '.nodeIPs=["127.0.0.1"]'
# What a real node advertises and kwok's node template leaves out: without
# ephemeral-storage, every pod that requests it (many charts' default resource presets)
# would be Unschedulable on kwok while it runs on kind.
NODE_RESOURCES = ('.allocatable["ephemeral-storage"]="100Gi"',)
# kwokctl registers metrics-server's APIService and Service from the release's manifest,
# downloaded once into its cache. The installer keeps those two objects beside the binary;
# they are placed in that cache, since these machines reach no GitHub.
METRICS_SERVER_MANIFEST = "metrics-server-manifest.yaml"
METRICS_SERVER_MANIFEST_URL = (
    "https://github.com/kubernetes-sigs/metrics-server/releases/download/"
    f"{tools.METRICS_SERVER_VERSION}/components.yaml"
)


class KwokProvider:
    """kwokctl ``--runtime binary``; ``pod_startup`` seconds (with up to ``pod_jitter``
    more, chosen at random per pod) before a pod turns Running and Ready."""

    name = "kwok"

    def __init__(self, *, pod_startup: float = 0.0, pod_jitter: float = 0.0) -> None:
        if pod_startup < 0 or pod_jitter < 0:
            raise ValueError("pod start-up delays must not be negative")
        self.pod_startup = pod_startup
        self.pod_jitter = pod_jitter

    # -- the one place kwokctl is called ------------------------------------------------

    def _kwokctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        binaries = tools.require_binaries(tools.KWOK_BINARIES)
        argv = [str(binaries["kwokctl"]), *args]
        env = dict(os.environ)
        env.setdefault("KWOK_KUBE_VERSION", tools.K8S_VERSION)
        env.setdefault("KWOK_METRICS_SERVER_VERSION", tools.METRICS_SERVER_VERSION)  # the URL
        # The cluster's own processes run in sessions of their own: `kwokctl delete`
        # stops them; run_command ends kwokctl and its helpers on a timeout or interrupt.
        return tools.run_command(argv, env=env, timeout=KWOKCTL_TIMEOUT, check=check)

    # -- ClusterProvider ------------------------------------------------------------------

    def check(self) -> None:
        tools.require_binaries(tools.KWOK_BINARIES)
        stages = tools.bin_dir() / "kwok-stages"
        if not all((stages / name).is_file() for name in DEFAULT_STAGES):
            raise ToolError(
                f"kwok's default stages are missing from {stages}; run: {tools.INSTALL_HINT}"
            )

    def list(self) -> list[str]:
        out = self._kwokctl("get", "clusters").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def exists(self, name: str) -> bool:
        return name in self.list()

    def workdir(self) -> Path:
        return Path(os.environ.get("KWOK_WORKDIR") or str(Path.home() / ".kwok"))

    def cluster_dir(self, name: str) -> Path:
        return self.workdir() / "clusters" / name

    def create(self, spec: ClusterSpec) -> ClusterInfo:
        check_k8s_version(spec.k8s_version)
        self.check()
        if self.exists(spec.name):
            raise name_taken(self.name, spec.name)
        binaries = tools.require_binaries(tools.KWOK_BINARIES)
        # ownership, for `helm-harness cluster sweep`; removed with the cluster's files
        records.record_cluster(
            self.name, spec.name, kubeconfig=kubeconfig_path(self.name, spec.name)
        )
        with tempfile.TemporaryDirectory(prefix="helm-harness-kwok-") as tmp:
            config = Path(tmp) / "stages.yaml"
            config.write_text(self.stages_yaml())
            argv = [
                "create",
                "cluster",
                "--name",
                spec.name,
                "--runtime",
                "binary",
                "--kubeconfig",
                "",
                "--kube-apiserver-binary",
                str(binaries["kube-apiserver"]),
                "--kube-controller-manager-binary",
                str(binaries["kube-controller-manager"]),
                "--kube-scheduler-binary",
                str(binaries["kube-scheduler"]),
                "--kwok-controller-binary",
                str(binaries["kwok"]),
                "--etcd-binary",
                str(binaries["etcd"]),
                "--wait",
                f"{int(spec.wait_seconds)}s",
                "--timeout",
                f"{int(spec.wait_seconds)}s",
                "-c",
                str(config),
            ]
            if spec.config is not None:
                argv += ["-c", str(spec.config)]
            metrics_server = _metrics_server()
            runtime_crds: tuple[str, ...] = RUNTIME_CRDS
            if metrics_server is not None:
                self._cache_metrics_server_manifest()
                if "Metric" not in _kinds_in(spec.config):
                    config.write_text(config.read_text() + _resource_metric_yaml())
                argv += ["--enable", "metrics-server"]
                argv += ["--metrics-server-binary", str(metrics_server)]
                for arg in METRICS_SERVER_ARGS:
                    argv += ["--extra-args", f"metrics-server={arg}"]
                runtime_crds += METRICS_CRDS
            crds = [kind for kind in runtime_crds if kind not in _kinds_in(spec.config)]
            if crds:
                argv += ["--enable-crds", ",".join(crds)]
            with removed_on_failure(
                self.name, spec.name, "kwokctl", lambda: self._removed(spec.name)
            ):
                with creation_lock(spec.name):
                    self._kwokctl(*argv)
                if spec.nodes > 0:
                    scale = ["scale", "node", "--replicas", str(spec.nodes), "--name", spec.name]
                    scale += [arg for param in NODE_RESOURCES for arg in ("--param", param)]
                    if metrics_server is not None:
                        scale += ["--param", NODE_IPS]
                    self._kwokctl(*scale)
                info = self.get(spec.name, created=True)
                wait_usable(info, nodes=spec.nodes, timeout=spec.wait_seconds)
        return info

    def get(self, name: str, *, created: bool = False) -> ClusterInfo:
        if not self.exists(name):
            raise ClusterError(
                f"no kwok cluster named {name!r} (kwokctl get clusters)",
                provider=self.name,
                name=name,
            )
        kubeconfig = self.write_kubeconfig(name)
        if not created and not _answers(kubeconfig):
            self.start(name)  # its processes are gone (a reboot): bring them back
        return ClusterInfo(
            provider=self.name,
            name=name,
            kubeconfig=kubeconfig,
            context=None,
            created=created,
            details={"workdir": str(self.cluster_dir(name)), "metrics": self._metrics(name)},
        )

    def _metrics(self, name: str) -> str:
        """Whether the cluster runs metrics-server, from the configuration kwokctl saved."""
        if "name: metrics-server" in _read(self.cluster_dir(name) / "kwok.yaml"):
            return "metrics-server (metrics.k8s.io)"
        if _metrics_server() is None:
            return f"none: metrics-server is not installed (build it with: {tools.INSTALL_HINT})"
        return "none: the cluster was created without metrics-server"

    def _cache_metrics_server_manifest(self) -> None:
        digest = hashlib.sha256(METRICS_SERVER_MANIFEST_URL.encode()).hexdigest()
        cached = self.workdir() / "cache" / "manifest" / f"{digest}.yaml"
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tools.bin_dir() / METRICS_SERVER_MANIFEST, cached)

    def start(self, name: str) -> None:
        """Start a stopped cluster (its processes were gone, e.g. after a reboot)."""
        self._kwokctl("start", "cluster", "--name", name)

    def delete(self, name: str) -> None:
        if self.exists(name):
            self._kwokctl(*self._delete_argv(name))
        self._remove_files(name)

    # -- helpers --------------------------------------------------------------------------

    def _removed(self, name: str) -> str:
        """Remove a cluster that failed to start; returns its components' last log lines."""
        evidence = self.log_tails(name)
        self._remove(name)
        return evidence

    def _remove(self, name: str) -> None:
        self._kwokctl(*self._delete_argv(name), check=False)
        self._remove_files(name)

    def log_tails(self, name: str, lines: int = 5) -> str:
        """The last lines of each component's log, for error messages."""
        parts = []
        for log_file in sorted((self.cluster_dir(name) / "logs").glob("*.log")):
            tail = log_file.read_text(errors="replace").strip().splitlines()[-lines:]
            if tail:
                parts.append(f"--- {log_file.stem} (last lines) ---\n" + "\n".join(tail))
        return ("\n" + "\n".join(parts)) if parts else ""

    def _delete_argv(self, name: str) -> builtins.list[str]:
        # kwokctl edits the kubeconfig it is given: give it the harness's own copy, never
        # the user's ~/.kube/config.
        own = kubeconfig_path(self.name, name)
        own.parent.mkdir(parents=True, exist_ok=True)
        own.touch(mode=0o600, exist_ok=True)
        return ["delete", "cluster", "--name", name, "--kubeconfig", str(own)]

    def _remove_files(self, name: str) -> None:
        shutil.rmtree(self.cluster_dir(name), ignore_errors=True)
        kubeconfig_path(self.name, name).unlink(missing_ok=True)
        records.forget_cluster(self.name, name)

    def write_kubeconfig(self, name: str) -> Path:
        text = self._kwokctl("get", "kubeconfig", "--name", name).stdout
        return write_private(kubeconfig_path(self.name, name), text)

    def stages_yaml(self) -> str:
        """kwok's default stages (with the start-up delay) followed by the harness's own."""
        stages_dir = tools.bin_dir() / "kwok-stages"
        docs: list[object] = []
        for file_name in DEFAULT_STAGES:
            for doc in yaml.safe_load_all((stages_dir / file_name).read_text()):
                if doc and doc.get("metadata", {}).get("name") == "pod-ready":
                    self._add_delay(doc)
                docs.append(doc)
        own = tools.data_file("kwok", "stages.yaml").read_text()
        docs.extend(doc for doc in yaml.safe_load_all(own) if doc)
        return yaml.safe_dump_all(docs, sort_keys=False)

    def _add_delay(self, stage: dict[str, object]) -> None:
        if self.pod_startup <= 0 and self.pod_jitter <= 0:
            return
        base = int(self.pod_startup * 1000)
        stage_spec = stage["spec"]
        assert isinstance(stage_spec, dict)
        stage_spec["delay"] = {
            "durationMilliseconds": base,
            "jitterDurationMilliseconds": base + int(self.pod_jitter * 1000),
        }


def wait_usable(info: ClusterInfo, *, nodes: int, timeout: float) -> None:
    """Wait until workloads can be created: ``nodes`` nodes Ready and the ``default``
    ServiceAccount made (pods are refused until the controller-manager creates it)."""
    from kubernetes import client

    from harness.kube.client import api_client
    from harness.kube.wait import all_have_condition, wait_for

    with api_client(info.kubeconfig, info.context) as api:
        core = client.CoreV1Api(api)
        if nodes > 0:
            wait_for(
                core.list_node,
                all_have_condition("Ready", at_least=nodes),
                expected=f"{nodes} node(s) Ready",
                timeout=timeout,
            )
        wait_for(
            core.list_namespaced_service_account,
            lambda accounts: len(accounts) == 1,
            expected="the default ServiceAccount in namespace default",
            timeout=timeout,
            namespace="default",
            field_selector="metadata.name=default",
        )


def _kinds_in(config: Path | None) -> set[str]:
    """The kinds of the documents in a kwokctl config file (none when it cannot be read:
    kwokctl itself reports a bad file)."""
    if config is None or not config.is_file():
        return set()
    try:
        docs = list(yaml.safe_load_all(config.read_text()))
    except (OSError, yaml.YAMLError):
        return set()
    return {str(doc.get("kind")) for doc in docs if isinstance(doc, dict)}


@contextmanager
def creation_lock(name: str, *, timeout: float = CREATE_LOCK_TIMEOUT) -> Iterator[None]:
    """One kwok cluster starts at a time on this machine: kwokctl picks free ports when it
    creates a cluster, and two creating at once pick the same ones ("bind: address already
    in use"). Held until kwokctl returns, when the new cluster's ports are bound; a
    ``ClusterError`` saying what holds it after ``timeout`` seconds."""
    path = tools.cache_dir() / "kwok-create.lock"
    with records.file_lock(
        path, timeout=timeout, purpose=f"create kwok cluster {name}", provider="kwok", name=name
    ):
        yield


def _metrics_server() -> Path | None:
    """The metrics-server binary, when it and its manifest are installed."""
    binary = tools.find_binary("metrics-server")
    if binary is None or not (tools.bin_dir() / METRICS_SERVER_MANIFEST).is_file():
        return None
    return binary


def _resource_metric_yaml() -> str:
    """kwok's kubelet resource metrics, with every container's CPU counter starting at 1 µs.

    kwok starts a container's counter at 0 when first scraped, and metrics-server drops a
    container whose counter is 0 (a real one has used some CPU by then), so figures showed
    only after a third scrape (20-30 s at a 10 s resolution) rather than the second
    (10-20 s). The offset leaves rates unchanged. Empty when the installer did not keep the
    config (kwok's built-in one is used then)."""
    path = tools.bin_dir() / "kwok-stages" / "metrics-resource.yaml"
    if not path.is_file():
        return ""
    metric = yaml.safe_load(path.read_text())
    for series in metric["spec"]["metrics"]:
        if series["name"] == "container_cpu_usage_seconds_total":
            series["value"] = f"{series['value']} + 0.000001"
    return "---\n" + yaml.safe_dump(metric, sort_keys=False)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _answers(kubeconfig: Path) -> bool:
    from harness.kube.client import api_client, server_version

    try:
        with api_client(kubeconfig) as api:
            api.configuration.retries = 0
            server_version(api)
        return True
    except Exception:  # any failure to answer means "not running"
        return False


def check_k8s_version(version: str | None) -> None:
    """kwok clusters run the binaries built for :data:`harness.tools.K8S_VERSION`: a
    ``--k8s-version`` naming that version (or its minor, ``1.36``) is honoured, any other
    is refused, the same way for ``run``, ``pytest`` and ``cluster up``."""
    if not version:
        return
    built = tools.K8S_VERSION
    try:
        wanted = normalize_k8s_version(version)
    except ValueError as exc:
        raise UsageError(f"--k8s-version: {exc}") from exc
    if wanted == built or built.startswith(wanted + "."):
        return
    raise UsageError(
        f"--k8s-version {version}: kwok clusters run the binaries built for {built}; build "
        f"others with K8S_VERSION=vX.Y.Z {tools.INSTALL_HINT}, or use kind"
    )
