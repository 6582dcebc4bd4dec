"""The kind, k3d and k3s providers, ``--cluster auto`` and ``cluster sweep``.

kind runs for real in the kind tier (``tests/kind/test_kind_provider.py``); here only its
command lines are checked. k3d and k3s cannot be built on this machine (the Go module
proxy refuses k3d, k3s is not served), so they are tested against stand-ins at their
boundary, never mocks of the harness's own code:

- k3d (and kind, for ``--cluster auto``): a fake ``k3d``/``kind`` executable first on
  PATH. It records its argv and, for ``create``, brings up a REAL kwok cluster with
  ``helm-harness cluster up --cluster kwok`` and hands out its kubeconfig the way k3d
  would, so the provider is seen to produce a working cluster (a real v1.36.3 API server).
- k3s: a fake Docker client (``docker.from_env``) for the engine check, and a fake at
  testcontainers' ``K3SContainer`` boundary whose ``start()`` brings up a kwok cluster.

The same suites run on real kind and k3d clusters in ``.github/workflows/providers.yml``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness import tools
from harness.clusters import records
from harness.clusters.base import ClusterInfo, ClusterSpec, kubeconfig_path
from harness.clusters.k3d import K3dProvider
from harness.clusters.k3s import K3sProvider, k3s_image
from harness.clusters.kind import (
    CGROUP_V1_PATCH,
    KindProvider,
    config_image,
    host_is_cgroup_v1,
    node_image,
)
from harness.clusters.kwok import KwokProvider
from harness.clusters.registry import get_provider
from harness.clusters.sweep import sweep
from harness.errors import ClusterError, MissingBinariesError, UsageError
from harness.kube.client import api_client, server_version

REPO = Path(__file__).resolve().parent.parent

# The stand-in for kind and k3d (one script, told apart by the name it is called by).
FAKE_CLI = r'''#!{python}
"""Stand-in for {tool}: records argv; clusters are real kwok clusters."""
import json, os, subprocess, sys
from pathlib import Path

import yaml

tool = Path(sys.argv[0]).name
args = sys.argv[1:]
home = Path(os.environ["FAKE_CLUSTER_HOME"])
with (home / "argv.log").open("a") as log:
    seen = {{"tool": tool, "argv": args, "KUBECONFIG": os.environ.get("KUBECONFIG")}}
    log.write(json.dumps(seen) + "\n")
registry = home / f"{{tool}}-clusters.json"
clusters = json.loads(registry.read_text()) if registry.exists() else {{}}


def save():
    registry.write_text(json.dumps(clusters))


def flag(name):
    return args[args.index(name) + 1] if name in args else None


def harness(*cli):
    argv = [sys.executable, "-m", "harness.cli", *cli]
    return subprocess.run(argv, capture_output=True, text=True)


def up(name):
    quick = ("--pod-startup", "0", "--pod-jitter", "0")
    proc = harness("cluster", "up", "--cluster", "kwok", "--name", name, *quick)
    if proc.returncode != 0:
        sys.exit(f"ERROR: failed to create cluster: {{proc.stderr}}")
    clusters[name] = proc.stdout.strip()
    save()


def kubeconfig(name):
    """The kwok cluster's kubeconfig, its context renamed the way kind/k3d name theirs."""
    config = yaml.safe_load(Path(clusters[name]).read_text())
    context = f"{{tool}}-{{name}}"
    config["contexts"][0]["name"] = context
    config["current-context"] = context
    return yaml.safe_dump(config)


def down(name):
    if name in clusters:
        harness("cluster", "down", "--cluster", "kwok", "--name", name)
        del clusters[name]
        save()


def create(name):
    fail = os.environ.get("FAKE_FAIL_CREATE")
    if fail == "before-start":
        sys.exit("ERROR: failed to create cluster: failed to pull image: manifest unknown")
    up(name)
    if fail == "after-start":
        sys.exit("ERROR: failed to create cluster: timed out waiting for the control plane")
    if tool == "kind":
        Path(flag("--kubeconfig")).write_text(kubeconfig(name))


