"""Which images an app's rendered manifests name, and loading each (image, ID) once per
run. The loads themselves run for real in the kind tier (tests/kind); here the loader is
given its load and local-ID functions, to check the bookkeeping around them."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from harness.deploy.images import ImageLoader, images_in
from harness.errors import ClusterError

RENDERED = """
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers: [{name: init, image: "busybox:1.36"}]
      containers:
        - {name: app, image: "example/app:1.0"}
        - {name: side, image: " example/app:1.0 "}
---
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: "example/job@sha256:abc"}]
---
apiVersion: v1
kind: Pod
metadata: {annotations: {helm.sh/hook: test}}
spec:
  containers: [{name: test, image: "example/test:2"}]
  ephemeralContainers: [{name: debug, image: "example/debug:1"}]
---
apiVersion: example.org/v1
kind: Widget
spec:
  podTemplate: {spec: {containers: [{name: op, image: "example/op:3"}]}}
  containers: "not a list"
---
apiVersion: v1
kind: ConfigMap
data: {image: "not-a-container:1"}
"""


def test_images_in_finds_every_container_image_once_in_order() -> None:
    docs = list(yaml.safe_load_all(RENDERED))
    assert images_in(docs) == [
        "busybox:1.36",
        "example/app:1.0",
        "example/job@sha256:abc",
        "example/test:2",
        "example/debug:1",
        "example/op:3",
    ]


def test_each_image_and_id_loads_once_and_unknown_images_are_named() -> None:
    loads: list[list[str]] = []
    ids = {"a:1": "sha256:1", "b:1": "sha256:2"}
    loader = ImageLoader(lambda images: loads.append(list(images)), local_id=ids.get)
    first = loader.load(["a:1", "b:1", "c:1"])
    assert sorted(first.loaded) == ["a:1", "b:1"] and first.not_local == ["c:1"]
    second = loader.load(["a:1"])
    assert second.loaded == [] and second.already == ["a:1"]
    ids["a:1"] = "sha256:rebuilt"  # a new build under the same tag is loaded again
    third = loader.load(["a:1"])
    assert third.loaded == ["a:1"]
    assert sorted(map(tuple, loads)) == [("a:1",), ("a:1",), ("b:1",)]


def test_apps_installing_at_once_share_one_load() -> None:
    calls: list[str] = []
    gate = threading.Event()

    def slow_load(images: list[str]) -> None:
        calls.extend(images)
        gate.wait(5)

    loader = ImageLoader(slow_load, local_id=lambda image: "sha256:same")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(loader.load(["a:1"]))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert calls == ["a:1"]
    assert sorted(len(r.loaded) for r in results) == [0, 0, 1]


def test_a_failed_load_fails_every_app_that_needs_the_image() -> None:
    def broken(images: list[str]) -> None:
        raise ClusterError("kind could not load a:1: no space left on device")

    loader = ImageLoader(broken, local_id=lambda image: "sha256:x")
    for _ in range(2):
        with pytest.raises(ClusterError, match="a:1: kind could not load a:1: no space left"):
            loader.load(["a:1"])
