"""The pytest plugin as users meet it, run in a pytester sandbox."""

from __future__ import annotations

import pytest

from harness.clusters.base import ClusterInfo
from harness.tools import K8S_VERSION


def test_fixtures_reach_an_existing_cluster(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    pytester.makepyfile(
        f"""
        from kubernetes import client

        def test_server(k8s, harness_cluster):
            assert client.VersionApi(k8s).get_code().git_version == "{K8S_VERSION}"
            assert harness_cluster.provider == "existing"
            assert not harness_cluster.created

        def test_helm(helm):
            assert helm.version().startswith("v3.")
        """
    )
    result = pytester.runpytest_subprocess(
        "--cluster",
        "existing",
        "--kubeconfig",
        str(harness_cluster.kubeconfig),
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["helm-harness: run *, cluster existing:*"])


def test_auto_with_kubeconfig_means_existing(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    pytester.makepyfile(
        """
        def test_provider(harness_cluster):
            assert harness_cluster.provider == "existing"
        """
    )
    result = pytester.runpytest_subprocess("--kubeconfig", str(harness_cluster.kubeconfig))
    result.assert_outcomes(passed=1)


def test_kwok_cluster_is_created_and_deleted_by_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json, pathlib

        def test_cluster(harness_cluster):
            assert harness_cluster.provider == "kwok" and harness_cluster.created
            pathlib.Path("seen.json").write_text(json.dumps({"name": harness_cluster.name}))
        """
    )
    result = pytester.runpytest_subprocess("--cluster", "kwok", "--kwok-pod-startup", "0")
    result.assert_outcomes(passed=1)
    import json

    from harness.clusters.kwok import KwokProvider

    name = json.loads((pytester.path / "seen.json").read_text())["name"]
    assert name.startswith("hh-")
    assert not KwokProvider().exists(name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "existing"], "--cluster existing needs --kubeconfig FILE"),
        (["--kubeconfig", "/no/such/file"], "no such file: /no/such/file"),
        (["--kwok-pod-startup", "later"], "not a duration: 'later'"),
        (["--reuse-cluster", "--keep-cluster"], "--reuse-cluster already keeps the cluster"),
        (
            ["--cluster", "kwok", "--k8s-version", "1.35"],
            f"--k8s-version v1.35: kwok clusters run the binaries built for {K8S_VERSION}",
        ),
        (["--report-dir", "setup.py"], "--report-dir setup.py: is a file, not a folder"),
        (
            ["--report-dir", "setup.py/reports"],
            "--report-dir setup.py/reports: lies under",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    (pytester.path / "setup.py").write_text("")  # a file where a folder is wanted
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_k8s_version_of_the_kwok_build_is_honoured_by_minor_or_patch() -> None:
    from harness.clusters.kwok import check_k8s_version

    minor = K8S_VERSION.rsplit(".", 1)[0]
    for given in (K8S_VERSION, minor, minor.lstrip("v"), None):
        check_k8s_version(given)  # no error: these name the binaries kwok runs
