"""The widget operator (``fixture-app operator``, fixtures/images/app) run on the host against
the session's kwok cluster, where no container runs: the binary is built with ``go build``
into the cache (once per source change), the kubeconfig's server, CA and client credentials
go to files of the test's own, and :func:`host_operator` runs the process for the length of
a ``with`` block, watching one namespace."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import tools

REPO = Path(__file__).resolve().parent.parent
APP_SOURCE = REPO / "fixtures" / "images" / "app"
GO_FALLBACK = Path("/usr/local/go/bin/go")


def go_binary() -> str:
    """The go command, or a skip saying how to get it (scripts/setup needs it anyway)."""
    found = shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.exists() else None)
    if found is None:
        pytest.skip("go is not installed (needed to build fixture-app for the host operator)")
    return found


def operator_binary() -> Path:
    """fixture-app built for the host, cached under a hash of its sources."""
    digest = hashlib.sha256()
    for source in sorted(APP_SOURCE.iterdir()):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    target = tools.cache_dir() / "build" / f"fixture-app-{digest.hexdigest()[:16]}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local"}
    built = subprocess.run(
        [go_binary(), "build", "-trimpath", "-o", str(partial), "."],
        cwd=APP_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        raise RuntimeError(f"go build of fixture-app failed:\n{built.stderr}")
    partial.replace(target)  # atomic: parallel workers may build it at the same time
    return target


def _material(entry: dict[str, Any], key: str, folder: Path, name: str) -> Path | None:
    """``key``'s file, or ``key-data`` written to ``folder/name``; None when neither is set."""
    if entry.get(f"{key}-data"):
        path = folder / name
        path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
        path.chmod(0o600)
        return path
    if entry.get(key):
        return Path(entry[key])
    return None


def credentials_env(kubeconfig: Path, folder: Path, context: str | None = None) -> dict[str, str]:
    """KUBE_SERVER, KUBE_CA_FILE and KUBE_CERT_FILE/KUBE_KEY_FILE or KUBE_TOKEN_FILE for the
    kubeconfig's context (its current one by default), the credentials as files in
    ``folder``."""
    config = yaml.safe_load(kubeconfig.read_text())
    name = context or config["current-context"]
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
    folder.mkdir(parents=True, exist_ok=True)
    env = {"KUBE_SERVER": cluster["server"]}
    ca = _material(cluster, "certificate-authority", folder, "ca.crt")
    if ca is not None:
        env["KUBE_CA_FILE"] = str(ca)
    cert = _material(user, "client-certificate", folder, "client.crt")
    key = _material(user, "client-key", folder, "client.key")
    if cert is not None and key is not None:
        env.update(KUBE_CERT_FILE=str(cert), KUBE_KEY_FILE=str(key))
    elif user.get("token"):
        token = folder / "token"
        token.write_text(user["token"])
        token.chmod(0o600)
        env["KUBE_TOKEN_FILE"] = str(token)
    else:
        raise RuntimeError(
            f"{kubeconfig}: user {ctx['user']} has neither a certificate nor a token"
        )
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HostOperator:
    """A running ``fixture-app operator``: its process, port and log file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def logs(self) -> str:
        return self.log.read_text()

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@contextmanager
def host_operator(
    kubeconfig: Path,
    namespace: str,
    folder: Path,
    *,
    context: str | None = None,
    max_size: int = 10,
    ready_within: float = 30,
) -> Iterator[HostOperator]:
    """Run the operator on the host, watching ``namespace``, until the block ends (killed and
    waited for, whatever happens). Waits for its /readyz (its first list of Widgets)."""
    binary = operator_binary()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(_free_port()),
        "WATCH_NAMESPACE": namespace,
        "MAX_SIZE": str(max_size),
        **credentials_env(kubeconfig, folder / "credentials", context),
    }
    log = folder / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), "operator"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    running = HostOperator(process=process, port=int(env["PORT"]), log=log)
    try:
        deadline = time.monotonic() + ready_within
        while not running.ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the host operator did not become ready (exit {process.poll()}):\n"
                    + running.logs()
                )
            time.sleep(0.2)
        yield running
    finally:
        process.kill()
        process.wait(timeout=30)
