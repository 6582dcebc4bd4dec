"""Benchmark: how fast checks notice readiness, and what the harness costs per app.

    .venv/bin/python bench/bench_checks.py [--trials 20] [--runs 5]

1. Readiness-detection latency: a pod the simulation does not manage (bound to a node
   that does not exist) is made Ready by this script through the status subresource at
   t0; the ``ready`` check, already waiting, returns at t1. Latency = t1 - t0. Goal: the
   median <= 0.2 s.
2. Per-app wall time on a kwok cluster with real-looking pod start-up (2 s + up to 2 s):
   the harness (install through the Deployer + the ``ready`` check) against a plain
   script doing ``helm install --wait`` then ``kubectl wait --for=condition=Available``
   for the same chart. Goal: ratio <= 1.1.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kubernetes import client

from harness.checks import run_check
from harness.clusters.base import ClusterSpec
from harness.clusters.kwok import KwokProvider
from harness.deploy.deployer import Deployer
from harness.deploy.images import ImageLoader
from harness.helm.client import Helm
from harness.kube.client import api_client
from harness.suite.model import App, ChartRef, Check, Suite
from harness.tools import find_helm

CHART = Path(__file__).resolve().parent.parent / "fixtures" / "charts" / "web"


def detection_latency(api: client.ApiClient, helm: Helm, trials: int) -> list[float]:
    core = client.CoreV1Api(api)
    deployer = Deployer(run_id="lat", api=api, helm=helm)
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "ghost"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: ghost\nversion: 0.1.0\n")
        (chart / "templates" / "pod.yaml").write_text(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ghost\nspec:\n"
            "  nodeName: no-such-node\n  containers: [{name: c, image: x}]\n"
        )
        latencies = []
        for trial in range(trials):
            app = App(
                name=f"g{trial}", source=ChartRef(str(chart)), release="ghost", namespace=None
            )
            suite = Suite(path=Path(tmp) / "s.suite.yaml", name="lat", apps=(app,))
            run = deployer.ensure_installed(suite, app)
            assert run.ctx is not None
            returned: list[float] = []

            def check(ctx=run.ctx, returned=returned) -> None:  # type: ignore[no-untyped-def]
                run_check(ctx, Check(kind="ready", spec={}, timeout=30))
                returned.append(time.perf_counter())

            waiter = threading.Thread(target=check)
            waiter.start()
            time.sleep(0.3)  # the check is now watching (benchmark pacing, not product code)
            status = {
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                }
            }
            t0 = time.perf_counter()
            core.patch_namespaced_pod_status("ghost", run.namespace, status)
            waiter.join(timeout=30)
            latencies.append(returned[0] - t0)
            deployer.finalize(run, keep=False)
    return latencies


def harness_app_time(
    api: client.ApiClient, helm: Helm, *, image_loader: ImageLoader | None = None
) -> float:
    """Install the web chart (2 replicas) through a Deployer of its own and pass ``ready``."""
    deployer = Deployer(run_id=uuid.uuid4().hex[:6], api=api, helm=helm, image_loader=image_loader)
    app = App(
        name="web",
        source=ChartRef(str(CHART)),
        release="web",
        namespace=None,
        values={"replicaCount": 2},
    )
    suite = Suite(path=CHART / "bench.suite.yaml", name="bench", apps=(app,))
    started = time.perf_counter()
    run = deployer.ensure_installed(suite, app)
    assert run.ctx is not None
    run_check(run.ctx, Check(kind="ready", spec={}))
    took = time.perf_counter() - started
    deployer.finalize(run, keep=False)
    return took


def plain_script_time(kubeconfig: Path, helm_binary: Path, kubectl: str) -> float:
    namespace = f"plain-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    subprocess.run(
        [
            str(helm_binary),
            "install",
            "web",
            str(CHART),
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
            "--create-namespace",
            "--set",
            "replicaCount=2",
            "--wait",
            "--timeout",
            "2m",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
            "wait",
            "--for=condition=Available",
            "deployment/web-web",
            "--timeout=120s",
        ],
        check=True,
        capture_output=True,
    )
    took = time.perf_counter() - started
    subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "delete", "ns", namespace, "--wait=false"],
        check=True,
        capture_output=True,
    )
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    kubectl = shutil.which("kubectl") or str(
        Path(__file__).resolve().parent.parent / ".venv/bin/kubectl"
    )
    helm_binary = find_helm()
    provider = KwokProvider(pod_startup=2.0, pod_jitter=2.0)
    name = f"hh-bench-{uuid.uuid4().hex[:6]}"
    info = provider.create(ClusterSpec(name=name))
    try:
        with api_client(info.kubeconfig) as api:
            helm = Helm(helm_binary, kubeconfig=info.kubeconfig)
            latencies = detection_latency(api, helm, args.trials)
            median = statistics.median(latencies)
            print(
                f"readiness-detection latency over {args.trials} trials: "
                f"median {median * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
                f"(goal <= 200 ms, ratio {median / 0.2:.2f})"
            )
            harness_times, plain_times = [], []
            for index in range(args.runs):
                harness_times.append(harness_app_time(api, helm))
                plain_times.append(plain_script_time(info.kubeconfig, helm_binary, kubectl))
                print(
                    f"run {index + 1}/{args.runs}: harness {harness_times[-1]:.2f}s, "
                    f"helm --wait + kubectl wait {plain_times[-1]:.2f}s",
                    flush=True,
                )
            h, p = statistics.median(harness_times), statistics.median(plain_times)
            print(
                f"per-app wall time (pod start-up 2s + up to 2s), median of {args.runs}: "
                f"harness {h:.2f}s, plain {p:.2f}s, ratio {h / p:.2f} (goal <= 1.1)"
            )
    finally:
        provider.delete(name)


if __name__ == "__main__":
    main()
