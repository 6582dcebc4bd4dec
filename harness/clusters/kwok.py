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
default is 15 s) the kubelet resource metrics kwok-controller serves for the nodes (at
their InternalIP, below) from kwok's ``Metric`` config, adjusted so that a pod shows
after two scrapes (10-20 s). A container's usage comes from a ``ResourceUsage`` named like
its pod (enabled as a custom resource, so tests set figures while the cluster runs), else
from kwok's default ``ClusterResourceUsage``: the pod annotations
``kwok.x-k8s.io/usage-cpu`` and ``kwok.x-k8s.io/usage-memory`` (default 1m and 1Mi),
applied to each container. Without the binary the cluster runs without metrics-server, and
``ClusterInfo.details["metrics"]`` says so.

Simulated nodes get the InternalIP 198.18.0.1 (node i: 198.18.0.1 + i), from the benchmark
range 198.18.0.0/15, which the provider puts on the ``lo`` device as 198.18.0.0/16 (as root;
a prefix on a loopback device is local as a whole, so no packet to it leaves the machine).
The API server accepts such an address as a hostNetwork pod's endpoint, which it refuses
for loopback ones, and metrics-server reaches kwok-controller's kubelet port on it (kwok-
controller listens on all addresses). With such addresses the API server is told to dial
a node's InternalIP first (``--kubelet-preferred-address-types=InternalIP,Hostname``):
kwok gives nodes the Hostname ``localhost``, which its node proxy refuses, and metric
snapshots read the nodes' resource metrics through that proxy
(:mod:`harness.kube.resource_metrics`). Without root, and without the address on ``lo``
already, nodes get 127.0.0.1 as before when metrics-server runs (kwok's 192.0.2.x
otherwise); ``ClusterInfo.details["node-address"]`` says which, and why; snapshots then
read metrics.k8s.io.

