"""Benchmark: an upgrade run of one app (install the released version, check, upgrade,
check, roll back, check) against a plain install-and-check of the same app, on a kwok
cluster with real-looking pod start-up (2 s + up to 2 s). Goal: ratio <= 2.2.

    .venv/bin/python bench/bench_upgrade.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

from harness.checks import run_check
from harness.clusters.base import ClusterSpec
from harness.clusters.kwok import KwokProvider
from harness.deploy.deployer import PHASES, Deployer
from harness.helm.client import Helm
from harness.kube.client import api_client
from harness.suite.model import App, ChartRef, Check, Suite
from harness.tools import find_helm

VERSIONS = Path(__file__).resolve().parent.parent / "fixtures" / "charts" / "versions"
READY = Check(kind="ready", spec={})


def timed_run(
    deployer: Deployer, *, upgrade: bool, replicas: int, steps: dict[str, list[float]]
) -> float:
    app = App(
        name=f"shop{uuid.uuid4().hex[:4]}",
        source=ChartRef(str(VERSIONS / "shop-0.2.0")),
        release="shop",
        namespace=None,
        values={"replicaCount": replicas},
        upgrade_from=ChartRef(str(VERSIONS / "shop-0.1.0")) if upgrade else None,
    )
    suite = Suite(path=VERSIONS / "bench.suite.yaml", name="bench", apps=(app,))
    started = time.perf_counter()
    for phase in PHASES if upgrade else (None,):
        step_started = time.perf_counter()
        run = deployer.ensure_phase(suite, app, phase)
        helm_done = time.perf_counter()
        assert run.ctx is not None
        run_check(run.ctx, READY)
        label = phase or "plain"
        steps.setdefault(f"{label}: helm", []).append(helm_done - step_started)
        steps.setdefault(f"{label}: ready", []).append(time.perf_counter() - helm_done)
    took = time.perf_counter() - started
    deployer.finalize(deployer.app_run(suite, app), keep=False)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    provider = KwokProvider(pod_startup=2.0, pod_jitter=2.0)
    name = f"hh-bench-{uuid.uuid4().hex[:6]}"
    info = provider.create(ClusterSpec(name=name))
    try:
        with api_client(info.kubeconfig) as api:
            helm = Helm(find_helm(), kubeconfig=info.kubeconfig)
            deployer = Deployer(run_id=uuid.uuid4().hex[:6], api=api, helm=helm, simulated=True)
            plain, upgraded = [], []
            steps: dict[str, list[float]] = {}
            for index in range(args.runs):
                plain.append(
                    timed_run(deployer, upgrade=False, replicas=args.replicas, steps=steps)
                )
                upgraded.append(
                    timed_run(deployer, upgrade=True, replicas=args.replicas, steps=steps)
                )
                print(
                    f"run {index + 1}/{args.runs}: install+check {plain[-1]:.2f}s, "
                    f"upgrade run {upgraded[-1]:.2f}s",
                    flush=True,
                )
            for step, values in steps.items():
                print(f"  {step:18} median {statistics.median(values):.2f}s")
            p, u = statistics.median(plain), statistics.median(upgraded)
            print(
                f"{args.replicas} replica(s), median of {args.runs}: "
                f"install+check {p:.2f}s, upgrade run {u:.2f}s, "
                f"ratio {u / p:.2f} (goal <= 2.2)"
            )
    finally:
        provider.delete(name)


if __name__ == "__main__":
    main()
