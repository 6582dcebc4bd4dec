"""Interrupted runs (Ctrl-C, SIGTERM) clean up what they made: real harness runs in
subprocesses, signalled while the cluster starts, while Helm installs, and while checks
wait; afterwards no cluster, process, namespace or Helm process of the run is left, and the
output says what was removed.

SIGINT goes to the run's whole process group, as a terminal's Ctrl-C does (Helm and
kwokctl get it too); SIGTERM goes to the pytest process alone, as ``kill``, ``timeout`` or
``docker stop`` send it, so the harness must stop its children itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from harness.clusters import records
from harness.clusters.base import ClusterInfo, ClusterSpec, kubeconfig_path
from harness.clusters.kwok import KwokProvider
from harness.deploy.deployer import LABEL_RUN
from harness.kube.client import api_client
from tests.conftest import FIXTURE_CHARTS

WEB = FIXTURE_CHARTS / "web"
MIGRATE = FIXTURE_CHARTS / "migrate"
INTERRUPTED = 2  # pytest's exit code for an interrupted run
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
NEVER = "configmap/never-made"  # a `wait` on it never holds


class Run:
    """``python -m pytest ARGS`` in ``cwd``, in a session of its own, its output collected
    while it runs."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {**os.environ, "HELM_HARNESS_METRICS_WAIT": "0", "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", *args]
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until(self, what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
        """Poll ``condition`` until it holds; fail (showing the output) if the run ends or
        ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                self.finish()
                pytest.fail(f"the run ended before {what}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:g}s:\n{self.output}")
            time.sleep(0.1)

    def run_id(self) -> str:
        found: list[str] = []

        def header() -> bool:
            match = re.search(r"helm-harness: run (\w+),", self.output)
            if match:
                found.append(match.group(1))
            return bool(found)

        self.wait_until("header", header)
        return found[0]

    def send(self, signum: int) -> None:
        """SIGINT to the process group (a terminal's Ctrl-C), anything else to the pid."""
        if signum == signal.SIGINT:
            os.killpg(self.proc.pid, signum)
        else:
            os.kill(self.proc.pid, signum)

    def finish(self, timeout: float = 90) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        """Only for a test that failed half-way: end what is left of this run."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


def start(runs: list[Run], cwd: Path, *args: str) -> Run:
    run = Run(cwd, *args)
    runs.append(run)
    return run


def suite_dir(tmp_path: Path, apps: str) -> Path:
    """A run folder: a suite with ``apps``, and a conftest that leaves a marker file when
    a ``wait`` item starts (on xdist workers too)."""
    markers, pids = tmp_path / "markers", tmp_path / "pids"  # pids: of xdist workers
    markers.mkdir()
    pids.mkdir()
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            f"""
            import os
            from pathlib import Path

            def pytest_runtest_logstart(nodeid, location):
                if "::wait" in nodeid:
                    name = nodeid.replace("/", "_").replace(":", "_")
                    (Path({str(markers)!r}) / name).write_text(nodeid)
                    if "PYTEST_XDIST_WORKER" in os.environ:
                        (Path({str(pids)!r}) / name).write_text(str(os.getpid()))
            """
        )
    )
    suite = "apiVersion: helm-harness/v1\nkind: Suite\napps:\n" + textwrap.dedent(apps)
    (tmp_path / "run.suite.yaml").write_text(suite)
    return markers


def never_holding(name: str, chart: Path = WEB) -> str:
    return f"""\
  - name: {name}
    chart: {chart}
    checks:
      - wait: {{resource: {NEVER}, for: create}}
        timeout: 10m
"""


def processes_mentioning(text: str) -> list[str]:
    """Command lines of this user's running processes that contain ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if text in cmdline and "\nState:\tZ" not in status:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def run_namespaces(api: client.ApiClient, run_id: str) -> list[str]:
    """The namespaces the run has made (labelled with its run id)."""
    listed = client.CoreV1Api(api).list_namespace(label_selector=f"{LABEL_RUN}={run_id}")
    return [ns.metadata.name for ns in listed.items if ns.metadata is not None]


def open_watches(api: client.ApiClient, resource: str) -> int:
    """How many WATCH requests on ``resource`` the API server is serving right now, in any
    scope: its ``apiserver_longrunning_requests`` gauge. A check's wait is a list and then a
    watch, so this is how the cluster shows that a run is inside a wait."""
    request = api.param_serialize(
        method="GET", resource_path="/metrics", auth_settings=["BearerToken"]
    )
    response = api.call_api(*request, _request_timeout=10)
    response.read()
    assert response.status == 200, f"GET /metrics: {response.status} {response.data[:200]!r}"
    total = 0
    for line in response.data.decode().splitlines():
        name, _, rest = line.partition("{")
        if name != "apiserver_longrunning_requests":
            continue
        labels, _, value = rest.rpartition("} ")
        if 'verb="WATCH"' in labels and f'resource="{resource}"' in labels:
            total += int(float(value))
    return total


def assert_no_namespaces_left(api: client.ApiClient, run_id: str) -> None:
    """Every namespace of the run is gone or being deleted (the API server finishes that)."""
    listed = client.CoreV1Api(api).list_namespace(label_selector=f"helm-harness.io/run={run_id}")
    metas = [ns.metadata for ns in listed.items if ns.metadata is not None]
    alive = [meta.name for meta in metas if meta.deletion_timestamp is None]
    assert alive == [], f"namespaces of run {run_id} left behind: {alive}"


def assert_cleaned_up_on(api: client.ApiClient, run: Run, run_id: str) -> None:
    assert_no_namespaces_left(api, run_id)
    assert processes_mentioning(f"h-{run_id}-") == [], "helm processes of the run left"
    assert re.search(r"^=+ helm-harness =+$", run.output, re.M), run.output  # the summary
    assert f"namespace h-{run_id}-" in run.output


def assert_cluster_gone(name: str) -> None:
    provider = KwokProvider()
    assert not provider.exists(name)
    assert not provider.cluster_dir(name).exists()
    assert processes_mentioning(str(provider.cluster_dir(name))) == []
    assert not kubeconfig_path("kwok", name).exists()
    assert records.read_cluster("kwok", name) is None


# -- (a) while the run's own cluster starts ------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "xdist"),
    [
        pytest.param(signal.SIGINT, [], id="SIGINT"),
        pytest.param(signal.SIGTERM, [], id="SIGTERM"),
        # the xdist controller makes the cluster in pytest_sessionstart, before the
        # session (and its pytest_sessionfinish) exists
        pytest.param(signal.SIGTERM, ["-n", "2"], id="SIGTERM-xdist"),
    ],
)
def test_interrupt_while_the_cluster_starts(
    signum: int, xdist: list[str], tmp_path: Path, runs: list[Run]
) -> None:
    suite_dir(tmp_path, never_holding("web"))
    name = f"hh-int-{uuid.uuid4().hex[:6]}"
    folder = str(KwokProvider().cluster_dir(name))
    run = start(runs, tmp_path, *xdist, "--cluster", "kwok", "--cluster-name", name)

    def control_plane_runs() -> bool:  # not just kwokctl's `--version` probes
        return any(not line.endswith("--version") for line in processes_mentioning(folder))

    try:
        run.wait_until("the control plane's processes", control_plane_runs, 120)
        run.send(signum)
        assert run.finish() == INTERRUPTED, run.output
        assert_cluster_gone(name)
        assert f"removed the kwok cluster {name} it was starting" in run.output, run.output
    finally:
        KwokProvider().delete(name)  # only if the test failed


# -- (b) while Helm installs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_cluster() -> Iterator[ClusterInfo]:
    """A kwok cluster whose pods start after 6 s, so the migrate chart's pre-install hook
    Job keeps ``helm install`` busy for that long."""
    provider = KwokProvider(pod_startup=6)
    info = provider.create(ClusterSpec(name=f"hh-slow-{uuid.uuid4().hex[:6]}"))
    yield info
    provider.delete(info.name)


@pytest.mark.parametrize("signum", SIGNALS)
def test_interrupt_while_helm_installs(
    signum: int, tmp_path: Path, runs: list[Run], slow_cluster: ClusterInfo
) -> None:
    suite_dir(tmp_path, never_holding("migrate", MIGRATE))
    run = start(runs, tmp_path, f"--kubeconfig={slow_cluster.kubeconfig}")
    run_id = run.run_id()
    installing = f"--namespace h-{run_id}-"

    def helm_installs() -> bool:
        return any(" install migrate " in line for line in processes_mentioning(installing))

    run.wait_until("helm install", helm_installs)
    with api_client(slow_cluster.kubeconfig) as api:
        batch = client.BatchV1Api(api)
        jobs: list[client.V1Job] = []

        def hook_job_made() -> bool:
            jobs[:] = [
                job
                for namespace in run_namespaces(api, run_id)
                for job in batch.list_namespaced_job(namespace).items
            ]
            return bool(jobs)

        # Helm has made the hook Job and waits for it (its pods start after 6 s).
        run.wait_until("pre-install hook Job in the run's namespace", hook_job_made)
        status = jobs[0].status
        assert status is None or not (status.completion_time or status.failed), (
            f"the hook Job finished before the signal, so Helm no longer waited: {status}"
        )
    run.send(signum)
    assert run.finish() == INTERRUPTED, run.output
    with api_client(slow_cluster.kubeconfig) as api:
        assert_cleaned_up_on(api, run, run_id)
    assert "::install PASSED" not in run.output  # stopped half-way
    assert f"removed migrate and namespace h-{run_id}-run-migrate" in run.output


# -- (c) while checks run ------------------------------------------------------------------


@pytest.mark.parametrize("signum", SIGNALS)
def test_interrupt_while_a_check_waits(
    signum: int,
    tmp_path: Path,
    runs: list[Run],
    harness_cluster: ClusterInfo,
    k8s: client.ApiClient,
) -> None:
    markers = suite_dir(tmp_path, never_holding("web"))
    watches = open_watches(k8s, "configmaps")  # before the run: the cluster's own
    run = start(runs, tmp_path, f"--kubeconfig={harness_cluster.kubeconfig}")
    run_id = run.run_id()
    run.wait_until("the wait item", lambda: any(markers.iterdir()))
    run.wait_until(  # inside the wait: its watch on the ConfigMap is open
        f"watch on {NEVER} open on the API server",
        lambda: open_watches(k8s, "configmaps") > watches,
    )
    run.send(signum)
    assert run.finish() == INTERRUPTED, run.output
    assert_cleaned_up_on(k8s, run, run_id)
    assert "run.suite.yaml::web::install PASSED" in run.output
    assert f"removed web and namespace h-{run_id}-run-web" in run.output


@pytest.mark.parametrize("signum", SIGNALS)
def test_interrupt_an_xdist_run_while_checks_wait(
    signum: int,
    tmp_path: Path,
    runs: list[Run],
    harness_cluster: ClusterInfo,
    k8s: client.ApiClient,
) -> None:
    """With ``-n 2`` each worker removes its own apps; SIGTERM reaches the controller only,
    which has the workers stopped (they are interrupted in turn) before it ends."""
    markers = suite_dir(tmp_path, never_holding("one") + never_holding("two"))
    watches = open_watches(k8s, "configmaps")  # before the run: the cluster's own
    run = start(runs, tmp_path, "-n", "2", f"--kubeconfig={harness_cluster.kubeconfig}")
    run_id = run.run_id()
    run.wait_until("both wait items", lambda: len(list(markers.iterdir())) == 2)
    run.wait_until(  # both workers inside their waits: two watches on the ConfigMap open
        f"two watches on {NEVER} open on the API server",
        lambda: open_watches(k8s, "configmaps") >= watches + 2,
    )
    run.send(signum)
    assert run.finish() == INTERRUPTED, run.output
    assert_cleaned_up_on(k8s, run, run_id)
    for app in ("one", "two"):
        assert f"removed {app} and namespace h-{run_id}-run-{app}" in run.output, run.output


def test_interrupt_with_keep_cluster_keeps_the_cluster(tmp_path: Path, runs: list[Run]) -> None:
    markers = suite_dir(tmp_path, never_holding("web"))
    name = f"hh-keep-{uuid.uuid4().hex[:6]}"
    run = start(
        runs,
        tmp_path,
        "--cluster",
        "kwok",
        "--cluster-name",
        name,
        "--keep-cluster",
        "--kwok-pod-startup=0",
    )
    try:
        run_id = run.run_id()
        run.wait_until("the wait item", lambda: any(markers.iterdir()), 120)
        run.send(signal.SIGINT)
        assert run.finish() == INTERRUPTED, run.output
        assert KwokProvider().exists(name)
        assert f"kept kwok cluster {name}" in run.output, run.output
        # the apps are removed all the same
        with api_client(kubeconfig_path("kwok", name)) as api:
            assert_cleaned_up_on(api, run, run_id)
    finally:
        KwokProvider().delete(name)
    assert_cluster_gone(name)


def test_namespaces_a_killed_worker_left_are_removed(
    tmp_path: Path,
    runs: list[Run],
    harness_cluster: ClusterInfo,
    k8s: client.ApiClient,
) -> None:
    """A worker that dies without cleaning up (killed) leaves its namespace: the xdist
    controller removes the run's namespaces its workers left once they have ended."""
    suite_dir(tmp_path, never_holding("one") + never_holding("two"))
    pids = tmp_path / "pids"
    kubeconfig = f"--kubeconfig={harness_cluster.kubeconfig}"
    run = start(runs, tmp_path, "-n", "2", "--max-worker-restart=0", kubeconfig)
    run_id = run.run_id()
    run.wait_until("both wait items", lambda: len(list(pids.iterdir())) == 2)
    victim = sorted(pids.iterdir())[0]
    os.kill(int(victim.read_text()), signal.SIGKILL)
    run.wait_until("the worker's end", lambda: "node down" in run.output)
    run.send(signal.SIGINT)
    assert run.finish() == INTERRUPTED, run.output
    assert_cleaned_up_on(k8s, run, run_id)
    assert "a worker left" in run.output, run.output