if tool == "kind":
    if args[:2] == ["create", "cluster"]:
        create(flag("--name"))
    elif args[:2] == ["get", "clusters"]:
        for name in clusters:
            print(name)
        if not clusters:
            print("No kind clusters found.", file=sys.stderr)
    elif args[:2] == ["get", "kubeconfig"]:
        if flag("--name") not in clusters:
            sys.exit("ERROR: could not locate any control plane nodes")
        print(kubeconfig(flag("--name")), end="")
    elif args[:2] == ["delete", "cluster"]:
        down(flag("--name"))
    elif args[:2] != ["load", "docker-image"]:
        sys.exit(f"fake kind: unknown command {{args}}")
else:
    if args[:2] == ["cluster", "create"]:
        create(args[2])
    elif args[:2] == ["cluster", "list"]:
        print(json.dumps([{{"name": n, "clusterToken": "fake-join-token"}} for n in clusters]))
    elif args[:2] == ["kubeconfig", "get"]:
        if args[2] not in clusters:
            sys.exit(f"FATA[0000] cluster '{{args[2]}}' not found")
        print(kubeconfig(args[2]), end="")
    elif args[:2] == ["cluster", "delete"]:
        down(args[2])
    elif args[:2] != ["image", "import"]:
        sys.exit(f"fake k3d: unknown command {{args}}")
