"""The built wheel works on its own: it holds every data file, and installed into a clean
venv (dependencies from PyPI, through pip's cache) it validates and runs a suite on a fresh
kwok cluster from a folder outside the source tree, importing nothing from the checkout.

One test of about a minute, most of it pip resolving the dependencies; deselect it with
``--deselect tests/test_wheel.py``. It is skipped only when pip cannot reach PyPI."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

import harness
from harness import tools
from harness.clusters.kwok import KwokProvider
from tests.conftest import REPO, tiny_chart

DIST_INFO = f"helm_harness-{harness.__version__}.dist-info"
# What must be in the wheel whatever else changes (the globbed comparison below would
# pass on an empty tree).
MUST_HAVE = (
    "harness/py.typed",
    "harness/suite/schema/suite.schema.json",
    "harness/report/templates/report.html.j2",
    "harness/_data/kind/default.yaml",
    "harness/_data/k3d/default.yaml",
    "harness/_data/kwok/stages.yaml",
    "harness/_data/provision/hostguard.sh",
    "harness/_data/provision/kwok/install.sh",
    "harness/_data/provision/kind/install.sh",
    "harness/_data/provision/kind/bin/docker",
    "harness/cli/main.py",
)
EXECUTABLE = ("harness/_data/provision/kind/bin/docker", "harness/_data/provision/hostguard.sh")
# What pip prints when it cannot reach the index (the only reason to skip).
OFFLINE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "Max retries exceeded",
)
DATA_FILES = (("kind", "default.yaml"), ("k3d", "default.yaml"), ("kwok", "stages.yaml"))

# Run by the venv's pytest as part of the suite run: where everything was imported from,
# and what the package's data look like from the installed copy.
PROBE = """\
import json, os, subprocess, sys
from pathlib import Path

import harness
import harness.plugin
from harness import tools
from harness.suite.model import suite_schema