While this process uses a cluster it created or found (``create``, ``get``), a daemon
thread (:class:`ComponentWatcher`) looks at the cluster's processes every second: a
component that has exited (kube-controller-manager and kube-scheduler exit when they lose
leader election, e.g. after etcd stalled for ~10 s) is started again with ``kwokctl start
cluster``, which starts the cluster's stopped components only, and the restart is logged
(``harness.clusters.kwok``, one line each; :meth:`KwokProvider.restarts`). One that cannot
be started again (kwokctl fails, it exits again within a few seconds, or it was restarted
5 times in 10 minutes) ends the run at once, naming it and the end of its log, the way
Ctrl-C would (pytest's ``Exit``, exit status 1). ``delete`` stops the thread first; it
ends with the process otherwise.
"""

from __future__ import annotations

import _thread
import atexit
import builtins
import contextlib
import hashlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
# cannot replace); kwok's documentation addresses (192.0.2.x) would not answer. The nodes'
# address must be on this machine, where kwok-controller listens on every address, and not
# loopback, which the API server refuses as a (hostNetwork) pod's endpoint: the benchmark
# range, put on lo as a whole (a prefix on a loopback device is local). Node i gets
# NODE_ADDRESS + i. Loopback without root: kwok-controller answers there too.
NODE_ADDRESS = "198.18.0.1"
APISERVER_NODE_ADDRESS_ARG = "kubelet-preferred-address-types=InternalIP,Hostname"
NODE_NETWORK = ipaddress.ip_network("198.18.0.0/16")
LOOPBACK_NODE_ADDRESS = "127.0.0.1"
IP_TIMEOUT = 10.0  # s, for `ip addr add`
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
# The component watcher (see the module's docstring).
WATCH_INTERVAL = 1.0  # s between looks at a cluster's processes
RESTART_TIMEOUT = 30  # s kwokctl start waits for the API server to serve again
QUICK_EXIT = 5.0  # s: a component that exits again this soon after a restart did not start
MAX_RESTARTS = 5  # of one component within RESTART_WINDOW: more, and it keeps failing
RESTART_WINDOW = 600.0  # s
LOG_TAIL_LINES = 15  # of a component that cannot be started again, in the run's error
STOP_TIMEOUT = RESTART_TIMEOUT + 10.0  # s to wait for a watcher busy restarting to stop

log = logging.getLogger(__name__)


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
            if local_node_network(spec.nodes):
                # The node proxy (snapshots read the kubelet's resource metrics through it)
                # dials a node's first address of these types; kwok gives nodes the
                # Hostname "localhost" first, which the API server will not proxy to.
                argv += ["--extra-args", f"kube-apiserver={APISERVER_NODE_ADDRESS_ARG}"]
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
                    address = node_address(spec.nodes, metrics_server=metrics_server is not None)
                    if address is not None:
                        scale += ["--param", f'.nodeIPs=["{address}"]']
                    self._kwokctl(*scale)
                info = self.get(spec.name, created=True)
                wait_usable(info, nodes=spec.nodes, timeout=spec.wait_seconds)
        self.watch(spec.name)
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
            local_node_network()  # a reboot took it off lo too: before metrics-server scrapes
            self.start(name)  # its processes are gone (a reboot): bring them back
        info = ClusterInfo(
            provider=self.name,
            name=name,
            kubeconfig=kubeconfig,
            context=None,
            created=created,
            details={
                "workdir": str(self.cluster_dir(name)),
                "metrics": self._metrics(name),
                "node-address": _node_address_note(kubeconfig),
            },
        )
        if not created:  # create() watches once the cluster is usable
            self.watch(name)
        return info

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
        with components_lock(name, timeout=STOP_TIMEOUT):
            self._kwokctl("start", "cluster", "--name", name)

    def delete(self, name: str) -> None:
        self.unwatch(name)  # or it would start again what kwokctl stops
        # Watchers in other processes wait, then find the cluster gone: their runs end.
        with components_lock(name, timeout=STOP_TIMEOUT):
            if self.exists(name):
                self._kwokctl(*self._delete_argv(name))
            self._remove_files(name)
        components_lock_path(name).unlink(missing_ok=True)

    # -- watching the cluster's processes -------------------------------------------------

    def watch(self, name: str) -> ComponentWatcher:
        """Start watching the cluster's processes from this process (once per cluster)."""
        key = str(self.cluster_dir(name))
        with _WATCHERS_LOCK:
            watcher = _WATCHERS.get(key)
            if watcher is None or not watcher.alive():
                watcher = _WATCHERS[key] = ComponentWatcher(self, name)
                watcher.start()
        return watcher

    def unwatch(self, name: str) -> None:
        """Stop watching the cluster (``delete`` does; else the thread ends with the process)."""
        with _WATCHERS_LOCK:
            watcher = _WATCHERS.pop(str(self.cluster_dir(name)), None)
        if watcher is not None:
            watcher.stop()
        if not _WATCHERS:
            _uninstall_failure_handler()

    def restarts(self, name: str) -> builtins.list[str]:
        """What this process's watcher of the cluster restarted, one line each."""
        watcher = _WATCHERS.get(str(self.cluster_dir(name)))
        return list(watcher.notes) if watcher is not None else []

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


# -- the nodes' address ----------------------------------------------------------------


def node_address(nodes: int, *, metrics_server: bool) -> str | None:
    """The InternalIP of a new cluster's first node (None: kwok's default): NODE_ADDRESS
    when :func:`local_node_network` makes it this machine's, else loopback when
    metrics-server is to scrape the nodes."""
    if local_node_network(nodes):
        return NODE_ADDRESS
    return LOOPBACK_NODE_ADDRESS if metrics_server else None


def local_node_network(nodes: int = 1) -> bool:
    """Whether the addresses of ``nodes`` nodes (NODE_ADDRESS on) are this machine's. When
    they are not, and this process is root, NODE_NETWORK is put on lo first (``ip addr
    add``; it stays until a reboot, shared by every kwok cluster, and harmless)."""
    first = ipaddress.ip_address(NODE_ADDRESS)
    last = first + max(nodes, 1) - 1
    if last not in NODE_NETWORK or last == NODE_NETWORK.broadcast_address:
        return False
    wanted = (str(first), str(last))
    if all(_is_local(address) for address in wanted):
        return True
    ip = shutil.which("ip") or "/usr/sbin/ip"
    if getattr(os, "geteuid", lambda: -1)() != 0 or not os.access(ip, os.X_OK):
        return False
    argv = [ip, "addr", "add", f"{NODE_ADDRESS}/{NODE_NETWORK.prefixlen}", "dev", "lo"]
    try:
        subprocess.run(argv, capture_output=True, timeout=IP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return all(_is_local(address) for address in wanted)


def _is_local(address: str) -> bool:
    """Whether ``address`` is this machine's: it can be bound, and the kernel routes to it
    from an address of the node network (a local route) rather than out of an uplink. A
    UDP connect sends nothing."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((address, 9))
            source = probe.getsockname()[0]
    except OSError:
        return False
    return ipaddress.ip_address(source) in NODE_NETWORK or source == address


def _node_address_note(kubeconfig: Path) -> str:
    """The nodes' InternalIP, and what it means, for ``ClusterInfo.details``."""
    from kubernetes import client

    from harness.kube.client import api_client

    try:
        with api_client(kubeconfig) as api:
            nodes = client.CoreV1Api(api).list_node(limit=1, _request_timeout=10).items
    except Exception as exc:  # best effort: a detail, never a failure
        return f"unknown ({type(exc).__name__})"
    addresses = [
        a.address
        for node in nodes
        for a in (node.status.addresses or [] if node.status else [])
        if a.type == "InternalIP"
    ]
    if not addresses:
        return "none (no nodes)"
    address = ipaddress.ip_address(addresses[0])
    if address in NODE_NETWORK:
        if _is_local(str(address)):
            return f"{address} ({NODE_NETWORK} on lo: hostNetwork pods get endpoints)"
        return (
            f"{address}, NOT on this machine (a reboot?): metrics-server cannot reach the "
            f"nodes; as root, run: ip addr add {NODE_ADDRESS}/{NODE_NETWORK.prefixlen} dev lo"
        )
    if address.is_loopback:
        return (
            f"{address} (loopback: putting {NODE_NETWORK} on lo needs root; the API server "
            "refuses hostNetwork pods' endpoints)"
        )
    return f"{address} (kwok's default; not on this machine)"


# -- watching a cluster's processes ------------------------------------------------------


def components_lock_path(name: str) -> Path:
    """The lock of a kwok cluster's processes: held to start, restart or delete them."""
    return tools.cache_dir() / "locks" / "kwok-components" / f"{name}.lock"


@contextmanager
def components_lock(name: str, *, timeout: float) -> Iterator[None]:
    """One process at a time starts, restarts or deletes the cluster's processes: two
    ``kwokctl start`` at once would both start a component (one failing to bind, its pid
    file winning), and a restart during a delete would leave processes behind."""
    path = components_lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    purpose = f"start or stop the processes of kwok cluster {name}"
    with records.file_lock(path, timeout=timeout, purpose=purpose, provider="kwok", name=name):
        yield


class ComponentWatcher:
    """A daemon thread that keeps one kwok cluster's processes running (see the module's
    docstring): every WATCH_INTERVAL seconds, each component in the cluster's ``kwok.yaml``
    whose pid file names no live process of its binary is started again with ``kwokctl
    start cluster``. When that is not possible, ``failure`` says why and the run ends."""

    def __init__(self, provider: KwokProvider, name: str) -> None:
        self.provider = provider
        self.name = name
        self.folder = provider.cluster_dir(name)
        self.components = _components(self.folder)  # name -> binary
        self.notes: list[str] = []
        self.failure: str | None = None
        self._restarted: dict[str, list[float]] = {}  # when (monotonic), per component
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kwok-watch-{name}", daemon=True)
        self._can_signal = _install_failure_handler()

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def exited(self) -> list[str]:
        """The components whose process is gone."""
        return [c for c, binary in self.components.items() if not _runs(self._pid_file(c), binary)]

    def _run(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                self.check()
            except Exception as exc:  # never end silently: the run would hang instead
                self._fail(f"watching its processes failed: {type(exc).__name__}: {exc}")
            if self.failure is not None:
                return

    def check(self) -> None:
        """Start again the components that have exited (one look)."""
        if not self.exited():
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:  # the lock, unless told to stop: delete() holds it after stopping us
            if self._stop.is_set():
                return
            try:
                with components_lock(self.name, timeout=WATCH_INTERVAL):
                    self._restart()
                return
            except ClusterError:
                if time.monotonic() > deadline:
                    raise

    def _restart(self) -> None:
        if self._stop.is_set():
            return
        if not (self.folder / "kwok.yaml").is_file():
            self._fail("the cluster was deleted while this run used it")
            return
        exited = self.exited()  # again: another process may have started them
        now = time.monotonic()
        for component in exited:
            times = self._restarted.get(component, [])
            times[:] = [t for t in times if now - t < RESTART_WINDOW]
            if times and now - times[-1] < QUICK_EXIT:
                why = f"it exited again {now - times[-1]:.1f}s after it was started again"
            elif len(times) >= MAX_RESTARTS:
                why = f"it has exited {len(times) + 1} times in {RESTART_WINDOW / 60:g} minutes"
            else:
                continue
            self._fail(f"{component} cannot be started again: {why}", component=component)
            return
        if not exited:
            return
        last_words = {c: _last_line(self._log(c)) for c in exited}
        for component in exited:
            # kwokctl skips a component whose pid file names any process, a zombie (not
            # yet reaped by init) or a stranger that was given the pid since, too.
            self._pid_file(component).unlink(missing_ok=True)
            # kwokctl truncates the log it starts a component with: keep why it exited.
            log_file = self._log(component)
            with contextlib.suppress(OSError):
                log_file.replace(log_file.with_suffix(".previous.log"))
        argv = ["start", "cluster", "--name", self.name, "--timeout", f"{RESTART_TIMEOUT}s"]
        proc = self.provider._kwokctl(*argv, check=False)
        if proc.returncode != 0:
            error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            self._fail(
                f"kwokctl could not start {', '.join(exited)} again: {error}",
                component=exited[0],
            )
            return
        done = time.monotonic()
        for component in exited:
            self._restarted.setdefault(component, []).append(done)
            note = f"kwok cluster {self.name}: restarted {component}, which had exited"
            if last_words[component]:
                note += f" ({last_words[component]})"
            self.notes.append(note)
            log.warning("%s", note)

    def _pid_file(self, component: str) -> Path:
        return self.folder / "pids" / f"{Path(self.components[component]).name}.pid"

    def _log(self, component: str) -> Path:
        binary = self.components.get(component, component)
        return self.folder / "logs" / f"{Path(binary).name}.log"

    def _fail(self, why: str, *, component: str = "") -> None:
        message = f"kwok cluster {self.name}: {why}"
        if component:
            tail = _tail(self._log(component), LOG_TAIL_LINES)
            message += f"\n--- {component} log, last lines ---\n{tail or '(empty)'}"
        self.failure = message
        log.error("%s", message)
        if component == "etcd":
            # Its port may have gone to another cluster's etcd (no auth): the API server
            # must not write this cluster's objects there.
            self._end("kube-apiserver")
        _interrupt_main(message, signal_main=self._can_signal)

    def _end(self, component: str) -> None:
        binary = self.components.get(component)
        if binary is None or not _runs(self._pid_file(component), binary):
            return
        try:
            os.kill(int(self._pid_file(component).read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def _components(folder: Path) -> dict[str, str]:
    """The components kwokctl runs for the cluster (its saved config's first document)."""
    try:
        with (folder / "kwok.yaml").open() as text:
            config = next(yaml.safe_load_all(text), None) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {
        str(c["name"]): str(c["binary"])
        for c in config.get("components") or []
        if isinstance(c, dict) and c.get("name") and c.get("binary")
    }


def _runs(pid_file: Path, binary: str) -> bool:
    """Whether the pid file names a live process (a stopped one too; not a zombie) that
    runs ``binary`` (a pid the system gave to another process since is not)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").is_dir():  # no procfs (macOS): whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        argv0 = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X", "x") and argv0 == binary


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 64 * 1024))
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _last_line(path: Path) -> str:
    """What a component last said before it ended: its last error or fatal line (klog's
    ``E``/``F`` lines; a component shutting down logs its reason, then its controllers'
    goodbyes), else its last line."""
    lines = _tail(path, 2000).splitlines()  # the last 64 KiB
    telling = [line for line in lines if line[:1] in ("E", "F") and line[1:5].isdigit()]
    line = (telling or lines or [""])[-1]
    return line if len(line) <= 200 else line[:197] + "..."


# One watcher per cluster in this process; stopped by delete(), else at exit.
_WATCHERS: dict[str, ComponentWatcher] = {}
_WATCHERS_LOCK = threading.Lock()


@atexit.register
def _stop_watchers() -> None:
    with _WATCHERS_LOCK:
        watchers = list(_WATCHERS.values())
        _WATCHERS.clear()
    for watcher in watchers:
        watcher._stop.set()
    for watcher in watchers:
        watcher.stop(timeout=5.0)


# How a watcher ends the run from its thread: the main thread gets a signal whose handler
# raises the failure (pytest's Exit under pytest, else KeyboardInterrupt), like Ctrl-C.
_FAILURE_SIGNAL: int | None = getattr(signal, "SIGUSR1", None)
_pending: list[str] = []
_handler_installed = False


def _install_failure_handler() -> bool:
    """From the main thread, once: whether the failure signal's handler is (now) ours."""
    global _handler_installed
    if _handler_installed:
        return True
    if _FAILURE_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(_FAILURE_SIGNAL) not in (signal.SIG_DFL, None):
        return False  # someone else's: interrupt_main instead, without the message
    signal.signal(_FAILURE_SIGNAL, _raise_failure)
    _handler_installed = True
    return True


def _uninstall_failure_handler() -> None:
    global _handler_installed
    if not _handler_installed or threading.current_thread() is not threading.main_thread():
        return
    if _FAILURE_SIGNAL is not None and signal.getsignal(_FAILURE_SIGNAL) is _raise_failure:
        signal.signal(_FAILURE_SIGNAL, signal.SIG_DFL)
    _handler_installed = False


def _raise_failure(signum: int, frame: Any) -> None:
    if not _pending:
        return
    message = _pending.pop(0)
    pytest: Any = sys.modules.get("pytest")
    if pytest is not None:
        raise pytest.exit.Exception(message, returncode=int(pytest.ExitCode.TESTS_FAILED))
    raise KeyboardInterrupt(message)


def _interrupt_main(message: str, *, signal_main: bool) -> None:
    """End the run: the main thread raises ``message`` (see :func:`_raise_failure`)."""
    if signal_main and _handler_installed and _FAILURE_SIGNAL is not None:
        _pending.append(message)
        main = threading.main_thread().ident
        if main is not None:
            signal.pthread_kill(main, _FAILURE_SIGNAL)  # also ends a blocking read
            return
    _thread.interrupt_main()  # KeyboardInterrupt once the main thread runs Python


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
