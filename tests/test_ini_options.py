"""Every helm-harness option can be set in pytest's configuration files, as pytest users
expect: the command line wins, then the option's environment variable, then the ini key."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from harness.clusters.base import ClusterInfo
from harness.plugin.options import OPTIONS

SHOW = """
    def test_show(pytestconfig):
        o = pytestconfig.option
        print("VALUES", o.harness_cluster, o.harness_max_parallel, o.harness_keep_cluster,
              o.harness_metrics_wait, o.harness_load_images, o.harness_report_dir)
"""


def values(result: pytest.RunResult) -> list[str]:
    line = next(line for line in result.outlines if "VALUES " in line)
    return line.split("VALUES ", 1)[1].split()


def test_every_option_has_an_ini_key_in_pytest_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    help_text = "\n".join(result.outlines)
    for option in OPTIONS:
        assert option.ini.startswith("helm_harness_")
        assert f"{option.ini} (" in help_text, option.ini  # "name (type):" in the ini list


def test_pyproject_values_apply_and_the_command_line_wins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELM_HARNESS_METRICS_WAIT", raising=False)
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        helm_harness_cluster = "kind"
        helm_harness_max_parallel = "7"
        helm_harness_keep_cluster = true
        helm_harness_metrics_wait = "1m30s"
        helm_harness_load_images = false
        helm_harness_report_dir = "out/reports"
        """
    )
    pytester.makepyfile(SHOW)
    from_ini = values(pytester.runpytest("-s", "-p", "no:cacheprovider"))
    reports = str(pytester.path / "out" / "reports")  # relative to the ini file's folder
    assert from_ini == ["kind", "7", "True", "90.0", "False", reports]
    given = values(
        pytester.runpytest(
            "-s",
            "-p",
            "no:cacheprovider",
            "--cluster=kwok",
            "--max-parallel=2",
            "--metrics-wait=5s",
            "--load-images",
            "--report-dir=here",
        )
    )
    assert given == ["kwok", "2", "True", "5.0", "True", "here"]


def test_the_environment_variable_wins_over_the_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(
        """
        [pytest]
        helm_harness_metrics_wait = 40s
        """
    )
    pytester.makepyfile(SHOW)
    monkeypatch.setenv("HELM_HARNESS_METRICS_WAIT", "3s")
    assert values(pytester.runpytest("-s", "-p", "no:cacheprovider"))[3] == "3.0"
    monkeypatch.delenv("HELM_HARNESS_METRICS_WAIT")
    assert values(pytester.runpytest("-s", "-p", "no:cacheprovider"))[3] == "40.0"


def test_defaults_without_any_configuration(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELM_HARNESS_METRICS_WAIT", raising=False)
    pytester.makepyfile(SHOW)
    shown = values(pytester.runpytest("-s", "-p", "no:cacheprovider"))
    assert shown == ["auto", "16", "False", "20.0", "True", "harness-report"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "helm_harness_max_parallel = many",
            "helm_harness_max_parallel in * = 'many': not a count*",
        ),
        ("helm_harness_cluster = kinda", "helm_harness_cluster in * = 'kinda': * not one of *"),
        ("helm_harness_cluster_timeout = 2x", "helm_harness_cluster_timeout in * = '2x': *"),
        ("helm_harness_kubeconfig = nowhere.yaml", "helm_harness_kubeconfig in *: no such file*"),
    ],
)
def test_a_bad_ini_value_is_a_usage_error_naming_key_and_file(
    pytester: pytest.Pytester, line: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{line}\n")
    pytester.makepyfile(SHOW)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    assert "Traceback" not in result.stderr.str()


def test_a_suite_runs_on_the_cluster_the_ini_file_names(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    shutil.copy(harness_cluster.kubeconfig, pytester.path / "cluster.kubeconfig")
    (pytester.path / "sub").mkdir()
    pytester.makeini(
        """
        [pytest]
        helm_harness_cluster = existing
        helm_harness_kubeconfig = cluster.kubeconfig
        helm_harness_report_dir = sub/reports
        """
    )
    chart = pytester.path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: cm\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\ndata: {k: v}\n"
    )
    (pytester.path / "ini.suite.yaml").write_text(
        textwrap.dedent(
            """
            apiVersion: helm-harness/v1
            kind: Suite
            apps:
              - name: cm
                chart: ./chart
                checks:
                  - wait: {resource: configmap/cm, for: create}
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "ini.suite.yaml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["helm-harness: run *, cluster existing:*"])
    assert (pytester.path / "sub" / "reports" / "junit.xml").is_file()
