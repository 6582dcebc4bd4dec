"""Faults injected into real kwok control planes (issue: "A 10 s etcd outage leaves the kwok
control plane broken for good"): etcd stalled until kube-controller-manager and kube-scheduler
have lost leader election and exited, etcd killed, and a component that cannot start again.
The provider's watcher must start again what exited, so that a Deployment gets its pods
afterwards, and end the run at once, naming the component and its last log lines, when it
cannot.

Every fault goes into a cluster of these tests' own, never into the session's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from harness.clusters.base import ClusterInfo, ClusterSpec
from harness.clusters.kwok import KwokProvider, creation_lock
from harness.kube.client import api_client
from harness.kube.wait import all_have_condition, wait_for

CONTROLLERS = ("kube-controller-manager", "kube-scheduler")
# s etcd stays stopped at most: both usually exit after 10-20 s, but once in a full CI run
# kube-scheduler was still running at 45 s
STALL_LIMIT = 90.0
BACK_WITHIN = 20.0  # s for the watcher to have a component running again (it looks every 1 s)
PODS_WITHIN = 60.0  # s for a Deployment's pods to be made, scheduled and Ready
FATAL_WITHIN = 60.0  # s for a run to end once a component cannot start (its test sleeps 300 s)


@pytest.fixture(scope="module")
def faulty() -> Iterator[tuple[KwokProvider, ClusterInfo]]:
    """A cluster made (and so watched) by this process, for the faults that heal."""
    provider = KwokProvider()
    name = f"hh-fault-{uuid.uuid4().hex[:6]}"
    try:
        yield provider, provider.create(ClusterSpec(name=name, nodes=1))
    finally:
        provider.delete(name)


def pid_of(folder: Path, component: str) -> int | None:
    try:
        return int((folder / "pids" / f"{component}.pid").read_text().strip())
    except (OSError, ValueError):
        return None  # between the watcher's removal of a dead one's file and kwokctl's new one


def running(pid: int | None) -> bool:
    """Whether ``pid`` is a live process (a stopped one too; not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return pid is not None and stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"expected {what} within {timeout:g}s", pytrace=False)
        time.sleep(0.25)


def started_again(folder: Path, before: dict[str, int | None]) -> Callable[[], bool]:
    """Every component of ``before`` runs again, as a new process."""

    def check() -> bool:
        now = {component: pid_of(folder, component) for component in before}
        return all(now[c] != before[c] and running(now[c]) for c in before)

    return check


def assert_a_deployment_gets_pods(info: ClusterInfo, name: str) -> None:
    """A new Deployment's pods are made (controller-manager), bound (scheduler), Ready."""
    labels = {"app": name}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="registry.example.invalid/a")]
                ),
            ),
        ),
    )
    with api_client(info.kubeconfig) as api:
        client.AppsV1Api(api).create_namespaced_deployment("default", deployment)
        wait_for(
            client.CoreV1Api(api).list_namespaced_pod,
            all_have_condition("Ready", at_least=2),
            expected=f"Deployment {name}'s 2 pods Ready",
            timeout=PODS_WITHIN,
            namespace="default",
            label_selector=f"app={name}",
        )


def test_controllers_that_exit_while_etcd_stalls_are_started_again(
    faulty: tuple[KwokProvider, ClusterInfo],
) -> None:
    provider, info = faulty
    folder = provider.cluster_dir(info.name)
    etcd = pid_of(folder, "etcd")
    assert etcd is not None and running(etcd)
    before = {component: pid_of(folder, component) for component in CONTROLLERS}
    os.kill(etcd, signal.SIGSTOP)  # etcd stalls: the API server's requests to it hang
    try:
        wait_until(
            lambda: not any(running(pid) for pid in before.values()),
            STALL_LIMIT,
            "kube-controller-manager and kube-scheduler to exit, having lost leader election",
        )
    finally:
        os.kill(etcd, signal.SIGCONT)
    wait_until(
        started_again(folder, before),
        BACK_WITHIN,
        "kube-controller-manager and kube-scheduler to run again",
    )
    assert_a_deployment_gets_pods(info, "after-stall")
    notes = provider.restarts(info.name)  # one line each, with the last words of its log
    for component in CONTROLLERS:
        said = [note for note in notes if f"restarted {component}" in note]
        assert said and "leaderelection lost" in said[0].lower(), notes


def test_a_killed_etcd_is_started_again(faulty: tuple[KwokProvider, ClusterInfo]) -> None:
    provider, info = faulty
    folder = provider.cluster_dir(info.name)
    before = {"etcd": pid_of(folder, "etcd")}
    assert running(before["etcd"])
    # While etcd's ports are free, no other run on this machine creates a kwok cluster (one
    # could take them): and if etcd does not come back, this cluster goes before they may.
    with creation_lock(f"{info.name} (its etcd killed by a test)"):
        try:
            os.kill(before["etcd"] or 0, signal.SIGKILL)
            wait_until(started_again(folder, before), BACK_WITHIN, "etcd to run again")
        except BaseException:
            provider.delete(info.name)  # its API server must not find another etcd there
            raise
    assert_a_deployment_gets_pods(info, "after-kill")
    assert any("restarted etcd" in note for note in provider.restarts(info.name))


def test_a_component_that_cannot_start_again_ends_the_run_naming_it(tmp_path: Path) -> None:
    name = f"hh-fault-{uuid.uuid4().hex[:6]}"
    # Made by another process, so that this one does not watch it (and end this run).
    up = [sys.executable, "-m", "harness.cli", "cluster", "up", "--cluster", "kwok"]
    up += ["--name", name, "--pod-startup", "0", "--pod-jitter", "0"]
    made = subprocess.run(up, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    folder = KwokProvider().cluster_dir(name)
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """\
            import time

            def test_uses_the_cluster(harness_cluster):
                time.sleep(300)
            """
        )
    )
    run = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_inner.py"]
    run += ["--cluster=kwok", f"--cluster-name={name}", "--reuse-cluster"]
    run += [f"--report-dir={tmp_path / 'reports'}"]
    try:
        binary = folder / "bin" / "kube-scheduler"
        assert binary.is_symlink()  # to the shared build: replaced, never written through
        binary.unlink()
        binary.write_text(
            "#!/bin/sh\necho 'injected fault: this kube-scheduler cannot start'\nexit 1\n"
        )
        binary.chmod(0o755)
        os.kill(pid_of(folder, "kube-scheduler") or 0, signal.SIGKILL)
        started = time.monotonic()
        env = {**os.environ, "HELM_HARNESS_METRICS_WAIT": "0"}
        proc = subprocess.run(
            run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=FATAL_WITHIN
        )
        took = time.monotonic() - started
    finally:
        KwokProvider().delete(name)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert took < FATAL_WITHIN
    assert f"kwok cluster {name}: kube-scheduler cannot be started again" in out, out
    assert "injected fault: this kube-scheduler cannot start" in out, out  # its log's end
