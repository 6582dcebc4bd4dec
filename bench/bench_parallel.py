"""Benchmark: a harness run of 20 apps on one shared kwok cluster with ``pytest -n 4``
against ``-n 1``: the wall-time ratio, and the peak memory (max RSS) of each xdist worker.

    .venv/bin/python bench/bench_parallel.py [--apps 20] [--workers 4] [--runs 1]
                                             [--pod-startup 2s] [--pod-jitter 2s]

The cluster starts pods after 2 s plus up to 2 s more (like a real kubelet pulling and
starting), so an app spends most of its time waiting, which workers overlap. Each app is
a one-app suite of the fixture chart ``web`` with the ``ready`` check. Metric snapshots
are not waited for (``--metrics-wait=0``): the figure is install + ready + removal.
Goals: ratio >= 3, and <= 200 MB max RSS per worker. The peak RSS is the kernel's
high-water mark (``VmHWM`` in ``/proc/<pid>/status``), read until each worker ends.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from procs import peak_rss_mb, python_children  # bench/procs.py

from harness.clusters.base import ClusterSpec
from harness.clusters.kwok import KwokProvider
from harness.units import parse_duration

CHART = Path(__file__).resolve().parent.parent / "fixtures" / "charts" / "web"
GOAL_RATIO = 3.0
GOAL_RSS_MB = 200.0
SAMPLE_EVERY = 0.2


@dataclass
class Outcome:
    workers: int
    seconds: float
    exit_code: int
    peak_rss_mb: dict[int, float] = field(default_factory=dict)  # worker pid -> MB
    controller_rss_mb: float = 0.0
    tail: str = ""


def write_suites(folder: Path, apps: int) -> None:
    (folder / "pytest.ini").write_text("[pytest]\n")
    for index in range(apps):
        (folder / f"app{index:02}.suite.yaml").write_text(
            "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
            f"  - {{name: web{index:02}, chart: {CHART}, checks: [{{ready: {{}}}}]}}\n"
        )


def one_run(folder: Path, kubeconfig: Path, workers: int) -> Outcome:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", str(workers)]
    argv += [f"--kubeconfig={kubeconfig}", "--metrics-wait=0", "--report-dir", "report"]
    env = {**os.environ, "HELM_HARNESS_METRICS_WAIT": "0"}
    outcome = Outcome(workers=workers, seconds=0.0, exit_code=0)
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            for pid in python_children(proc.pid):
                peak = peak_rss_mb(pid)
                if peak is not None:
                    outcome.peak_rss_mb[pid] = max(peak, outcome.peak_rss_mb.get(pid, 0.0))
            outcome.controller_rss_mb = peak_rss_mb(proc.pid) or outcome.controller_rss_mb
            time.sleep(SAMPLE_EVERY)
        outcome.seconds = time.perf_counter() - started
        outcome.exit_code = proc.returncode
        log.seek(0)
        outcome.tail = "\n".join(log.read().strip().splitlines()[-3:])
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pod-startup", type=parse_duration, default=2.0)
    parser.add_argument("--pod-jitter", type=parse_duration, default=2.0)
    args = parser.parse_args()
    provider = KwokProvider(pod_startup=args.pod_startup, pod_jitter=args.pod_jitter)
    name = f"hh-bench-{uuid.uuid4().hex[:6]}"
    info = provider.create(ClusterSpec(name=name))
    results: dict[int, list[Outcome]] = {1: [], args.workers: []}
    try:
        with tempfile.TemporaryDirectory(prefix="hh-bench-parallel-") as tmp:
            write_suites(Path(tmp), args.apps)
            for index in range(args.runs):
                for workers in results:
                    outcome = one_run(Path(tmp), info.kubeconfig, workers)
                    results[workers].append(outcome)
                    rss = ", ".join(f"{mb:.0f}" for mb in outcome.peak_rss_mb.values())
                    print(
                        f"run {index + 1}/{args.runs} -n {workers}: {outcome.seconds:.1f}s, "
                        f"exit {outcome.exit_code}, worker max RSS MB [{rss}], "
                        f"controller {outcome.controller_rss_mb:.0f} MB\n  {outcome.tail}",
                        flush=True,
                    )
    finally:
        provider.delete(name)
    serial = statistics.median(o.seconds for o in results[1])
    parallel = statistics.median(o.seconds for o in results[args.workers])
    worst = max(mb for o in results[args.workers] for mb in o.peak_rss_mb.values())
    cores = os.cpu_count()
    delays = f"pod start-up {args.pod_startup:g}s + up to {args.pod_jitter:g}s"
    print(f"\n{args.apps} apps, {delays}, metric snapshots not waited for, {cores} cores:")
    print(f"  -n 1: {serial:.1f}s   -n {args.workers}: {parallel:.1f}s")
    print(f"  speed-up {serial / parallel:.2f}x (goal >= {GOAL_RATIO:g}x on {cores} cores)")
    print(f"  max RSS per worker (-n {args.workers}): {worst:.0f} MB (goal <= {GOAL_RSS_MB:g})")
    if any(o.exit_code != 0 for outcomes in results.values() for o in outcomes):
        print("  note: a run did not pass (see its exit code above)")


if __name__ == "__main__":
    main()
