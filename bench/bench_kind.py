"""Benchmark: real kind clusters (node image built here), side by side in one run.

    .venv/bin/python bench/bench_kind.py [--creates 2] [--apps 3]

Needs the kind test bed (``helm-harness tools install --kind``); runs kind with the test
bed's ``docker`` wrapper first on PATH, as the project's tests do. Prints, with the goals:

1. create-to-Ready: ``KindProvider.create`` (``kind create cluster --wait``: the node and
   its control plane Ready) of a fresh cluster. Goal <= 25 s (kind's published 12-36 s).
2. reuse: ``acquire(..., reuse=True)`` of that cluster. Goal <= 1 s.
3. per-app install-to-ready of the fixture web chart (2 replicas, a real readinessProbe):
   the harness (the Deployer, images loaded, + the ``ready`` check) against ``helm install
   --wait`` + ``kubectl wait --for=condition=Available`` on the same cluster, alternating.
   Goal: ratio <= 1.1.
4. image loading per app: ``kind load docker-image`` of a small image the cluster does not
   have yet (a fresh image ID each time, through the harness's ImageLoader). Goal <= 2 s.
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
from collections.abc import Callable
from pathlib import Path

from bench_checks import harness_app_time, plain_script_time

from harness import tools
from harness.clusters.base import ClusterSpec
from harness.clusters.kind import KindProvider
from harness.clusters.registry import acquire
from harness.deploy.images import ImageLoader
from harness.helm.client import Helm
from harness.kube.client import api_client

REPO = Path(__file__).resolve().parent.parent
FIXTURE_IMAGE = "helm-harness/fixture-app:1"


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    started = time.monotonic()
    fn(*args, **kwargs)
    return time.monotonic() - started


def fresh_image(folder: Path) -> str:
    """A small image with an ID no cluster has: the fixture image plus a unique label."""
    tag = f"helm-harness/bench-load:{uuid.uuid4().hex[:8]}"
    (folder / "Dockerfile").write_text(f"FROM {FIXTURE_IMAGE}\nLABEL bench={tag}\n")
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(folder)],
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    return tag


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=2, help="clusters to create (default 2)")
    parser.add_argument("--apps", type=int, default=3, help="apps per side (default 3)")
    args = parser.parse_args()
    os.environ.update(tools.kind_testbed_env())
    image = os.environ["HELM_HARNESS_KIND_IMAGE"]
    provider = KindProvider()
    names = [f"hh-bench-{uuid.uuid4().hex[:6]}" for _ in range(args.creates)]
    creates, reuses, harness_s, plain_s, loads = [], [], [], [], []
    try:
        for name in names:
            spec = ClusterSpec(name=name, image=image, wait_seconds=300)
            creates.append(timed(provider.create, spec))
            reuses.append(timed(acquire, provider, spec, reuse=True))
            print(f"created {name}: {creates[-1]:.1f} s, reuse {reuses[-1]:.2f} s", flush=True)
        info = provider.get(names[0])
        helm_bin = tools.find_helm()
        with api_client(info.kubeconfig, info.context) as api, tempfile.TemporaryDirectory() as tmp:
            helm = Helm(helm_bin, kubeconfig=info.kubeconfig, context=info.context)
            loader = ImageLoader(lambda images: provider.load_images(info.name, images))
            kubectl = str(tools.bin_dir() / "kubectl")
            # Warm-up: the fixture image into the node, and a first install of each kind.
            harness_app_time(api, helm, image_loader=loader)
            plain_script_time(info.kubeconfig, helm_bin, kubectl)
            for index in range(args.apps):
                harness_s.append(harness_app_time(api, helm, image_loader=loader))
                plain_s.append(plain_script_time(info.kubeconfig, helm_bin, kubectl))
                tag = fresh_image(Path(tmp))
                started = time.monotonic()
                result = loader.load([tag])
                loads.append(time.monotonic() - started)
                assert result.loaded == [tag], result
                subprocess.run(["docker", "image", "rm", tag], capture_output=True)
                print(
                    f"app {index}: harness {harness_s[-1]:.2f} s, plain {plain_s[-1]:.2f} s, "
                    f"load {loads[-1]:.2f} s",
                    flush=True,
                )
    finally:
        for name in names:
            provider.delete(name)
    med = statistics.median
    ratio = med(harness_s) / med(plain_s)
    print()
    print(f"{'figure':58} {'median':>9} {'goal':>8}")
    print(f"{'kind create-to-Ready':58} {med(creates):8.1f}s {'<= 25s':>8}")
    print(f"{'reuse of an existing cluster':58} {med(reuses):8.2f}s {'<= 1s':>8}")
    print(f"{'install-to-ready, harness (images loaded + ready check)':58} {med(harness_s):8.2f}s")
    print(f"{'install-to-ready, helm install --wait + kubectl wait':58} {med(plain_s):8.2f}s")
    print(f"{'  ratio harness / plain':58} {ratio:8.2f}x {'<= 1.1':>8}")
    label = "image load per app (a small image new to the cluster)"
    print(f"{label:58} {med(loads):8.2f}s {'<= 2s':>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
