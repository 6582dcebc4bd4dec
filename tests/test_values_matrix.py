"""``valuesMatrix``: one app per values file of its chart (chart-testing's ``ci/*-values.yaml``).

Loading, naming and errors need no cluster; the runs at the end use the session's kwok
cluster (a pytester sandbox given it as an existing cluster)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from kubernetes import client

from harness.cli.main import main
from harness.clusters.base import ClusterInfo
from harness.deploy.deployer import label_value, namespace_name
from harness.suite.changed import find_changes
from harness.suite.matrix import slug, stem
from harness.suite.model import Suite, SuiteError, load_suite
from tests.conftest import REPO

MATRIX_CHART = REPO / "tests" / "charts" / "matrix"
HEAD = "apiVersion: helm-harness/v1\nkind: Suite\n"


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    """A copy of the matrix test chart (ci/large-values.yaml, ci/small-values.yaml)."""
    return Path(shutil.copytree(MATRIX_CHART, tmp_path / "charts" / "matrix"))


def write(folder: Path, body: str, name: str = "shop.suite.yaml") -> Path:
    path = folder / name
    path.write_text(HEAD + textwrap.dedent(body).lstrip())
    return path


def load(folder: Path, body: str) -> Suite:
    return load_suite(write(folder, body))


def error(folder: Path, body: str) -> SuiteError:
    with pytest.raises(SuiteError) as caught:
        load_suite(write(folder, body))
    return caught.value


# --- expansion -----------------------------------------------------------------------------


def test_one_app_per_file_sorted_with_its_own_name_release_and_last_values_file(
    tmp_path: Path, chart: Path
) -> None:
    (tmp_path / "own.yaml").write_text("replicaCount: 2\n")
    suite = load(
        tmp_path,
        """
        apps:
          - name: web
            chart: charts/matrix
            valuesFiles: [own.yaml]
            values: {image: x:1}
            valuesMatrix: ci/*-values.yaml
            checks: [{ready: {}}]
          - name: db
            chart: charts/matrix
        """,
    )
    large, small, db = suite.apps
    assert [app.name for app in suite.apps] == ["web[large]", "web[small]", "db"]
    assert (large.release, small.release, db.release) == ("web-large", "web-small", "db")
    own = (tmp_path / "own.yaml").resolve()
    assert large.values_files == (own, chart / "ci" / "large-values.yaml")
    assert small.values_files == (own, chart / "ci" / "small-values.yaml")
    assert db.values_files == ()
    assert large.values == small.values == {"image": "x:1"}  # inline values still win
    assert large.checks == small.checks and large.checks is not None
    assert large.line == small.line == 4 and large.namespace is None


def test_defaults_give_every_app_the_matrix(tmp_path: Path, chart: Path) -> None:
    suite = load(
        tmp_path,
        """
        defaults: {chart: charts/matrix, valuesMatrix: ci/*-values.yaml}
        apps:
          - {name: a}
          - {name: b, release: bee}
        """,
    )
    assert [(app.name, app.release) for app in suite.apps] == [
        ("a[large]", "a-large"),
        ("a[small]", "a-small"),
        ("b[large]", "bee-large"),
        ("b[small]", "bee-small"),
    ]


def test_any_glob_inside_the_chart_and_each_stem_rule(tmp_path: Path, chart: Path) -> None:
    (chart / "ci" / "edge.yaml").write_text("replicaCount: 2\n")
    (chart / "ci" / "notes.txt").write_text("not a values file\n")
    suite = load(tmp_path, "apps:\n  - {name: w, chart: charts/matrix, valuesMatrix: ci/*.yaml}\n")
    assert [app.name for app in suite.apps] == ["w[edge]", "w[large]", "w[small]"]
    assert stem(Path("ci/small-values.yaml")) == "small"
    assert stem(Path("ci/edge.yml")) == "edge"
    assert stem(Path("ci/-values.yaml")) == "-values"
    assert slug("Big_One.v2") == "big-one-v2"


def test_depends_on_a_matrix_app_means_all_its_variants(tmp_path: Path, chart: Path) -> None:
    suite = load(
        tmp_path,
        """
        apps:
          - {name: db, chart: charts/matrix}
          - {name: web, chart: charts/matrix, valuesMatrix: ci/*-values.yaml, dependsOn: [db]}
          - {name: probe, chart: charts/matrix, dependsOn: [web]}
        """,
    )
    by_name = {app.name: app.depends_on for app in suite.apps}
    assert by_name == {
        "db": (),
        "web[large]": ("db",),
        "web[small]": ("db",),
        "probe": ("web[large]", "web[small]"),
    }


def test_a_variant_gets_its_own_namespace_and_a_label_safe_app_label() -> None:
    assert namespace_name("r1", "shop", "web[small]") == "h-r1-shop-web-small"
    long = namespace_name("r1", "shop", f"{'w' * 50}[small]")
    assert len(long) == 63 and long.startswith("h-r1-shop-www")
    assert label_value("web[small]") == "web-small"
    assert label_value(f"{'w' * 62}[x]") == "w" * 62


def test_validate_accepts_it(
    tmp_path: Path, chart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "apps:\n  - {name: w, chart: charts/matrix, valuesMatrix: ci/*.yaml}\n")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"ok  {path} (2 apps, 0 checks)\n"


# --- errors: file, line, key ---------------------------------------------------------------


def test_a_chart_from_a_repo_has_no_folder_to_glob(tmp_path: Path) -> None:
    found = error(
        tmp_path,
        """
        apps:
          - name: web
            chart: web
            repo: https://charts.example.org
            valuesMatrix: ci/*-values.yaml
        """,
    )
    assert (found.line, found.key) == (7, "apps[0].valuesMatrix")
    assert "comes from a repository, so it has no folder to glob" in found.problem
    oci = error(tmp_path, "apps:\n  - {name: w, chart: oci://r.example/w, valuesMatrix: ci/*}\n")
    assert oci.key == "apps[0].valuesMatrix" and "no folder to glob" in oci.problem


def test_a_packaged_chart_has_no_folder_to_glob(tmp_path: Path, chart: Path) -> None:
    (tmp_path / "matrix-0.1.0.tgz").write_bytes(b"")
    found = error(
        tmp_path, "apps:\n  - {name: w, chart: matrix-0.1.0.tgz, valuesMatrix: ci/*-values.yaml}\n"
    )
    assert found.line == 4 and "is a packaged .tgz, not a folder" in found.problem


def test_a_glob_matching_nothing_names_the_glob_and_the_folder(tmp_path: Path, chart: Path) -> None:
    found = error(
        tmp_path,
        """
        defaults:
          valuesMatrix: ci/*-test.yaml
        apps:
          - {name: web, chart: charts/matrix}
        """,
    )
    assert (found.line, found.key) == (4, "defaults.valuesMatrix")
    assert found.problem == f"'ci/*-test.yaml' matches no file in the chart folder {chart}"
    assert str(found).startswith(f"{tmp_path / 'shop.suite.yaml'}:4: defaults.valuesMatrix: ")


def test_a_glob_leaving_the_chart_folder_is_refused(tmp_path: Path, chart: Path) -> None:
    for pattern in ("../*.yaml", "/etc/*.yaml"):
        found = error(
            tmp_path, f"apps:\n  - {{name: w, chart: charts/matrix, valuesMatrix: {pattern!r}}}\n"
        )
        assert "is not a glob inside the chart folder" in found.problem


def test_two_stems_that_make_one_name_are_an_error(tmp_path: Path, chart: Path) -> None:
    (chart / "ci" / "Small-values.yaml").write_text("replicaCount: 1\n")
    found = error(
        tmp_path, "apps:\n  - {name: w, chart: charts/matrix, valuesMatrix: ci/*-values.yaml}\n"
    )
    assert found.key == "apps[0].valuesMatrix"
    assert "Small-values.yaml and " in found.problem and "small-values.yaml both" in found.problem
    assert "the variant name 'small'" in found.problem


def test_a_stem_that_cannot_be_an_id_is_an_error(tmp_path: Path, chart: Path) -> None:
    (chart / "ci" / "two words-values.yaml").write_text("replicaCount: 1\n")
    found = error(
        tmp_path, "apps:\n  - {name: w, chart: charts/matrix, valuesMatrix: ci/*-values.yaml}\n"
    )
    assert "'two words'" in found.problem and "rename the file" in found.problem


def test_a_release_over_helms_53_characters_is_an_error(tmp_path: Path, chart: Path) -> None:
    name = "w" * 48  # w...w-large is 54
    found = error(
        tmp_path,
        f"apps:\n  - {{name: {name}, chart: charts/matrix, valuesMatrix: ci/*-values.yaml}}\n",
    )
    assert found.line == 4 and f"'{name}-large', is 54 characters" in found.problem


def test_a_variant_sharing_a_namespace_with_another_app_is_an_error(
    tmp_path: Path, chart: Path
) -> None:
    found = error(
        tmp_path,
        """
        apps:
          - {name: web-small, chart: charts/matrix}
          - name: web
            chart: charts/matrix
            valuesMatrix: ci/*-values.yaml
        """,
    )
    assert (found.line, found.key) == (7, "apps[1].valuesMatrix")
    assert "web-small and web[small] would both have the namespace" in found.problem
    fixed = error(
        tmp_path,
        """
        defaults: {namespace: shared, chart: charts/matrix}
        apps:
          - {name: web-large}
          - {name: web, valuesMatrix: ci/*-values.yaml}
        """,
    )
    assert "release 'web-large' in namespace 'shared'" in fixed.problem


def test_a_matrix_file_that_is_no_mapping_is_an_error(tmp_path: Path, chart: Path) -> None:
    (chart / "ci" / "bad-values.yaml").write_text("- a list\n")
    found = error(
        tmp_path, "apps:\n  - {name: w, chart: charts/matrix, valuesMatrix: ci/*-values.yaml}\n"
    )
    assert found.key == "apps[0].valuesMatrix" and "holds a list, not a mapping" in found.problem


def test_the_schema_wants_text(tmp_path: Path, chart: Path) -> None:
    found = error(tmp_path, "apps:\n  - {name: w, chart: charts/matrix, valuesMatrix: [a]}\n")
    assert found.key == "apps[0].valuesMatrix" and found.line == 4


# --- helm-harness init and changed --------------------------------------------------------


def test_init_proposes_the_matrix_when_the_chart_has_ci_values_files(
    tmp_path: Path, chart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "suites" / "matrix.suite.yaml"
    assert main(["init", str(chart), "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert "valuesMatrix: the chart's ci/*-values.yaml files make one app each: " in out
    assert "matrix[large], matrix[small]" in out
    text = target.read_text()
    assert "    valuesMatrix: ci/*-values.yaml\n" in text
    assert "# one app per file of the chart's ci/*-values.yaml (chart-testing's" in text
    assert [app.name for app in load_suite(target).apps] == ["matrix[large]", "matrix[small]"]


def test_init_without_ci_values_files_has_no_matrix(
    tmp_path: Path, chart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(chart / "ci")
    target = tmp_path / "m.suite.yaml"
    assert main(["init", str(chart), "-o", str(target)]) == 0
    assert "valuesMatrix" not in capsys.readouterr().out + target.read_text()


def test_init_proposes_no_matrix_its_files_cannot_make(
    tmp_path: Path, chart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (chart / "ci" / "Small-values.yaml").write_text("replicaCount: 2\n")  # clashes with small
    target = tmp_path / "m.suite.yaml"
    assert main(["init", str(chart), "-o", str(target)]) == 0
    assert "valuesMatrix" not in capsys.readouterr().out + target.read_text()
    assert [app.name for app in load_suite(target).apps] == ["matrix"]


def test_a_changed_ci_values_file_selects_the_suites_using_the_chart(
    tmp_path: Path, chart: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    (tmp_path / "suites").mkdir()
    write(
        tmp_path / "suites",
        "apps:\n  - {name: w, chart: ../charts/matrix, valuesMatrix: ci/*-values.yaml}\n",
        "m.suite.yaml",
    )
    write(tmp_path / "suites", "apps:\n  - {name: o, chart: ../charts/other}\n", "o.suite.yaml")
    shutil.copytree(chart, tmp_path / "charts" / "other")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run([*git, "-C", str(tmp_path), *args], check=True, capture_output=True)
    (chart / "ci" / "small-values.yaml").write_text("replicaCount: 2\n")
    monkeypatch.chdir(tmp_path)
    found = find_changes(tmp_path, since="main", exclude=[])
    assert [c.path for c in found.charts] == ["charts/matrix"]
    assert [str(path) for path in found.suites] == ["suites/m.suite.yaml"]


# --- runs on the session's kwok cluster ----------------------------------------------------

RECORD = '''
import json
from pathlib import Path

from kubernetes import client


def record(ctx):
    """The variant's namespace (and its app label) and its Deployment's replicas, as the
    API server has them."""
    apps = client.AppsV1Api(ctx.api)
    deployment = apps.read_namespaced_deployment(f"{ctx.release}-matrix", ctx.namespace)
    namespace = client.CoreV1Api(ctx.api).read_namespace(ctx.namespace)
    line = {
        "app": ctx.app.name,
        "namespace": ctx.namespace,
        "replicas": deployment.spec.replicas,
        "label": namespace.metadata.labels["helm-harness.io/app"],
    }
    with open(Path(__file__).parent / "seen.jsonl", "a") as out:
        out.write(json.dumps(line) + "\\n")
'''


def matrix_suite(pytester: pytest.Pytester, values: str = "{}") -> Path:
    chart = shutil.copytree(MATRIX_CHART, pytester.path / "charts" / "matrix")
    (pytester.path / "probe.py").write_text(RECORD)
    path = pytester.path / "mx.suite.yaml"
    path.write_text(
        HEAD
        + textwrap.dedent(f"""
        apps:
          - name: web
            chart: {chart}
            values: {values}
            valuesMatrix: ci/*-values.yaml
            checks:
              - ready: {{}}
              - python: {{call: "probe:record"}}
        """)
    )
    return path


def run(pytester: pytest.Pytester, cluster: ClusterInfo, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--kubeconfig={cluster.kubeconfig}", "-p", "no:cacheprovider", "-v", *args
    )


def test_each_variant_installs_in_its_own_namespace_with_its_values(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, k8s: client.ApiClient
) -> None:
    matrix_suite(pytester)
    result = run(pytester, harness_cluster, "--report-dir", "out")
    result.stdout.fnmatch_lines_random(
        [
            "mx.suite.yaml::web[[]large[]]::install PASSED*",
            "mx.suite.yaml::web[[]large[]]::ready PASSED*",
            "mx.suite.yaml::web[[]large[]]::python[[]probe:record[]] PASSED*",
            "mx.suite.yaml::web[[]small[]]::install PASSED*",
            "mx.suite.yaml::web[[]small[]]::ready PASSED*",
            "mx.suite.yaml::web[[]small[]]::python[[]probe:record[]] PASSED*",
        ]
    )
    result.assert_outcomes(passed=6)
    seen = [json.loads(line) for line in (pytester.path / "seen.jsonl").read_text().splitlines()]
    by_app = {entry["app"]: entry for entry in seen}
    assert {app: entry["replicas"] for app, entry in by_app.items()} == {
        "web[large]": 3,
        "web[small]": 1,
    }
    large, small = by_app["web[large]"]["namespace"], by_app["web[small]"]["namespace"]
    assert large.endswith("-mx-web-large") and small.endswith("-mx-web-small")
    results = json.loads((pytester.path / "out" / "results.json").read_text())
    assert {row["app"]: (row["namespace"], row["release"]) for row in results["apps"]} == {
        "web[large]": (large, "web-large"),
        "web[small]": (small, "web-small"),
    }
    result.stdout.fnmatch_lines_random(
        [
            f"*removed web[[]large[]] and namespace {large}*",
            f"*removed web[[]small[]] and namespace {small}*",
        ]
    )
    assert {entry["label"] for entry in seen} == {"web-large", "web-small"}


def test_k_selects_one_variant(pytester: pytest.Pytester, harness_cluster: ClusterInfo) -> None:
    matrix_suite(pytester)
    result = run(pytester, harness_cluster, "-k", "small")
    result.assert_outcomes(passed=3)
    assert "web[large]" not in result.stdout.str()
    seen = (pytester.path / "seen.jsonl").read_text().splitlines()
    assert [json.loads(line)["replicas"] for line in seen] == [1]


def test_variants_that_clash_on_a_cluster_scoped_object_run_one_after_another(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    role = f"h-matrix-test-{pytester.path.name[-20:].strip('-_').lower()}"
    matrix_suite(pytester, values=f"{{sharedClusterRole: {role}}}")
    result = run(pytester, harness_cluster, "-rA")
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    assert (
        f"mx.suite.yaml::web[large] and mx.suite.yaml::web[small] both render the "
        f"cluster-scoped ClusterRole/{role}: they run one after another" in out
    )


def test_upgrade_runs_go_per_variant(pytester: pytest.Pytester) -> None:
    path = matrix_suite(pytester)
    old = shutil.copytree(MATRIX_CHART, pytester.path / "charts" / "old")
    text = path.read_text().replace(
        "valuesMatrix: ci/*-values.yaml",
        f"valuesMatrix: ci/*-values.yaml\n    upgrade: {{from: {{chart: {old}}}}}",
    )
    path.write_text(text)
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "--upgrade", "-p", "no:cacheprovider"
    )
    ids = [line for line in result.stdout.lines if line.startswith("mx.suite.yaml::")]
    assert ids[:5] == [
        "mx.suite.yaml::web[large]::install[from]",
        "mx.suite.yaml::web[large]::ready@from",
        "mx.suite.yaml::web[large]::python[probe:record]@from",
        "mx.suite.yaml::web[large]::upgrade",
        "mx.suite.yaml::web[large]::crd-drift",
    ]
    assert len(ids) == 2 * len([i for i in ids if i.startswith("mx.suite.yaml::web[large]")])
    assert "mx.suite.yaml::web[small]::rollback" in ids
