"""Binary discovery and the installer script, without building anything."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness import tools
from harness.cli.main import main
from harness.errors import MissingBinariesError
from tests.conftest import REPO

INSTALL_SH = REPO / "clusters" / "kwok" / "install.sh"


def test_installer_defaults_match_the_pinned_versions() -> None:
    text = INSTALL_SH.read_text()
    for var, value in {
        "K8S_VERSION": tools.K8S_VERSION,
        "KWOK_VERSION": tools.KWOK_VERSION,
        "ETCD_VERSION": tools.ETCD_VERSION,
        "HELM_VERSION": tools.HELM_VERSION,
        "HELM4_VERSION": tools.HELM4_VERSION,
    }.items():
        assert re.search(rf"^{var}=\$\{{{var}:-{re.escape(value)}\}}$", text, re.M), var


def test_installer_prints_the_same_bin_dir_as_the_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELM_HARNESS_CACHE", str(tmp_path))
    out = subprocess.run(
        ["bash", str(INSTALL_SH), "--print"],
        env=tools.install_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        Path(out.stdout.strip())
        == tools.bin_dir()
        == tmp_path / "bin" / f"k8s-{tools.K8S_VERSION}-kwok-{tools.KWOK_VERSION}"
    )


def test_installer_without_go_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HELM_HARNESS_CACHE": str(tmp_path)}
    if Path("/usr/bin/go").exists():
        pytest.skip("go is installed in /usr/bin; cannot hide it")
    proc = subprocess.run(["bash", str(INSTALL_SH)], env=env, capture_output=True, text=True)
    assert proc.returncode == 3
    assert "Go is not installed" in proc.stderr and "1.26" in proc.stderr


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HELM_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    return tmp_path


def test_missing_binaries_are_listed_together_with_the_fix(empty_cache: Path) -> None:
    with pytest.raises(MissingBinariesError) as info:
        tools.require_binaries(tools.KWOK_BINARIES)
    assert info.value.missing == list(tools.KWOK_BINARIES)
    assert "helm-harness tools install" in str(info.value)


def test_cluster_up_without_binaries_is_one_clear_line(
    empty_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["cluster", "up", "--name", "nope"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("helm-harness: error: missing binaries: kwokctl, kwok, kube-apiserver")
    assert "helm-harness tools install" in err and "Traceback" not in err


def test_auto_without_anything_lists_what_it_tried(empty_cache: Path) -> None:
    from harness.clusters.registry import get_provider
    from harness.errors import UsageError

    with pytest.raises(UsageError) as info:
        get_provider("auto")
    message = str(info.value)
    assert "--cluster auto found no cluster to use. Tried:" in message
    for line in (
        "- existing: no --kubeconfig given",
        "- kind: ",
        "- k3d: ",
        "- kwok: missing binaries",
    ):
        assert line in message


def test_cached_binary_wins_over_path(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = empty_cache / "nothing"
    on_path.mkdir()
    for folder in (on_path, tools.bin_dir()):
        folder.mkdir(parents=True, exist_ok=True)
        exe = folder / "kwokctl"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    assert tools.find_binary("kwokctl") == tools.bin_dir() / "kwokctl"


def test_explicit_helm_that_does_not_exist_is_an_error(empty_cache: Path) -> None:
    with pytest.raises(MissingBinariesError, match="helm"):
        tools.find_helm("/no/such/helm")