def test_installed_copy():
    docker = tools.provision_file("kind", "bin", "docker")
    kwok_installer = tools.provision_file("kwok", "install.sh")
    printed = subprocess.run(
        ["bash", str(kwok_installer), "--print"], env=tools.install_env(),
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    Path(os.environ["PROBE_OUT"]).write_text(json.dumps({
        "prefix": sys.prefix,
        "harness": harness.__file__,
        "plugin": harness.plugin.__file__,
        "sys_path": sys.path,
        "data": {"/".join(p): tools.data_file(*p).read_text() for p in @DATA_FILES@},
        "schema": suite_schema(),
        "kwok_installer": str(kwok_installer),
        "kwok_installer_prints": printed,
        "bin_dir": str(tools.bin_dir()),
        "docker_wrapper": str(docker),
        "docker_wrapper_executable": os.access(docker, os.X_OK),
    }))
""".replace("@DATA_FILES@", repr(DATA_FILES))


def pip(argv: list[str], what: str) -> float:
    """Run pip (``argv`` after ``python -m pip``); skip the test if it cannot reach PyPI,
    fail it with pip's output on any other error. Returns the seconds it took."""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "pip", *argv, "--retries", "2", "--timeout", "30"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        text = out.stdout + out.stderr
        if any(marker in text for marker in OFFLINE):
            last = text.strip().splitlines()[-1]
            pytest.skip(f"pip cannot reach PyPI ({what}): {last}")
        pytest.fail(f"{what} failed (pip exit {out.returncode}):\n{text[-4000:]}")
    return time.monotonic() - started


def build_wheel(source: Path, out: Path) -> Path:
    """``pip wheel`` of ``source`` (the checkout or an sdist); with hatchling in this venv
    (the ``test`` extra) without build isolation, else in an isolated build (from PyPI)."""
    argv = ["wheel", "--no-deps", "-q", "-w", str(out), str(source)]
    if importlib.util.find_spec("hatchling") is not None:
        argv.insert(1, "--no-build-isolation")
    pip(argv, f"building the wheel of {source.name}")
    (wheel,) = out.glob("helm_harness-*.whl")
    return wheel


def expected_files() -> set[str]:
    """The checkout's package files and provisioning files, as the wheel should name them."""

    def files(root: Path) -> list[Path]:
        return [
            p
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]

    names = {p.relative_to(REPO).as_posix() for p in files(REPO / "harness")}
    provision = REPO / "clusters"
    names |= {
        f"harness/_data/provision/{p.relative_to(provision).as_posix()}" for p in files(provision)
    }
    return names


def check_wheel_contents(wheel: Path) -> list[str]:
    """Assert the wheel holds exactly the package and provisioning files; its names."""
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
        kind_installer = archive.read("harness/_data/provision/kind/install.sh").decode()
    names = [info.filename for info in infos]
    assert {name.split("/")[0] for name in names} == {"harness", DIST_INFO}
    package = {name for name in names if not name.startswith(DIST_INFO + "/")}
    assert set(MUST_HAVE) <= package, f"missing: {sorted(set(MUST_HAVE) - package)}"
    expected = expected_files()
    assert package == expected, (
        f"missing: {sorted(expected - package)}; unexpected: {sorted(package - expected)}"
    )
    tests = [n for n in names if Path(n).name == "conftest.py" or Path(n).name.startswith("test_")]
    assert not tests, f"test files in the wheel: {tests}"
    assert "$ROOT/clusters/" not in kind_installer, "kind/install.sh needs the checkout's layout"
    modes = {info.filename: info.external_attr >> 16 for info in infos}
    for name in EXECUTABLE:
        assert modes[name] & stat.S_IXUSR, f"{name} lost its executable bit"
    return names


def venv_env(venv: Path, probe_out: Path) -> dict[str, str]:
    """The environment of a user's shell with ``venv`` activated: nothing that could put
    the checkout on ``sys.path`` or change what pytest loads."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "PYTEST_")) and key != "VIRTUAL_ENV"
    }
    path = [str(venv / "bin")]
    path += [p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(REPO))]
    env |= {
        "PATH": os.pathsep.join(path),
        "VIRTUAL_ENV": str(venv),
        "PYTHONNOUSERSITE": "1",
        "HELM_HARNESS_METRICS_WAIT": "0",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "PROBE_OUT": str(probe_out),
    }
    return env


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    wheel = build_wheel(REPO, tmp_path / "dist")
    names = check_wheel_contents(wheel)
    if importlib.util.find_spec("hatchling") is not None:
        # The way `python -m build` goes: an sdist first, the wheel built from it.
        sdist_dir = tmp_path / "sdist"
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(sdist_dir)],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        (sdist,) = sdist_dir.glob("helm_harness-*.tar.gz")
        from_sdist = build_wheel(sdist, tmp_path / "dist-from-sdist")
        with zipfile.ZipFile(from_sdist) as archive:
            assert sorted(archive.namelist()) == sorted(names)
    timings["build"] = time.monotonic() - started

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    timings["install"] = pip(
        ["--python", str(python), "install", "-q", "--no-compile", str(wheel)],
        "installing the wheel and its dependencies",
    )

    project = tmp_path / "project"  # outside the checkout, as a user's repository is
    project.mkdir()
    assert not project.resolve().is_relative_to(REPO)
    probe_out = tmp_path / "probe.json"
    env = venv_env(venv, probe_out)
    command = str(venv / "bin" / "helm-harness")

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
        )

    version = run("--version")
    assert (
        version.returncode == 0 and version.stdout.strip() == f"helm-harness {harness.__version__}"
    )

    tiny_chart(
        project,
        "tiny",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "data:\n  greeting: hello\n",
    )
    suite = project / "tiny.suite.yaml"
    suite.write_text(
        "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
        "  - name: tiny\n    chart: ./tiny\n    checks:\n      - ready: {}\n"
    )
    valid = run("validate", suite.name)
    assert valid.returncode == 0, valid.stderr
    assert "ok  tiny.suite.yaml (1 app, 1 check)" in valid.stdout
    bad = project / "bad.suite.yaml"  # the schema and the loader's messages, from the wheel
    bad.write_text(suite.read_text().replace("checks:", "chekcs:"))
    invalid = run("validate", bad.name)
    assert invalid.returncode == 4
    assert "bad.suite.yaml:6: apps[0].chekcs: unknown key 'chekcs'" in invalid.stdout
    assert "Traceback" not in invalid.stdout + invalid.stderr
    bad.unlink()

    (project / "test_installed.py").write_text(PROBE)
    cluster = f"hh-wheel-{uuid.uuid4().hex[:6]}"
    run_started = time.monotonic()
    try:
        result = run(
            "run",
            ".",
            "--cluster",
            "kwok",
            "--cluster-name",
            cluster,
            "--kwok-pod-startup=0",
            "--kwok-pod-jitter=0",
            "-p",
            "no:cacheprovider",
            timeout=180,
        )
        left_behind = KwokProvider().exists(cluster)
    finally:
        KwokProvider().delete(cluster)
    timings["run"] = time.monotonic() - run_started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "app tiny: healthy" in output
    assert not left_behind, "the run left its kwok cluster behind"

    reports = project / "harness-report"
    results = json.loads((reports / "results.json").read_text())
    assert results["outcomes"]["passed"] == 3 and results["outcomes"]["total"] == 3
    assert results["cluster"]["name"] == cluster
    cases = {c.get("name") for c in ET.parse(reports / "junit.xml").getroot().iter("testcase")}
    assert {"install", "ready", "test_installed_copy"} <= cases, cases
    assert "tiny" in (reports / "report.html").read_text()

    probe = json.loads(probe_out.read_text())
    venv = venv.resolve()
    assert Path(probe["prefix"]).resolve() == venv
    for module in ("harness", "plugin"):
        where = Path(probe[module]).resolve()
        assert where.is_relative_to(venv / "lib") and not where.is_relative_to(REPO), where
    leaked = [p for p in probe["sys_path"] if p and Path(p).resolve().is_relative_to(REPO)]
    assert not leaked, f"the checkout is on the venv's sys.path: {leaked}"
    for parts in DATA_FILES:
        source = REPO / "harness" / "_data" / Path(*parts)
        assert probe["data"]["/".join(parts)] == source.read_text()
    schema = REPO / "harness" / "suite" / "schema" / "suite.schema.json"
    assert probe["schema"] == json.loads(schema.read_text())
    assert Path(probe["kwok_installer"]).resolve().is_relative_to(venv)
    assert probe["kwok_installer_prints"] == probe["bin_dir"] == str(tools.bin_dir())
    assert Path(probe["docker_wrapper"]).resolve().is_relative_to(venv)
    assert probe["docker_wrapper_executable"]
    timings["total"] = time.monotonic() - started
    print(", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items()))
