"""The external binaries helm-harness drives, where they live and how they get installed.

The pinned versions here are the ones ``clusters/kwok/install.sh`` builds by default; a
test keeps the two in step. Binaries are looked up in the versioned cache folder first
(what ``helm-harness tools install`` builds), then on ``PATH``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from harness.errors import CommandError, MissingBinariesError, ToolError

K8S_VERSION = "v1.36.3"
KWOK_VERSION = "v0.8.0"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"
HELM4_VERSION = "v4.3.1"
METRICS_SERVER_VERSION = "v0.8.0"

KWOK_BINARIES = (
    "kwokctl",
    "kwok",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd",
)
# Used when present: kwok clusters then serve metrics.k8s.io (see harness.clusters.kwok).
KWOK_OPTIONAL_BINARIES = ("metrics-server",)
INSTALL_HINT = "helm-harness tools install"
_DATA = contextlib.ExitStack()  # data files extracted for a zipped install, removed at exit
atexit.register(_DATA.close)


def cache_dir() -> Path:
    """``$HELM_HARNESS_CACHE``, else ``$XDG_CACHE_HOME/helm-harness``, else ``~/.cache/...``."""
    explicit = os.environ.get("HELM_HARNESS_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "helm-harness"


def bin_dir() -> Path:
    """The versioned folder the installer fills."""
    return cache_dir() / "bin" / f"k8s-{K8S_VERSION}-kwok-{KWOK_VERSION}"


def data_file(*parts: str) -> Path:
    """A data file of the package (``harness/_data/...``: the default kind and k3d configs,
    the kwok stages), read with importlib.resources."""
    ref = resources.files("harness").joinpath("_data", *parts)
    if not ref.is_file():
        raise ToolError(f"helm-harness is missing its data file _data/{'/'.join(parts)}")
    return Path(_DATA.enter_context(resources.as_file(ref)))


def provision_file(*parts: str) -> Path:
    """A test-bed provisioning file (``clusters/...`` in a source checkout: the installers,
    the kind node image's files; ``harness/_data/provision/...`` in a wheel)."""
    here = Path(__file__).resolve().parent
    for root in (here / "_data" / "provision", here.parent / "clusters"):
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    raise ToolError(f"helm-harness is missing its provisioning file clusters/{'/'.join(parts)}")


def find_binary(name: str) -> Path | None:
    """The cached build of ``name`` if present, else the one on PATH, else None."""
    cached = bin_dir() / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    found = shutil.which(name)
    return Path(found) if found else None


def require_binaries(names: Iterable[str]) -> dict[str, Path]:
    """Paths of all ``names``, or one error listing every missing one and the fix."""
    found = {name: find_binary(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MissingBinariesError(missing, INSTALL_HINT)
    return {name: path for name, path in found.items() if path is not None}


def find_helm(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--helm PATH`` if given, else ``$HELM_HARNESS_HELM``, else PATH, else the cache."""
    chosen = explicit or os.environ.get("HELM_HARNESS_HELM")
    if chosen:
        path = Path(chosen)
        if not (path.is_file() and os.access(path, os.X_OK)):
            resolved = shutil.which(str(chosen))
            if resolved is None:
                raise MissingBinariesError([f"helm ({chosen})"], INSTALL_HINT)
            path = Path(resolved)
        return path
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    cached = bin_dir() / "helm"
    if cached.is_file():
        return cached
    raise MissingBinariesError(["helm"], INSTALL_HINT)


def install_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HELM_HARNESS_CACHE=str(cache_dir()),
        K8S_VERSION=K8S_VERSION,
        KWOK_VERSION=KWOK_VERSION,
        ETCD_VERSION=ETCD_VERSION,
        HELM_VERSION=HELM_VERSION,
        HELM4_VERSION=HELM4_VERSION,
        METRICS_SERVER_VERSION=METRICS_SERVER_VERSION,
    )
    env.update(extra or {})
    return env


def install(*, helm4: bool = False, metrics_server: bool = True, registry: bool = False) -> Path:
    """Build whatever is missing into :func:`bin_dir`; progress goes to stderr. ``registry``
    adds an OCI registry (distribution's), which the project's own tests push charts to."""
    if shutil.which("go") is None:
        raise MissingBinariesError(
            ["go"],
            "Go 1.26 or later from your distribution or the Go project, then " + INSTALL_HINT,
        )
    env = install_env(
        {
            "INSTALL_HELM4": "1" if helm4 else "0",
            "INSTALL_METRICS_SERVER": "1" if metrics_server else "0",
            "INSTALL_REGISTRY": "1" if registry else "0",
        }
    )
    return Path(_run_installer("kwok", env=env))


def _run_installer(provider: str, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``clusters/<provider>/install.sh`` (its progress on stderr) and return the last
    line it prints on stdout: what it made."""
    argv = ["bash", str(provision_file(provider, "install.sh")), *args]
    proc = subprocess.run(
        argv, env=dict(env or install_env()), stdout=subprocess.PIPE, stderr=sys.stderr, text=True
    )
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, "see the build output above")
    return proc.stdout.strip().splitlines()[-1]


def install_kind() -> str:
    """Provision the kind test bed (``clusters/kind/install.sh``): the Docker engine, the host
    egress guard, kind and the node image, built here; returns the node image's name."""
    return _run_installer("kind")


def kind_testbed_env() -> dict[str, str]:
    """The environment the kind test bed runs kind in (the project's tests, scripts and
    benchmark; never the product's own runs): PATH with ``clusters/kind/bin`` (the
    ``docker`` wrapper for hosts that cannot run privileged containers) and the cache's
    binaries first, and ``HELM_HARNESS_KIND_IMAGE`` naming the node image built here."""
    wrapper = provision_file("kind", "bin")
    path = os.pathsep.join([str(wrapper), str(bin_dir()), os.environ.get("PATH", "")])
    return {"PATH": path, "HELM_HARNESS_KIND_IMAGE": _run_installer("kind", "--print")}


def run_command(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a cluster tool (kwokctl, kind, k3d): an argv list, no stdin, output captured.

    The tool runs in a process group of its own, so that a timeout or an interrupt
    (Ctrl-C, SIGTERM to pytest alone) ends it together with any helpers it started
    (kwokctl's kubectl polls, say), which would outlive it otherwise. Non-zero exit is a
    CommandError with the tool's stderr (unless ``check`` is false)."""
    with subprocess.Popen(
        argv,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as popen:
        try:
            stdout, stderr = popen.communicate(timeout=timeout)
        except BaseException as exc:
            _kill_group(popen)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise CommandError(argv, -1, f"no answer in {timeout:g}s") from exc
            raise
    proc = subprocess.CompletedProcess(argv, popen.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)
    return proc


def _kill_group(popen: subprocess.Popen[str]) -> None:
    """SIGKILL a process and the rest of its process group, and reap it."""
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    popen.wait()
