"""Images into the cluster: before an app installs on kind or k3d, the images its rendered
manifests name that the local Docker engine has are loaded into the cluster's nodes, so a
chart under test runs the images just built, with no registry.

Each image is loaded once per run and image ID (a rebuilt tag is loaded again); loads run
in parallel. Images the local engine does not have are left to the cluster to pull, and
named, so that a pull failure can be traced to them. ``--no-load-images`` turns it off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ClusterError

PARALLEL_LOADS = 4
POD_SPEC_KEYS = ("containers", "initContainers", "ephemeralContainers")


def images_in(documents: Iterable[Any]) -> list[str]:
    """Every container image the documents name (pods, pod templates of any workload,
    CronJob job templates, custom resources that embed pod specs), in first-seen order."""
    seen: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in POD_SPEC_KEYS and isinstance(value, list):
                    for container in value:
                        if isinstance(container, dict) and isinstance(container.get("image"), str):
                            image = container["image"].strip()
                            if image:
                                seen.setdefault(image, None)
                walk(value)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for document in documents:
        walk(document)
    return list(seen)


@dataclass
class LoadResult:
    """What happened to one app's images."""

    loaded: list[str] = field(default_factory=list)  # loaded into the cluster now
    already: list[str] = field(default_factory=list)  # loaded earlier in this run
    not_local: list[str] = field(default_factory=list)  # not in the local engine: pulled

    @property
    def present(self) -> list[str]:
        """The app's images the cluster has from the local engine (now or earlier)."""
        return self.loaded + self.already


LocalId = Callable[[str], "str | None"]
Loader = Callable[[Sequence[str]], None]


class ImageLoader:
    """Loads images into one cluster, each (image, image ID) once per run; thread-safe."""

    def __init__(self, load: Loader, local_id: LocalId | None = None) -> None:
        self._load = load
        self._local_id = local_id or docker_image_id
        self._done: dict[tuple[str, str], threading.Event] = {}
        self._errors: dict[tuple[str, str], Exception] = {}
        self._lock = threading.Lock()

    def load(self, images: Sequence[str]) -> LoadResult:
        result = LoadResult()
        mine: list[tuple[str, str]] = []
        waits: list[tuple[str, str]] = []
        for image in images:
            image_id = self._local_id(image)
            if image_id is None:
                result.not_local.append(image)
                continue
            key = (image, image_id)
            with self._lock:
                if key in self._done:
                    waits.append(key)
                else:
                    self._done[key] = threading.Event()
                    mine.append(key)
        if mine:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_LOADS, len(mine))) as pool:
                list(pool.map(self._load_one, mine))
        for key in waits:
            self._done[key].wait()
            result.already.append(key[0])
        for key in mine:
            result.loaded.append(key[0])
        failed = [key for key in (*mine, *waits) if key in self._errors]
        if failed:
            raise ClusterError(
                "could not load images into the cluster: "
                + "; ".join(f"{key[0]}: {self._errors[key]}" for key in failed)
            )
        return result

    def _load_one(self, key: tuple[str, str]) -> None:
        try:
            self._load([key[0]])
        except Exception as exc:  # kept and raised by load(), for every app that needs it
            self._errors[key] = exc
        finally:
            self._done[key].set()


def docker_image_id(image: str) -> str | None:
    """The local Docker engine's ID of ``image``, or None when it does not have it (or no
    engine answers: then nothing can be loaded from it either)."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        engine = docker.from_env(timeout=10)
    except DockerException:
        return None
    try:
        return str(engine.images.get(image).id)
    except ImageNotFound:
        return None
    except DockerException:
        return None
    finally:
        engine.close()
