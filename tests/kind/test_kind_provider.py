"""The kind provider's whole lifecycle on real kind clusters (node containers in the local
Docker engine): create and delete with nothing left, reuse, --keep-cluster,
--keep-on-failure, Ctrl-C while a cluster starts, cluster sweep, and --cluster auto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kubernetes import client

from harness import tools
from harness.clusters import records
from harness.clusters.base import ClusterInfo, ClusterSpec, kubeconfig_path
from harness.clusters.kind import KindProvider
from harness.clusters.registry import acquire, get_provider
from harness.clusters.sweep import sweep
from harness.errors import ClusterError
from harness.kube.client import api_client
from tests.conftest import FIXTURE_CHARTS
from tests.kind.conftest import FIXTURE_IMAGE, kind_args, node_containers, volume_exists, volumes_of

READY_SUITE = f"""apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: web
    chart: {FIXTURE_CHARTS / "web"}
    checks: [{{ready: {{}}}}]
"""
FAILING_SUITE = f"""apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: web
    chart: {FIXTURE_CHARTS / "web"}
    values: {{simulate: {{test: fail}}}}
    checks: [{{ready: {{}}}}, {{helmTest: {{}}}}]
"""


def spec(name: str) -> ClusterSpec:
    return ClusterSpec(name=name, image=os.environ["HELM_HARNESS_KIND_IMAGE"], wait_seconds=180)


def assert_nothing_left(name: str, volumes: list[str]) -> None:
    assert node_containers(name) == []
    assert [v for v in volumes if volume_exists(v)] == []
    assert records.read_cluster("kind", name) is None
    assert not kubeconfig_path("kind", name).exists()


def test_create_reuse_and_delete_leave_nothing(own_cluster_name: str) -> None:
    provider = KindProvider()
    info = provider.create(spec(own_cluster_name))
    assert info.created and info.context == f"kind-{own_cluster_name}"
    assert info.kubeconfig.stat().st_mode & 0o777 == 0o600
    with api_client(info.kubeconfig, info.context) as api:
        nodes = client.CoreV1Api(api).list_node().items
        assert [n.status.node_info.kubelet_version for n in nodes] == [tools.K8S_VERSION]
    containers = node_containers(own_cluster_name)
    assert len(containers) == 1
    volumes = volumes_of(containers)
    assert volumes, "a kind node keeps /var in a volume"
    reused = acquire(provider, spec(own_cluster_name), reuse=True)
    assert not reused.created and reused.name == own_cluster_name
    provider.delete(own_cluster_name)
    assert_nothing_left(own_cluster_name, volumes)


def test_a_failed_create_says_why_and_leaves_nothing(own_cluster_name: str, tmp_path: Path) -> None:
    """A node image that is no kind node (the fixture image: no shell, no systemd): kind
    starts the node container, then fails; the provider exports the node's logs into the
    given folder and removes everything."""
    broken = ClusterSpec(
        name=own_cluster_name, image=FIXTURE_IMAGE, wait_seconds=60, logs_dir=tmp_path
    )
    with pytest.raises(ClusterError) as failure:
        KindProvider().create(broken)
    message = str(failure.value)
    assert f"kind could not create cluster {own_cluster_name!r}" in message
    assert "ERROR" in message or "failed" in message  # kind's own stderr
    assert_nothing_left(own_cluster_name, [])


def test_keep_cluster_keeps_it_and_keep_on_failure_keeps_the_namespace(
    pytester: pytest.Pytester, own_cluster_name: str
) -> None:
    (pytester.path / "ok.suite.yaml").write_text(READY_SUITE)
    result = pytester.runpytest_subprocess(
        "--cluster=kind",
        f"--cluster-name={own_cluster_name}",
        "--keep-cluster",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*kept kind cluster {own_cluster_name}*"])
    assert KindProvider().exists(own_cluster_name)

    (pytester.path / "ok.suite.yaml").unlink()
    (pytester.path / "bad.suite.yaml").write_text(FAILING_SUITE)
    result = pytester.runpytest_subprocess(
        *kind_args(ClusterInfo("kind", own_cluster_name, Path()), "--keep-on-failure"),
    )
    result.assert_outcomes(passed=2, failed=1)
    info = KindProvider().get(own_cluster_name)
    with api_client(info.kubeconfig, info.context) as api:
        kept = (
            client.CoreV1Api(api).list_namespace(label_selector="helm-harness.io/suite=bad").items
        )
    assert [ns.status.phase for ns in kept] == ["Active"]
    KindProvider().delete(own_cluster_name)


def test_ctrl_c_while_the_cluster_starts_leaves_nothing(
    pytester: pytest.Pytester, own_cluster_name: str
) -> None:
    (pytester.path / "ok.suite.yaml").write_text(READY_SUITE)
    argv = [sys.executable, "-m", "pytest", "--cluster=kind", f"--cluster-name={own_cluster_name}"]
    proc = subprocess.Popen(
        argv, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while not node_containers(own_cluster_name):
        assert proc.poll() is None and time.monotonic() < deadline, "no node container came"
        time.sleep(0.5)
    volumes = volumes_of(node_containers(own_cluster_name))
    time.sleep(3)  # kind is now inside kubeadm init
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert f"removed the kind cluster {own_cluster_name}" in output, output
    assert_nothing_left(own_cluster_name, volumes)


def test_sweep_deletes_a_cluster_whose_run_died(own_cluster_name: str) -> None:
    provider = KindProvider()
    provider.create(spec(own_cluster_name))
    volumes = volumes_of(node_containers(own_cluster_name))
    record = records.read_cluster("kind", own_cluster_name)
    assert record is not None
    gone = subprocess.Popen(["true"])
    gone.wait()
    data = json.loads(record.path.read_text())
    data["holders"] = [{"pid": gone.pid, "started": None, "run_id": ""}]
    record.path.write_text(json.dumps(data))
    swept = sweep(select=lambda r: r.name == own_cluster_name)
    assert any(f"kind cluster {own_cluster_name}" in line for line in swept.removed), swept
    assert_nothing_left(own_cluster_name, volumes)


def test_auto_chooses_kind_when_docker_answers() -> None:
    assert get_provider("auto").name == "kind"


def test_images_are_loaded_once_and_named_on_the_install_item(
    pytester: pytest.Pytester, kind_cluster: ClusterInfo
) -> None:
    (pytester.path / "ok.suite.yaml").write_text(
        textwrap.dedent(READY_SUITE)
        + f"""  - name: web2
    chart: {FIXTURE_CHARTS / "web"}
    checks: [{{ready: {{}}}}]
"""
    )
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(*kind_args(kind_cluster, f"--report-dir={report}"))
    result.assert_outcomes(passed=4)
    apps = {a["app"]: a for a in json.loads((report / "results.json").read_text())["apps"]}
    assert apps["web"]["images_loaded"] == ["helm-harness/fixture-app:1"]
    assert apps["web2"]["images_loaded"] == ["helm-harness/fixture-app:1"]
    junit = (report / "junit.xml").read_text()
    assert 'name="images_loaded" value="helm-harness/fixture-app:1"' in junit
