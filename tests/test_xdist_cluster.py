"""One cluster for all xdist workers (made by the controller before they start, deleted
once at the end), or one per worker; real kwok clusters."""

from __future__ import annotations

import json

import pytest

from harness.clusters.kwok import KwokProvider

PROBE = """
import json, os, pathlib

def test_{n}(harness_cluster, k8s):
    from kubernetes import client
    client.CoreV1Api(k8s).list_namespace()
    record = {{"worker": os.environ.get("PYTEST_XDIST_WORKER"), "name": harness_cluster.name,
              "created": harness_cluster.created}}
    pathlib.Path("seen-{n}.json").write_text(json.dumps(record))
"""


def seen(pytester: pytest.Pytester) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(pytester.path.glob("seen-*.json"))]


def test_workers_share_the_controllers_cluster(pytester: pytest.Pytester) -> None:
    for n in range(4):
        pytester.makepyfile(**{f"test_{n}": PROBE.format(n=n)})
    result = pytester.runpytest_subprocess(
        "-n", "2", "--cluster", "kwok", "--kwok-pod-startup", "0"
    )
    result.assert_outcomes(passed=4)
    records = seen(pytester)
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    names = {r["name"] for r in records}
    assert len(names) == 1, names
    assert not any(r["created"] for r in records)  # workers adopted it; only the controller deletes
    (name,) = names
    result.stdout.fnmatch_lines([f"*deleted kwok cluster {name}*"])
    assert not KwokProvider().exists(str(name))


def test_cluster_per_worker(pytester: pytest.Pytester) -> None:
    for n in range(4):
        pytester.makepyfile(**{f"test_{n}": PROBE.format(n=n)})
    result = pytester.runpytest_subprocess(
        "-n", "2", "--cluster", "kwok", "--kwok-pod-startup", "0", "--cluster-per-worker"
    )
    result.assert_outcomes(passed=4)
    records = seen(pytester)
    by_worker = {r["worker"]: r["name"] for r in records}
    assert len(set(by_worker.values())) == 2
    for worker, name in by_worker.items():
        assert str(name).endswith(f"-{worker}")
        assert not KwokProvider().exists(str(name))


def test_a_cluster_the_controller_cannot_make_fails_items_cleanly(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_0=PROBE.format(n=0))
    config = pytester.path / "bad.yaml"
    config.write_text(
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokctlConfiguration\n"
        "componentsPatches:\n- name: kube-apiserver\n"
        "  extraArgs: [{key: no-such-flag, value: '1'}]\n"
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--cluster", "kwok", f"--cluster-config={config}", "--cluster-timeout=10s"
    )
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "helm-harness could not get a cluster: kwokctl could not create cluster" in out
    assert "unknown flag: --no-such-flag" in out  # kube-apiserver's own words, from its log
