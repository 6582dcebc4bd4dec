"""Charts from a chart repository and from an OCI registry, both served on loopback by the
tests, installed and upgraded on the session's kwok cluster.

The repository is ``helm package`` + ``helm repo index`` served by ``http.server``; the
registry is distribution's ``registry`` (``helm-harness tools install --registry``),
filesystem storage, no auth, plain HTTP. Helm's own homes (cache, config, data) point at a
temp folder for this module, so nothing lands in the user's."""

from __future__ import annotations

import shutil
import socket
import subprocess
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import yaml

from harness import tools
from harness.cli.main import main
from harness.clusters.base import ClusterInfo
from harness.helm.command import chart_flags, plain_http
from harness.kube.wait import retry_until
from tests.conftest import FIXTURE_CHARTS

VERSIONS = FIXTURE_CHARTS / "versions"
HELM_HOMES = {"HELM_CACHE_HOME": "cache", "HELM_CONFIG_HOME": "config", "HELM_DATA_HOME": "data"}
# Records, per phase of the upgrade run, the version label of the live Deployment.
PROBE = """\
from pathlib import Path
from kubernetes import client

def record_version(app):
    deployment = client.AppsV1Api(app.api).read_namespaced_deployment("shop", app.namespace)
    with open(Path(__file__).with_name("versions.txt"), "a") as out:
        out.write(deployment.metadata.labels["version"] + "\\n")
"""


def helm(*args: str | Path) -> str:
    argv = [str(tools.find_helm()), *(str(arg) for arg in args)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)} failed: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def helm_homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Helm's cache, config and data homes in a temp folder, for this process and the runs
    it starts."""
    root = tmp_path_factory.mktemp("helm-homes")
    with pytest.MonkeyPatch.context() as patch:
        for variable, folder in HELM_HOMES.items():
            patch.setenv(variable, str(root / folder))
        yield root


@pytest.fixture(scope="module")
def packaged_charts(helm_homes: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """shop 0.1.0 and 0.2.0, packaged as .tgz files."""
    folder = tmp_path_factory.mktemp("packages")
    helm("package", VERSIONS / "shop-0.1.0", VERSIONS / "shop-0.2.0", "--destination", folder)
    return sorted(folder.glob("shop-*.tgz"))


@dataclass
class ChartRepo:
    url: str
    requests: list[str] = field(default_factory=list)  # paths asked for, in order


class _RepoHandler(SimpleHTTPRequestHandler):
    """Serves the repo's folder; notes each request instead of logging it to stderr."""

    def __init__(self, *args: Any, requests: list[str], **kwargs: Any) -> None:
        self.seen = requests
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        self.seen.append(self.path)


