"""Benchmark: kwok cluster create-to-ready, reuse of an existing cluster, and the fixture
chart's install-to-Available time. Prints medians over --runs runs and the goal ratios.

    .venv/bin/python bench/bench_kwok.py [--runs 3] [--pod-startup 0]

Goals on a 2-core machine: create <= 10 s (kind's published figures are 12-36 s),
reuse <= 1 s. A ratio below 1.0 meets the goal.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

from kubernetes import client

from harness.clusters.base import ClusterSpec
from harness.clusters.kwok import KwokProvider
from harness.clusters.registry import acquire
from harness.helm.client import Helm
from harness.kube.client import api_client
from harness.kube.readiness import deployment_ready
from harness.kube.wait import wait_for
from harness.tools import find_helm
from harness.units import parse_duration

CHART = Path(__file__).resolve().parent.parent / "fixtures" / "charts" / "web"
GOALS = {"create-to-ready": 10.0, "reuse": 1.0}


def one_run(provider: KwokProvider, helm_binary: Path) -> dict[str, float]:
    name = f"hh-bench-{uuid.uuid4().hex[:6]}"
    figures: dict[str, float] = {}
    started = time.perf_counter()
    info = provider.create(ClusterSpec(name=name))
    figures["create-to-ready"] = time.perf_counter() - started
    try:
        started = time.perf_counter()
        acquire(provider, ClusterSpec(name=name), reuse=True)
        figures["reuse"] = time.perf_counter() - started

        helm = Helm(helm_binary, kubeconfig=info.kubeconfig)
        with api_client(info.kubeconfig) as api:
            started = time.perf_counter()
            helm.install("web", str(CHART), namespace="bench", values={"replicaCount": 2})
            wait_for(
                client.AppsV1Api(api).list_namespaced_deployment,
                lambda items: len(items) == 1 and deployment_ready(items[0]),
                expected="deployment/web-web rolled out",
                timeout=120,
                namespace="bench",
            )
            figures["install-to-Available"] = time.perf_counter() - started
    finally:
        provider.delete(name)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pod-startup", type=parse_duration, default=0.0)
    parser.add_argument("--pod-jitter", type=parse_duration, default=0.0)
    args = parser.parse_args()
    provider = KwokProvider(pod_startup=args.pod_startup, pod_jitter=args.pod_jitter)
    helm_binary = find_helm()
    runs = []
    for index in range(args.runs):
        figures = one_run(provider, helm_binary)
        runs.append(figures)
        shown = ", ".join(f"{key} {value:.2f}s" for key, value in figures.items())
        print(f"run {index + 1}/{args.runs}: {shown}", flush=True)
    delays = f"pod start-up {args.pod_startup:g}s + up to {args.pod_jitter:g}s"
    print(f"\nmedian of {args.runs} runs ({delays}):")
    for key in runs[0]:
        median = statistics.median(run[key] for run in runs)
        goal = GOALS.get(key)
        verdict = f"  goal <= {goal:g}s, ratio {median / goal:.2f}" if goal else ""
        print(f"  {key:22} {median:6.2f}s{verdict}")


if __name__ == "__main__":
    main()
