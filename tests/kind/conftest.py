"""The kind test tier: real containers on a real kind cluster whose node image was built on
this machine (``helm-harness tools install --kind``). ``scripts/test`` runs it after the
kwok tier as ``pytest tests/kind --cluster kind --cluster-name NAME``; this conftest sets
the test bed's environment (:func:`harness.tools.kind_testbed_env`). The plugin itself
creates the session's kind cluster, the tests' own runs reuse it (``--reuse-cluster``),
and the plugin deletes it at the end.

What the tier needs and checks for, failing (never skipping) when it is missing:
Docker answering, kind, the node image and the fixture image."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import tools
from harness.clusters.base import ClusterInfo

REPO = Path(__file__).resolve().parents[2]
FIXTURE_IMAGE = "helm-harness/fixture-app:1"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(tools.kind_testbed_env())
    # Before the plugin reads its options: the node image built here.
    if not config.getoption("harness_kind_image"):
        config.option.harness_kind_image = os.environ["HELM_HARNESS_KIND_IMAGE"]
    problems = []
    if shutil.which("kind") is None:
        problems.append("kind is not on PATH nor in the cache")
    images = [os.environ["HELM_HARNESS_KIND_IMAGE"], FIXTURE_IMAGE]
    for image in images:
        probe = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
        if probe.returncode != 0:
            problems.append(f"the Docker engine has no image {image}")
    if config.getoption("harness_cluster") != "kind":
        problems.append("run the kind tier with --cluster kind (scripts/test does)")
    if problems:
        raise pytest.UsageError(
            "the kind test tier cannot run: "
            + "; ".join(problems)
            + ". Provision it with 'helm-harness tools install --kind' (scripts/setup does)."
        )


@pytest.fixture(scope="session")
def kind_cluster(harness_cluster: ClusterInfo) -> ClusterInfo:
    """The session's kind cluster, made by the plugin from the tier's options."""
    assert harness_cluster.provider == "kind"
    return harness_cluster


def kind_args(cluster: ClusterInfo, *more: str) -> list[str]:
    """Arguments for a run (pytester or helm-harness run) on the session's kind cluster."""
    return [
        "--cluster=kind",
        f"--cluster-name={cluster.name}",
        "--reuse-cluster",
        "-p",
        "no:cacheprovider",
        *more,
    ]


def node_containers(name: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={name}", "-q"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def volumes_of(containers: list[str]) -> list[str]:
    """The anonymous volumes (kind nodes' /var) the containers use."""
    found = []
    for container in containers:
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", container],
            capture_output=True,
            text=True,
        )
        found += out.stdout.split()
    return found


def volume_exists(volume: str) -> bool:
    probe = subprocess.run(["docker", "volume", "inspect", volume], capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def own_cluster_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A name for a cluster a test creates itself; whatever is left of it is removed after."""
    import uuid

    name = f"hh-kt-{uuid.uuid4().hex[:6]}"
    yield name
    subprocess.run(["kind", "delete", "cluster", "--name", name], capture_output=True, timeout=120)