@pytest.fixture(scope="module")
def chart_repo(
    packaged_charts: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartRepo]:
    """A chart repository (index.yaml and the .tgz files) on http://127.0.0.1:<port>."""
    folder = tmp_path_factory.mktemp("repo")
    for package in packaged_charts:
        shutil.copy(package, folder)
    helm("repo", "index", folder)
    requests: list[str] = []
    handler = partial(_RepoHandler, requests=requests, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="chart-repo", daemon=True)
    thread.start()
    try:
        yield ChartRepo(url=f"http://127.0.0.1:{server.server_port}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalRegistry:
    """distribution's registry on 127.0.0.1, storing in ``folder``; stopped on exit, and
    at once when it fails to start."""

    def __init__(self, binary: Path, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.host = f"127.0.0.1:{free_port()}"
        self.log = folder / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalRegistry:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.folder / "data")}},
            "http": {"addr": self.host, "secret": "helm-harness-tests-only"},
        }
        path = self.folder / "config.yml"
        path.write_text(yaml.safe_dump(config))
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", str(path)], stdout=log, stderr=subprocess.STDOUT
            )
        retry_until(self._answers, timeout=30, retry_on=OSError)

    def _answers(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"registry exited with {self.proc.returncode}:\n{tail}")
        with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=5) as answer:
            assert answer.status == 200

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def oci_registry(
    packaged_charts: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``oci://127.0.0.1:<port>/charts``, holding shop 0.1.0 and 0.2.0."""
    binary = tools.find_binary("registry")
    if binary is None:
        pytest.skip(
            "no OCI registry binary: build it with `helm-harness tools install --registry` "
            "(scripts/setup does)"
        )
    with LocalRegistry(binary, tmp_path_factory.mktemp("registry")) as registry:
        where = f"oci://{registry.host}/charts"
        for package in packaged_charts:
            helm("push", package, where, "--plain-http")  # a plain-HTTP registry needs it
        yield where


def write_suite(pytester: pytest.Pytester, name: str, source: str) -> None:
    (pytester.path / "probe.py").write_text(PROBE)
    (pytester.path / f"{name}.suite.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: helm-harness/v1
            kind: Suite
            defaults: {timeout: 60s}
            apps:
              - name: shop
            """
        )
        + textwrap.indent(textwrap.dedent(source), " " * 4)
        + textwrap.indent(
            textwrap.dedent(
                """\
                version: "0.2.0"
                upgrade:
                  from: {version: "0.1.0"}
                checks:
                  - ready: {}
                  - python: {call: "probe:record_version"}
                    name: version
                """
            ),
            " " * 4,
        )
    )


def upgrade_run(pytester: pytest.Pytester, cluster: ClusterInfo) -> None:
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={cluster.kubeconfig}",
        "--upgrade",
        "--metrics-wait=0",  # metric snapshots are not what these tests are about
        "-p",
        "no:cacheprovider",
        "-v",
        "--log-file=helm.log",  # the Helm command lines the harness ran
        "--log-file-level=INFO",
    )
    result.stdout.fnmatch_lines(
        [
            "*shop::install?from? PASSED*",
            "*shop::ready@from PASSED*",
            "*shop::version@from PASSED*",
            "*shop::upgrade PASSED*",
            "*shop::crd-drift PASSED*",
            "*shop::ready@to PASSED*",
            "*shop::version@to PASSED*",
            "*shop::rollback PASSED*",
            "*shop::ready@rollback PASSED*",
            "*shop::version@rollback PASSED*",
        ]
    )
    result.assert_outcomes(passed=10)
    versions = (pytester.path / "versions.txt").read_text().split()
    assert versions == ["0.1.0", "0.2.0", "0.1.0"]  # from, to, rolled back


def test_an_upgrade_run_from_a_chart_repository(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, chart_repo: ChartRepo
) -> None:
    write_suite(pytester, "repo", f"repo: {chart_repo.url}\nchart: shop\n")
    upgrade_run(pytester, harness_cluster)
    assert "/index.yaml" in chart_repo.requests
    assert {"/shop-0.1.0.tgz", "/shop-0.2.0.tgz"} <= set(chart_repo.requests)


def test_an_upgrade_run_from_an_oci_registry(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, oci_registry: str
) -> None:
    write_suite(pytester, "oci", f"chart: {oci_registry}/shop\n")
    upgrade_run(pytester, harness_cluster)
    # the registry speaks plain HTTP on loopback: the harness said so to Helm
    log = pytest.LineMatcher((pytester.path / "helm.log").read_text().splitlines())
    log.fnmatch_lines(
        [
            f"*running: * install shop {oci_registry}/shop * --version 0.1.0 --plain-http*",
            f"*running: * show crds {oci_registry}/shop --version 0.1.0 --plain-http*",
            f"*running: * upgrade shop {oci_registry}/shop * --version 0.2.0 --plain-http*",
        ]
    )


def test_init_from_a_chart_repository(
    pytester: pytest.Pytester, chart_repo: ChartRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    target = pytester.path / "shop.suite.yaml"
    argv = ["init", "shop", "--repo", chart_repo.url, "--version", "0.2.0", "-o", str(target)]
    assert main(argv) == 0
    assert capsys.readouterr().out == f"wrote {target}: app shop, items install, ready\n"
    app = yaml.safe_load(target.read_text())["apps"][0]
    assert app == {
        "name": "shop",
        "chart": "shop",
        "repo": chart_repo.url,
        "version": "0.2.0",
        "checks": [{"ready": {}}],
    }
    assert "Deployment/shop" in target.read_text()


def test_init_from_an_oci_registry_and_a_version_it_lacks(
    tmp_path: Path,
    oci_registry: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    chart = f"{oci_registry}/shop"
    assert main(["init", chart, "--version", "0.1.0", "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert f"chart: {chart}\n" in out and 'version: "0.1.0"' in out
    assert main(["init", chart, "--version", "9.9.9", "-o", "-"]) == 4
    err = capsys.readouterr().err
    assert err.startswith(f"helm-harness: error: cannot render chart {chart}: ")
    assert "9.9.9: not found" in err


@pytest.mark.parametrize(
    "chart, env, plain",
    [
        ("oci://127.0.0.1:5000/charts/shop", None, True),
        ("oci://localhost/charts/shop", None, True),
        ("oci://[::1]:5000/shop", None, True),
        ("oci://127.0.0.1.example.org/shop", None, False),
        ("oci://registry.example.org/charts/shop", None, False),
        ("oci://registry.example.org/charts/shop", "1", True),
        ("oci://127.0.0.1:5000/charts/shop", "0", False),
        ("shop", "1", False),  # not OCI: --repo URLs carry their own scheme
    ],
)
def test_plain_http_for_loopback_registries(
    chart: str, env: str | None, plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env is None:
        monkeypatch.delenv("HELM_HARNESS_PLAIN_HTTP", raising=False)
    else:
        monkeypatch.setenv("HELM_HARNESS_PLAIN_HTTP", env)
    assert plain_http(chart) is plain
    flags = chart_flags(chart, version="0.2.0")
    assert flags == ["--version", "0.2.0", *(["--plain-http"] if plain else [])]