'''


@dataclass
class FakeCli:
    """Stand-ins for kind and k3d on PATH, and what they were asked to do."""

    folder: Path
    home: Path

    def install(self, tool: str) -> Path:
        path = self.folder / tool
        path.write_text(FAKE_CLI.format(python=sys.executable, tool=tool))
        path.chmod(0o755)
        return path

    def calls(self, tool: str) -> list[list[str]]:
        return [entry["argv"] for entry in self._log() if entry["tool"] == tool]

    def kubeconfig_envs(self, tool: str) -> list[str | None]:
        return [entry["KUBECONFIG"] for entry in self._log() if entry["tool"] == tool]

    def clusters(self, tool: str) -> dict[str, str]:
        registry = self.home / f"{tool}-clusters.json"
        return dict(json.loads(registry.read_text())) if registry.exists() else {}

    def _log(self) -> list[dict[str, Any]]:
        log = self.home / "argv.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [json.loads(line) for line in lines]


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    folder = tmp_path / "fake-bin"
    home = tmp_path / "fake-home"
    folder.mkdir()
    home.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CLUSTER_HOME", str(home))
    return FakeCli(folder, home)


@pytest.fixture
def own_name() -> Iterator[str]:
    """A fresh cluster name; whatever a failed test left under it is removed."""
    name = f"hh-prov-{uuid.uuid4().hex[:6]}"
    yield name
    KwokProvider().delete(name)
    for provider in ("kind", "k3d", "k3s"):
        records.forget_cluster(provider, name)
        kubeconfig_path(provider, name).unlink(missing_ok=True)


def assert_real_cluster(info: ClusterInfo) -> None:
    assert info.kubeconfig.stat().st_mode & 0o777 == 0o600
    with api_client(info.kubeconfig, info.context) as api:
        assert server_version(api) == tools.K8S_VERSION
        assert client.CoreV1Api(api).list_node().items


def assert_nothing_left(provider: str, name: str) -> None:
    assert records.read_cluster(provider, name) is None
    assert not kubeconfig_path(provider, name).exists()
    assert not KwokProvider().exists(name)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def orphan(provider: str, name: str, run_id: str = "") -> int:
    """Make a cluster's record say that a process which has ended made it; its pid."""
    record = records.read_cluster(provider, name)
    assert record is not None
    gone = dead_pid()
    data = json.loads(record.path.read_text())
    data["holders"] = [{"pid": gone, "started": None, "run_id": run_id}]
    record.path.write_text(json.dumps(data))
    return gone


# -- version to image -----------------------------------------------------------------------


def test_kind_node_images_follow_the_kind_release() -> None:
    assert node_image("1.36").startswith("kindest/node:v1.36.4@sha256:")
    assert node_image("v1.37.0").startswith("kindest/node:v1.37.0@sha256:")
    assert node_image("v1.35.2") == "kindest/node:v1.35.2"  # not pre-built: plain tag
    with pytest.raises(UsageError, match="no node image"):
        node_image("1.20")


def test_k3s_images_need_a_patch_version() -> None:
    assert k3s_image("v1.36.4") == "rancher/k3s:v1.36.4-k3s1"
    assert k3s_image("1.36.4-k3s2") == "rancher/k3s:v1.36.4-k3s2"
    with pytest.raises(UsageError, match="per patch release"):
        k3s_image("1.36")


# -- kind -------------------------------------------------------------------------------------


def test_kind_uses_the_given_config_file(tmp_path: Path) -> None:
    config = tmp_path / "three-nodes.yaml"
    config.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: control-plane}]\n"
    )
    argv = KindProvider().create_argv(ClusterSpec(name=f"x{uuid.uuid4().hex[:6]}", config=config))
    given = Path(argv[argv.index("--config") + 1])
    if host_is_cgroup_v1():  # a copy that lets Kubernetes 1.35+ run on cgroup v1
        derived = yaml.safe_load(given.read_text())
        assert derived["nodes"] == [{"role": "control-plane"}]
        assert derived["kubeadmConfigPatches"] == [CGROUP_V1_PATCH]
        given.unlink()
    else:
        assert given == config
    assert "--image" not in argv  # no --k8s-version nor --kind-image: kind's own default


def test_kind_image_and_k8s_version_are_one_choice(tmp_path: Path) -> None:
    spec = ClusterSpec(name="x", image="me/node:v1", config=tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text(
        "kind: Cluster\nnodes: [{role: control-plane, image: a/b:1}]\n"
    )
    argv = KindProvider().create_argv(spec)
    assert argv[argv.index("--image") + 1] == "me/node:v1"
    assert config_image(tmp_path / "c.yaml") == "a/b:1"
    with pytest.raises(UsageError, match="give one"):
        KindProvider().create_argv(ClusterSpec(name="x", image="me/node:v1", k8s_version="1.36"))
    argv = KindProvider().create_argv(ClusterSpec(name="x", k8s_version="1.36"))
    assert argv[argv.index("--image") + 1] == node_image("v1.36.4")
    with pytest.raises(UsageError, match="names the node image a/b:1"):
        KindProvider().create_argv(
            ClusterSpec(name="x", k8s_version="1.36", config=tmp_path / "c.yaml")
        )


def test_kind_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HELM_HARNESS_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(MissingBinariesError, match="missing binaries: kind; install them with"):
        KindProvider().check()


# -- k3d --------------------------------------------------------------------------------------


def test_k3d_creates_a_working_cluster_and_deletes_it(fake_cli: FakeCli, own_name: str) -> None:
    fake_cli.install("k3d")
    provider = K3dProvider()
    info = provider.create(ClusterSpec(name=own_name, k8s_version="v1.36.4", wait_seconds=90))

    assert info.created and info.context == f"k3d-{own_name}"
    create = next(argv for argv in fake_cli.calls("k3d") if argv[:2] == ["cluster", "create"])
    assert create == [
        "cluster",
        "create",
        own_name,
        "--config",
        str(REPO / "harness" / "_data" / "k3d" / "default.yaml"),
        "--wait",
        "--timeout",
        "90s",
        "--kubeconfig-update-default=false",
        "--kubeconfig-switch-context=false",
        "--runtime-label",
        "app.kubernetes.io/managed-by=helm-harness@all",
        "--runtime-label",
        f"helm-harness.io/cluster={own_name}@all",
        "--image",
        "rancher/k3s:v1.36.4-k3s1",
    ]
    assert_real_cluster(info)
    assert provider.list() == [own_name]
    assert records.read_cluster("k3d", own_name) is not None

    provider.load_images(own_name, ["web:dev"])
    assert fake_cli.calls("k3d")[-1] == ["image", "import", "web:dev", "-c", own_name]

    provider.delete(own_name)
    assert ["cluster", "delete", own_name] in fake_cli.calls("k3d")
    # every k3d call saw KUBECONFIG pointed at the harness's own files, never ~/.kube/config
    envs = fake_cli.kubeconfig_envs("k3d")
    assert envs and all(str(env).startswith(str(tools.cache_dir())) for env in envs)
    assert_nothing_left("k3d", own_name)


def test_a_failed_k3d_create_says_why_and_leaves_nothing(
    fake_cli: FakeCli, own_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_cli.install("k3d")
    monkeypatch.setenv("FAKE_FAIL_CREATE", "before-start")
    with pytest.raises(ClusterError, match="manifest unknown") as failure:
        K3dProvider().create(ClusterSpec(name=own_name, wait_seconds=60))
    assert f"k3d could not create cluster {own_name!r}" in str(failure.value)
    assert "fake-join-token" not in str(failure.value)
    assert fake_cli.calls("k3d")[-1] == ["cluster", "delete", own_name]
    assert_nothing_left("k3d", own_name)


# -- k3s (testcontainers) ---------------------------------------------------------------------


class FakeDockerClient:
    """Stand-in for ``docker.DockerClient`` at the Docker SDK boundary: ``ping`` answers
    (or fails like a missing engine), and no containers exist."""

    def __init__(self, *, answers: bool) -> None:
        self.answers = answers
        self.containers = self

    def ping(self) -> bool:
        if not self.answers:
            raise ConnectionError("Connection aborted: No such file or directory")
        return True

    def list(self, **filters: Any) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def fake_docker(monkeypatch: pytest.MonkeyPatch, *, answers: bool) -> None:
    import docker

    monkeypatch.setattr(docker, "from_env", lambda **kw: FakeDockerClient(answers=answers))


class FakeK3SContainer:
    """Stand-in for testcontainers' ``K3SContainer``: there is no Docker engine here to
    run k3s in, so ``start()`` brings up a real kwok cluster instead, and
    ``config_yaml()`` returns its kubeconfig, as the real one returns k3s's."""

    made: list[FakeK3SContainer] = []
    fail_start = False

    def __init__(self, image: str = "rancher/k3s:latest", **kwargs: Any) -> None:
        self.image = image
        self.kwargs: dict[str, Any] = {}
        self.stopped = False
        self.made.append(self)

    def with_kwargs(self, **kwargs: Any) -> FakeK3SContainer:
        self.kwargs = kwargs  # testcontainers replaces, too
        return self

    def start(self) -> FakeK3SContainer:
        if self.fail_start:
            raise RuntimeError("container exited: k3s: failed to find cgroup v2 memory")
        name = self.kwargs["labels"]["helm-harness.io/cluster"]
        self.info = KwokProvider().create(ClusterSpec(name=name, wait_seconds=60))
        return self

    def config_yaml(self) -> str:
        return self.info.kubeconfig.read_text()

    def stop(self) -> None:
        self.stopped = True
        if hasattr(self, "info"):
            KwokProvider().delete(self.info.name)


@pytest.fixture
def fake_k3s(monkeypatch: pytest.MonkeyPatch) -> type[FakeK3SContainer]:
    from testcontainers.community import k3s as tc_k3s

    monkeypatch.setattr(FakeK3SContainer, "made", [])
    monkeypatch.setattr(tc_k3s, "K3SContainer", FakeK3SContainer)
    fake_docker(monkeypatch, answers=True)
    return FakeK3SContainer


def test_k3s_without_docker_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake Docker client whose ping fails, as on this machine (no engine)."""
    fake_docker(monkeypatch, answers=False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(ClusterError, match="no Docker engine answers at unix:///var/run/docker"):
        K3sProvider().check()
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.9:2375")
    with pytest.raises(ClusterError, match="no Docker engine answers at tcp://10.0.0.9:2375"):
        K3sProvider().create(ClusterSpec(name="never"))


def test_k3s_starts_labels_and_stops_its_container(
    fake_k3s: type[FakeK3SContainer], own_name: str
) -> None:
    provider = K3sProvider()
    info = provider.create(ClusterSpec(name=own_name, k8s_version="v1.36.4", wait_seconds=60))
    (container,) = fake_k3s.made
    assert container.image == "rancher/k3s:v1.36.4-k3s1"
    assert container.kwargs["privileged"] is True
    assert container.kwargs["labels"] == {
        "app.kubernetes.io/managed-by": "helm-harness",
        "helm-harness.io/provider": "k3s",
        "helm-harness.io/cluster": own_name,
        "helm-harness.io/pid": str(os.getpid()),
    }
    assert info.created and info.kubeconfig == kubeconfig_path("k3s", own_name)
    assert_real_cluster(info)
    assert provider.exists(own_name) and provider.list() == [own_name]
    assert records.read_cluster("k3s", own_name) is not None

    provider.delete(own_name)
    assert container.stopped
    assert_nothing_left("k3s", own_name)


def test_a_failed_k3s_start_stops_the_container_and_leaves_nothing(
    fake_k3s: type[FakeK3SContainer], own_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeK3SContainer, "fail_start", True)
    with pytest.raises(ClusterError, match="failed to find cgroup v2 memory"):
        K3sProvider().create(ClusterSpec(name=own_name))
    (container,) = fake_k3s.made
    assert container.stopped
    assert_nothing_left("k3s", own_name)


# -- --cluster auto ---------------------------------------------------------------------------


def test_auto_picks_existing_with_a_kubeconfig(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("")
    assert get_provider("auto", kubeconfig=config).name == "existing"


def test_auto_picks_kind_then_k3d_when_docker_answers(
    fake_cli: FakeCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_docker(monkeypatch, answers=True)
    monkeypatch.setenv("PATH", str(fake_cli.folder))
    monkeypatch.setenv("HELM_HARNESS_CACHE", str(fake_cli.home / "cache"))  # no kind built
    fake_cli.install("k3d")
    assert get_provider("auto").name == "k3d"
    fake_cli.install("kind")
    assert get_provider("auto").name == "kind"


def test_auto_picks_kwok_without_docker(fake_cli: FakeCli, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cli.install("kind")
    fake_cli.install("k3d")
    fake_docker(monkeypatch, answers=False)
    assert get_provider("auto").name == "kwok"


def test_auto_with_nothing_usable_lists_what_it_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_docker(monkeypatch, answers=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HELM_HARNESS_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(UsageError) as failure:
        get_provider("auto")
    text = str(failure.value)
    assert "existing: no --kubeconfig given" in text
    assert "kind: no Docker engine answers at" in text and "kind is not on PATH" in text
    assert "k3d: no Docker engine answers at" in text and "k3d is not on PATH" in text
    assert "kwok: missing binaries: kwokctl" in text


def test_cli_takes_the_new_providers_and_k8s_version() -> None:
    from harness.cli.main import build_parser

    args = build_parser().parse_args(
        ["cluster", "up", "--cluster", "kind", "--k8s-version", "1.36", "--name", "x"]
    )
    assert (args.cluster, args.k8s_version) == ("kind", "v1.36")
    bad = subprocess.run(
        [sys.executable, "-m", "harness.cli", "cluster", "up", "--k8s-version", "newest"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a Kubernetes version" in bad.stderr


def test_plugin_takes_the_new_providers_and_k8s_version(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    bad = pytester.runpytest_subprocess("--k8s-version", "newest")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*not a Kubernetes version: 'newest'*"])
    good = pytester.runpytest_subprocess("--cluster", "k3d", "--k8s-version", "1.36", "-q")
    good.assert_outcomes(passed=1)


# -- ownership records ------------------------------------------------------------------------


@pytest.fixture
def own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A cache folder of this test's own, so records written here touch nobody's."""
    monkeypatch.setenv("HELM_HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_holder_is_alive_only_as_the_same_harness_process() -> None:
    me = records.this_process()
    assert me.alive()
    assert me.started is not None
    assert not records.Holder(pid=me.pid, started=me.started - 3600).alive()  # a recycled pid
    assert not records.Holder(pid=dead_pid(), started=None).alive()
    with subprocess.Popen(["sleep", "30"]) as other:  # alive, but not pytest/helm-harness
        try:
            assert not records.Holder(pid=other.pid, started=None).alive()
        finally:
            other.kill()


def test_a_holder_process_is_read_through_psutil() -> None:
    me = records.process(os.getpid())
    assert me is not None and me.cmdline is not None and "pytest" in me.cmdline
    assert me.started == pytest.approx(psutil.Process().create_time())
    assert records.process(dead_pid()) is None
    assert records.process(0) is None and records.process(-1) is None
    zombie = subprocess.Popen([sys.executable, "-c", "pass", "pytest"])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:  # ended, not reaped
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert records.process(zombie.pid) is None
        assert not records.Holder(pid=zombie.pid, started=None).alive()
    finally:
        zombie.wait()


def test_a_holder_whose_command_line_cannot_be_read_counts_by_its_start_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another user's process, say: psutil may not read its command line."""
    me = records.this_process()
    assert me.started is not None

    def denied(self: psutil.Process) -> list[str]:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "cmdline", denied)
    assert records.process(me.pid) == records.Process(me.pid, None, me.started)
    assert me.alive()  # the same start time: the same process
    assert not records.Holder(pid=me.pid, started=me.started - 3600).alive()  # a recycled pid
    assert not records.Holder(pid=me.pid, started=None).alive()  # nothing shows it is ours
    assert os.getpid() not in {proc.pid for proc in records.harness_processes()}


def test_sweep_sees_the_running_pytest_and_helm_harness_processes() -> None:
    with subprocess.Popen(["sleep", "30"]) as other:
        try:
            found = {proc.pid: proc for proc in records.harness_processes()}
        finally:
            other.kill()
    assert other.pid not in found
    me = found[os.getpid()]
    assert me.cmdline is not None and "pytest" in me.cmdline
    assert me.started == records.this_process().started


def live_holder_pids(provider: str, name: str) -> list[int]:
    record = records.read_cluster(provider, name)
    assert record is not None
    return [holder.pid for holder in record.live_holders()]


def test_a_run_using_a_harness_cluster_as_existing_holds_it(own_cache: Path) -> None:
    """A cluster made by hand (its maker has ended) and then used as ``existing`` through
    the harness's kubeconfig is held by that run, so a sweep leaves it alone."""
    from harness.clusters.registry import acquire, release

    kubeconfig = kubeconfig_path("kwok", "made-by-hand")
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text("")
    records.record_cluster("kwok", "made-by-hand", kubeconfig=kubeconfig)
    orphan("kwok", "made-by-hand")
    assert live_holder_pids("kwok", "made-by-hand") == []

    provider = get_provider("existing", kubeconfig=kubeconfig)
    info = acquire(provider, ClusterSpec(name="x"), reuse=False, run_id="run1")
    assert live_holder_pids("kwok", "made-by-hand") == [os.getpid()]
    assert "run1" in set(records.iter_live_run_ids())

    release(provider, info, keep=False, run_id="run1")
    assert live_holder_pids("kwok", "made-by-hand") == []
    assert records.runs() == []


# -- locks ------------------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from harness.clusters.kwok import KwokProvider, creation_lock
from harness.clusters.registry import cluster_lock

lock = cluster_lock(KwokProvider(), "c1") if sys.argv[1] == "cluster" else creation_lock("c1")
with lock:
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def lock_holder(request: pytest.FixtureRequest, own_cache: Path) -> Iterator[int]:
    """Another process holding a lock (``cluster`` or ``kwok-create``) until the test ends."""
    argv = [sys.executable, "-c", HOLD_LOCK, request.param]
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            yield holder.pid
        finally:
            holder.kill()


def take_lock(kind: str, timeout: float) -> Path:
    from harness.clusters.kwok import creation_lock
    from harness.clusters.registry import cluster_lock

    if kind == "cluster":
        with cluster_lock(KwokProvider(), "c1", timeout=timeout) as path:
            assert path is not None
            return path
    with creation_lock("c1", timeout=timeout):
        return tools.cache_dir() / "kwok-create.lock"


@pytest.mark.parametrize(
    ("lock_holder", "path", "purpose"),
    [
        ("cluster", "locks/clusters/kwok-c1.lock", "find, create or delete kwok cluster c1"),
        ("kwok-create", "kwok-create.lock", "create kwok cluster c1"),
    ],
    indirect=["lock_holder"],
)
def test_a_held_lock_times_out_naming_the_file_its_holder_and_what_to_do(
    lock_holder: int, own_cache: Path, path: str, purpose: str
) -> None:
    lock_file = own_cache / path
    kind = "cluster" if path.startswith("locks/") else "kwok-create"
    with pytest.raises(ClusterError) as waited:
        take_lock(kind, timeout=0.5)
    assert (waited.value.provider, waited.value.name) == ("kwok", "c1")
    message = str(waited.value)
    assert f"waited 0.5s for the lock {lock_file}: pid {lock_holder} (" in message
    assert "holds it since " in message and f" to {purpose}. " in message
    assert f"Wait for that run to finish and try again, or end it (kill {lock_holder})" in message

    # what the holder wrote no longer names a live process: a child of it holds the lock
    data = json.loads(lock_file.read_text())
    lock_file.write_text(json.dumps({**data, "pid": dead_pid()}))
    with pytest.raises(ClusterError, match=r"and has ended, but a process it started still holds"):
        take_lock(kind, timeout=0.1)
    lock_file.write_text("")  # written by nobody we know
    with pytest.raises(ClusterError) as unknown:
        take_lock(kind, timeout=0.1)
    assert f"its holder is unknown. Find the process holding it (fuser -v {lock_file})" in str(
        unknown.value
    )


@pytest.mark.parametrize("lock_holder", ["cluster"], indirect=True)
def test_a_lock_is_free_again_when_its_holder_ends(lock_holder: int, own_cache: Path) -> None:
    os.kill(lock_holder, 9)
    assert take_lock("cluster", timeout=30) == own_cache / "locks/clusters/kwok-c1.lock"
    assert json.loads(take_lock("kwok-create", timeout=1).read_text())["pid"] == os.getpid()


def test_a_lock_file_removed_by_its_holder_is_taken_anew(own_cache: Path) -> None:
    """release() removes the lock file of a cluster it deleted, while holding it: a process
    waiting on the old file then takes a new one, and whoever comes next waits for it."""
    path = own_cache / "locks" / "x.lock"
    wait = (
        "import sys, time; from pathlib import Path; from harness.clusters import records\n"
        "with records.file_lock(Path(sys.argv[1]), timeout=60, purpose='wait'):\n"
        "    print('got it', flush=True); time.sleep(120)\n"
    )
    with records.file_lock(path, timeout=1, purpose="delete x") as held:
        argv = [sys.executable, "-c", wait, str(path)]
        waiter = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            with pytest.raises(ClusterError, match="waited 0.2s"):
                with records.file_lock(path, timeout=0.2, purpose="third"):
                    pass  # while this test's process holds it: never
            held.unlink()
        except BaseException:
            waiter.kill()
            raise
    with waiter:
        try:
            assert waiter.stdout is not None and waiter.stdout.readline() == "got it\n"
            assert path.is_file()
            with pytest.raises(ClusterError, match=f"pid {waiter.pid} "):
                with records.file_lock(path, timeout=0.5, purpose="third"):
                    pass
        finally:
            waiter.kill()


@pytest.mark.parametrize("lock_holder", ["cluster"], indirect=True)
def test_forgetting_a_cluster_removes_its_lock_file_unless_it_is_held(
    lock_holder: int, own_cache: Path
) -> None:
    held = records.cluster_lock_path("kwok", "c1")
    records.forget_cluster("kwok", "c1")
    assert held.is_file()  # its holder removes it when it is done
    free = records.cluster_lock_path("kwok", "c2")
    from harness.clusters.registry import cluster_lock

    with cluster_lock(KwokProvider(), "c2", timeout=1):
        pass
    assert free.is_file()
    records.forget_cluster("kwok", "c2")
    assert not free.exists()


# -- sweep ------------------------------------------------------------------------------------


def test_sweep_keeps_the_record_of_what_it_cannot_delete(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A left-over k3s cluster while no Docker engine answers: said, not forgotten."""
    fake_docker(monkeypatch, answers=False)
    records.record_cluster("k3s", "stranded", kubeconfig=kubeconfig_path("k3s", "stranded"))
    orphan("k3s", "stranded")
    result = sweep()
    assert result.removed == []
    (error,) = result.errors
    assert "could not delete k3s cluster stranded" in error
    assert "no Docker engine answers at" in error
    assert records.read_cluster("k3s", "stranded") is not None


def labelled_namespace(core: client.CoreV1Api, labels: dict[str, str]) -> str:
    name = f"t-sweep-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    return name


def namespace_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        namespace = core.read_namespace(name)
    except ApiException as exc:
        return exc.status == 404
    return namespace.metadata.deletion_timestamp is not None


def test_sweep_removes_what_dead_runs_left_and_keeps_what_live_runs_hold(
    harness_cluster: ClusterInfo, k8s: client.ApiClient, own_name: str
) -> None:
    session_record = records.read_cluster("kwok", harness_cluster.name)
    if session_record is None:
        pytest.skip("the session cluster was not created by this run (--reuse-cluster)")
    # A kwok cluster whose creator died: its record names a pid that no longer runs.
    KwokProvider().create(ClusterSpec(name=own_name, wait_seconds=60))
    gone = orphan("kwok", own_name, run_id="deadrun1")

    dead_run, live_run = f"dead{uuid.uuid4().hex[:6]}", f"live{uuid.uuid4().hex[:6]}"
    records.register_run(dead_run, records.Holder(pid=gone, started=None))
    records.register_run(live_run)  # this process
    core = client.CoreV1Api(k8s)
    owner = {"app.kubernetes.io/managed-by": "helm-harness"}
    dead_ns = labelled_namespace(core, {**owner, "helm-harness.io/run": dead_run})
    live_ns = labelled_namespace(core, {**owner, "helm-harness.io/run": live_run})
    no_run_ns = labelled_namespace(core, owner)
    foreign_ns = labelled_namespace(
        core, {"app.kubernetes.io/managed-by": "someone-else", "helm-harness.io/run": dead_run}
    )
    try:
        only_ours = {own_name, harness_cluster.name}

        dry = sweep(dry_run=True, select=lambda r: r.name in only_ours)
        assert any(f"would delete kwok cluster {own_name}" in line for line in dry.removed)
        assert any(f"would delete namespace {dead_ns}" in line for line in dry.removed)
        for kept in (live_ns, no_run_ns, foreign_ns):
            assert not any(kept in line for line in dry.removed), dry.removed
        session = f"would delete kwok cluster {harness_cluster.name} "
        assert not any(line.startswith(session) for line in dry.removed)
        assert KwokProvider().exists(own_name) and not namespace_gone(core, dead_ns)

        cli = subprocess.run(
            [sys.executable, "-m", "harness.cli", "cluster", "sweep", "--dry-run"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert f"would delete kwok cluster {own_name}" in cli.stdout
        assert f"would delete namespace {dead_ns}" in cli.stdout
        assert live_ns not in cli.stdout and no_run_ns not in cli.stdout
        assert KwokProvider().exists(own_name)

        done = sweep(select=lambda r: r.name in only_ours)
        assert not done.errors, done.errors
        assert any(f"deleted kwok cluster {own_name}" in line for line in done.removed)
        assert any(f"deleted namespace {dead_ns}" in line for line in done.removed)
        assert_nothing_left("kwok", own_name)
        assert namespace_gone(core, dead_ns)
        for kept in (live_ns, no_run_ns, foreign_ns):
            assert not namespace_gone(core, kept), kept
        assert KwokProvider().exists(harness_cluster.name)
        assert records.read_cluster("kwok", harness_cluster.name) is not None
        assert dead_run not in {holder.run_id for holder in records.runs()}
    finally:
        for name in (dead_ns, live_ns, no_run_ns, foreign_ns):
            if not namespace_gone(core, name):
                core.delete_namespace(name)
        records.forget_run(dead_run)
        records.forget_run(live_run)


def test_sweep_shows_owners_and_takes_name_and_age_filters(own_name: str) -> None:
    """On a shared machine sweep once offered a cluster another user had made seconds
    earlier: each candidate now says who made it, with what command, and when; --name and
    --older-than narrow what is looked at."""
    KwokProvider().create(ClusterSpec(name=own_name, wait_seconds=60))
    orphan("kwok", own_name)

    def dry(*flags: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "harness.cli", "cluster", "sweep", "--dry-run", *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    listed = dry("--name", own_name)
    line = next(line for line in listed.splitlines() if own_name in line)
    assert line.startswith(f"would delete kwok cluster {own_name} (created ")
    assert f" by {getpass.getuser()}@{socket.gethostname()} (" in line
    assert "pytest" in line  # the command that made it (this test run)
    assert own_name not in dry("--name", "someone-else-*")
    assert own_name not in dry("--name", own_name, "--older-than", "1h")
    assert own_name in dry("--name", own_name[:-2] + "*", "--older-than", "0s")
    KwokProvider().delete(own_name)


def test_two_runs_in_one_process_each_give_up_only_their_own_hold(
    harness_cluster: ClusterInfo,
) -> None:
    """A run started in-process by a test (pytester) holds the session's cluster beside
    the session's own run; when it ends, the session still holds the cluster (a sweep
    would otherwise take the session's cluster for one nobody holds)."""
    before = records.read_cluster("kwok", harness_cluster.name)
    if before is None:
        pytest.skip("the session cluster was not created by this run (--reuse-cluster)")
    records.hold_cluster("kwok", harness_cluster.name, run_id="inner-run")
    held = records.read_cluster("kwok", harness_cluster.name)
    assert held is not None and "inner-run" in {h.run_id for h in held.holders}
    records.unhold_cluster("kwok", harness_cluster.name, run_id="inner-run")
    after = records.read_cluster("kwok", harness_cluster.name)
    assert after is not None
    assert {(h.pid, h.run_id) for h in after.holders} == {(h.pid, h.run_id) for h in before.holders}
    assert after.live_holders()
