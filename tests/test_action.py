"""The composite action (``action.yml``), run here up to the parts only GitHub has.

:class:`ActionRun` executes each ``run:`` step of the action in order with bash, as GitHub
does (``bash --noprofile --norc -eo pipefail``), its ``env:`` and ``if:`` rendered from the
test's inputs, with ``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_ENV`` and
``GITHUB_PATH`` as files read back after each step. The ``uses:`` steps (setup-python,
actions/cache, setup-go, setup-helm, upload-artifact) are skipped and listed, and so is the
pip install of the action (``id: install``): this ``.venv`` has helm-harness; its ``bin``
goes first on PATH, then the folder of the helm the tests use (what setup-helm would add).
An expression the renderer does not know fails the test, so the action stays testable.

The runs use the session's kwok cluster as ``cluster: existing`` (its kubeconfig in
``pytest-args``), in a chart repository (git, a chart, suites) made for each test, with the
binary cache (``HELM_HARNESS_CACHE``) in a temporary folder: the action's sweep then sees
only what its own run recorded.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import tools
from harness.clusters.base import ClusterInfo
from harness.clusters.kind import KIND_VERSION
from tests.conftest import FIXTURE_CHARTS, REPO

ACTION = REPO / "action.yml"
SCRIPTS = REPO / ".github" / "action"  # shellchecked in tests/test_workflows.py
NOT_RUN_HERE = {"install": "helm-harness is installed in this .venv"}
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
REFERENCE = re.compile(r"inputs\.[\w-]+|github\.action_path|steps\.[\w-]+\.outputs\.[\w-]+")
COMPARISON = re.compile(r"^(?P<ref>[\w.-]+)\s*(?P<op>==|!=)\s*'(?P<literal>[^']*)'$")


def load_action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return loaded


class Unrenderable(AssertionError):
    """An expression the test's renderer does not know: the action would not be testable."""


@dataclass
class Step:
    """One step as the run saw it."""

    name: str
    ran: bool
    code: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class ActionRun:
    """The action's ``run:`` steps executed in ``workspace``, with ``inputs`` over the
    defaults; ``env`` is added to every step's environment."""

    workspace: Path
    scratch: Path
    inputs: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    action: dict[str, Any] = field(default_factory=load_action)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    skipped_uses: list[str] = field(default_factory=list)
    summary: str = ""
    failed: bool = False
    values: dict[str, str] = field(init=False)  # every input: the given ones over the defaults
    _path: list[str] = field(default_factory=list)
    _job_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        declared = self.action["inputs"]
        unknown = set(self.inputs) - set(declared)
        assert not unknown, f"action.yml has no input {sorted(unknown)}"
        self.values = {name: str(spec.get("default", "")) for name, spec in declared.items()}
        self.values.update(self.inputs)
        self.scratch.mkdir(parents=True, exist_ok=True)

    # --- expressions ---------------------------------------------------------------------

    def value(self, ref: str) -> str:
        if not REFERENCE.fullmatch(ref):
            raise Unrenderable(f"the test cannot render ${{{{ {ref} }}}}")
        if ref == "github.action_path":
            return str(REPO)
        parts = ref.split(".")
        if parts[0] == "inputs":
            return self.values[parts[1]]
        return self.outputs.get(parts[1], {}).get(parts[3], "")

    def render(self, text: str) -> str:
        return EXPRESSION.sub(lambda match: self.value(match.group(1)), text)

    def condition(self, text: str | None) -> bool:
        """An ``if:``: ``always()``, and comparisons of references with quoted literals
        joined by ``&&`` and ``||``; without always() it holds only while no step failed."""
        if text is None:
            return not self.failed
        text = text.strip()
        inner = EXPRESSION.fullmatch(text)
        text = inner.group(1) if inner else text
        status = "always()" in text
        return (status or not self.failed) and any(
            all(self._term(term.strip()) for term in part.split("&&")) for part in text.split("||")
        )

    def _term(self, term: str) -> bool:
        if term == "always()":
            return True
        match = COMPARISON.match(term)
        if match is None:
            raise Unrenderable(f"the test cannot evaluate the condition {term!r}")
        equal = self.value(match["ref"]) == match["literal"]
        return equal if match["op"] == "==" else not equal

    # --- running ---------------------------------------------------------------------------

    def run(self, *, only: str | None = None) -> ActionRun:
        """Every step in order, or (``only``) the step with that id alone."""
        for number, spec in enumerate(self.action["runs"]["steps"]):
            name = spec.get("name") or spec.get("uses") or f"step {number}"
            if only is not None and spec.get("id") != only:
                continue
            if "uses" in spec:
                self.skipped_uses.append(spec["uses"])
                continue
            if spec.get("id") in NOT_RUN_HERE or not self.condition(spec.get("if")):
                self.steps.append(Step(name, ran=False))
                continue
            self.steps.append(self._bash(spec, name, number))
        return self

    def _bash(self, spec: dict[str, Any], name: str, number: int) -> Step:
        assert spec.get("shell") == "bash", f"{name}: a composite step names its shell"
        files = {
            key: self.scratch / f"{number}-{key.lower()}"
            for key in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH")
        }
        for path in files.values():
            path.write_text("")
        script = self.scratch / f"{number}.sh"
        script.write_text(spec["run"])
        env = {
            **os.environ,
            "PATH": os.pathsep.join([*self._path, base_path()]),
            "GITHUB_ACTION_PATH": str(REPO),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": str(self.scratch),
            **{key: str(path) for key, path in files.items()},
            **self.env,
            **self._job_env,
            **{key: self.render(str(value)) for key, value in spec.get("env", {}).items()},
        }
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if "id" in spec:
            self.outputs[spec["id"]] = read_pairs(files["GITHUB_OUTPUT"])
        self._job_env.update(read_pairs(files["GITHUB_ENV"]))
        self._path[:0] = reversed(files["GITHUB_PATH"].read_text().split())
        self.summary += files["GITHUB_STEP_SUMMARY"].read_text()
        if proc.returncode != 0:
            self.failed = True
        return Step(name, ran=True, code=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)

    # --- what it did -----------------------------------------------------------------------

    def step(self, named: str) -> Step:
        found = [step for step in self.steps if step.name.startswith(named)]
        assert len(found) == 1, [step.name for step in self.steps]
        return found[0]

    @property
    def log(self) -> str:
        return "\n".join(
            f"--- {step.name} (ran {step.ran}, exit {step.code})\n{step.stdout}{step.stderr}"
            for step in self.steps
        )


def read_pairs(path: Path) -> dict[str, str]:
    """``NAME=VALUE`` lines and ``NAME<<DELIMITER`` blocks, as GitHub reads its files."""
    pairs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            pairs[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            pairs[name] = value
    return pairs


def base_path() -> str:
    """PATH before the steps add to it: this .venv's bin (python, helm-harness) first, then
    the folder of a helm of the pinned version (what azure/setup-helm would add)."""
    first = [str(Path(sys.executable).parent), str(tools.find_helm().parent)]
    return os.pathsep.join([*first, os.environ.get("PATH", "")])


# --- the chart repository ------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True)


PASSING = """\
apiVersion: helm-harness/v1
kind: Suite
apps:
  - name: web
    chart: ../charts/web
    checks:
      - ready: {}
"""

FAILING = (  # the app "late" at line 8
    PASSING
    + """\
  - name: late
    chart: ../charts/web
    checks:
      - wait: {resource: configmap/never-made, for: create}
        timeout: 2s
"""
)


@pytest.fixture
def chart_repo(tmp_path: Path) -> Path:
    """A git repository (branch main) with the fixture web chart in charts/web and a
    passing suite in suites/, committed."""
    repo = tmp_path / "charts-repo"
    shutil.copytree(FIXTURE_CHARTS / "web", repo / "charts" / "web")
    (repo / "suites").mkdir()
    (repo / "suites" / "web.suite.yaml").write_text(PASSING)
    (repo / ".gitignore").write_text("harness-report/\n")
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "charts")
    return repo


def on_the_session_cluster(
    repo: Path, cluster: ClusterInfo, scratch: Path, **inputs: str
) -> ActionRun:
    args = shlex.join([f"--kubeconfig={cluster.kubeconfig}", "-p", "no:cacheprovider"])
    given = {"cluster": "existing", "pytest-args": args, **inputs}
    return ActionRun(
        repo, scratch / "runner", given, {"HELM_HARNESS_CACHE": str(scratch / "cache")}
    )


# --- the action's metadata ----------------------------------------------------------------


def test_every_input_used_is_declared_described_and_every_declared_one_used() -> None:
    action = load_action()
    text = ACTION.read_text()
    used = set(re.findall(r"inputs\.([\w-]+)", text))
    declared = set(action["inputs"])
    assert used - declared == set(), "used but not declared"
    assert declared - used == set(), "declared but never used"
    for name, spec in {**action["inputs"], **action["outputs"]}.items():
        assert str(spec.get("description", "")).strip(), f"{name} has no description"
    assert action["runs"]["using"] == "composite"


def test_the_docs_list_every_input_and_output() -> None:
    text = (REPO / "docs" / "ci.md").read_text()
    section = text[text.index("## Use it from your chart repository") :]
    section = section[: section.index("\n## ", 1)]
    rows = set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))
    action = load_action()
    assert rows == set(action["inputs"]) | set(action["outputs"])
    for name, spec in action["inputs"].items():
        default = spec.get("default") or "empty"
        assert f"| `{name}` | {'empty' if default == 'empty' else f'`{default}`'} |" in section


def test_the_defaults_are_the_pinned_versions() -> None:
    inputs = load_action()["inputs"]
    assert inputs["helm-version"]["default"] == tools.HELM_VERSION
    assert inputs["kind-version"]["default"] == KIND_VERSION
    assert inputs["cluster"]["default"] == "kind" and inputs["suites"]["default"] == "suites"


def test_inputs_reach_the_scripts_only_through_env() -> None:
    """``${{ ... }}`` in a ``run:`` text is script injection; every other expression is one
    the test renders, and step references name an earlier step's id."""
    action = load_action()
    ids: list[str] = []
    for spec in action["runs"]["steps"]:
        name = spec.get("name") or spec.get("uses")
        assert "${{" not in spec.get("run", ""), f"{name}: an expression in run:"
        for expression in EXPRESSION.findall(yaml.safe_dump([spec.get("env"), spec.get("with")])):
            assert REFERENCE.fullmatch(expression), f"{name}: the test cannot render {expression}"
        referenced = re.findall(r"steps\.([\w-]+)\.outputs", yaml.safe_dump(spec))
        assert set(referenced) <= set(ids), f"{name}: refers to a step not before it"
        if "id" in spec:
            ids.append(spec["id"])
    for output in action["outputs"].values():
        match = EXPRESSION.fullmatch(output["value"])
        assert match and REFERENCE.fullmatch(match.group(1)), output


def test_the_renderer_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    run = ActionRun(tmp_path, tmp_path / "runner", {})
    assert run.render("${{ inputs.report-dir }}/x") == "harness-report/x"
    assert run.condition("always() && steps.run.outputs.outcome != 'nothing-to-run'")
    with pytest.raises(Unrenderable):
        run.render("${{ github.event.pull_request.title }}")
    with pytest.raises(Unrenderable):
        run.condition("contains(inputs.suites, 'x')")


# --- the scripts on their own --------------------------------------------------------------


def script(
    name: str, *args: str, env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        cwd=cwd,
        env={"PATH": base_path(), **env},
        capture_output=True,
        text=True,
    )


def test_bad_inputs_are_one_line_errors_before_anything_runs(tmp_path: Path) -> None:
    good = {
        "CLUSTER": "kind",
        "SHARD": "",
        "UPGRADE": "false",
        "SUITES": "suites",
        "PYTEST_ARGS": "",
        "REPORT_DIR": "harness-report",
        "ARTIFACT_NAME": "harness-report",
        "KIND_VERSION": "v0.33.0",
        "HELM_VERSION": "v3.22.0",
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "HELM_HARNESS_CACHE": str(tmp_path / "cache"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_PATH": str(tmp_path / "path"),
    }
    for key, bad, says in [
        ("SHARD", "2", "the input shard is '2': it must be K/N"),
        ("UPGRADE", "yes", "the input upgrade is 'yes': it must be true or false"),
        ("PYTEST_ARGS", "-k 'web", "the input pytest-args does not split as a shell would"),
        ("HELM_VERSION", "v3\nx=1", "the input helm-version is"),
        ("CLUSTER", "", "the input cluster is empty"),
    ]:
        proc = script("prepare.sh", env={**good, key: bad}, cwd=tmp_path)
        assert proc.returncode == 2, (key, proc.stdout, proc.stderr)
        assert proc.stdout.startswith(f"::error title=helm-harness action::{says}"), proc.stdout
        assert "Traceback" not in proc.stdout + proc.stderr
    (tmp_path / "output").write_text("")
    proc = script("prepare.sh", env={**good, "SHARD": "3/4", "CLUSTER": "kwok"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outputs = read_pairs(tmp_path / "output")
    kwok_dir = tools.bin_dir().name  # its name: the versions of the kwok binaries
    assert outputs["artifact"] == "harness-report-shard-3-of-4"
    assert outputs["kwok-dir"] == str(tmp_path / "cache" / "bin" / kwok_dir)
    assert outputs["cache-key"] == f"helm-harness-Linux-X64-helm-v3.22.0-{kwok_dir}"
    assert (tmp_path / "path").read_text() == f"{outputs['bin-dir']}\n"


def test_tools_says_what_is_missing_and_keeps_helm(tmp_path: Path) -> None:
    output = tmp_path / "output"
    output.write_text("")
    env = {"CLUSTER": "kind", "KIND_VERSION": "v0.0.1", "GITHUB_OUTPUT": str(output)}
    proc = script("tools.sh", "missing", env={**env, "HELM_VERSION": "v0.0.1"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert read_pairs(output) == {"kind": "true", "kwok": "false", "helm": "true", "any": "true"}
    output.write_text("")
    helm_version = subprocess.run(
        [str(tools.find_helm()), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
    ).stdout
    env = {**env, "CLUSTER": "existing", "HELM_VERSION": helm_version}
    script("tools.sh", "missing", env=env, cwd=tmp_path)
    assert read_pairs(output) == {"kind": "false", "kwok": "false", "helm": "false", "any": "false"}
    (tmp_path / "bin").mkdir()
    proc = script("tools.sh", "keep-helm", env={"BIN_DIR": str(tmp_path / "bin")}, cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "bin" / "helm").is_file(), proc.stdout


# --- the action on the session's cluster ---------------------------------------------------


def test_a_passing_suite(chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path) -> None:
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path).run()
    assert run.outputs["run"] == {
        "outcome": "passed",
        "exit-code": "0",
        "report-dir": "harness-report",
    }, run.log
    assert run.step("Fail when the run failed").code == 0 and not run.failed, run.log
    assert "helm-harness: all 2 items passed" in run.summary, run.summary
    assert "| suite | app | chart | version | outcome |" in run.summary
    assert not run.step("Annotate the failures").ran
    assert run.step("Delete the clusters").code == 0
    assert (chart_repo / "harness-report" / "report.html").is_file()
    assert run.skipped_uses == [
        "actions/setup-python@v5",
        "actions/cache/restore@v4",
        "actions/setup-go@v5",
        "azure/setup-helm@v4",
        "actions/cache/save@v4",
        "actions/upload-artifact@v4",
    ]
    assert not run.step("Install helm-harness").ran  # NOT_RUN_HERE
    assert not run.step("Build kind").ran  # cluster existing needs no kind


def test_a_failing_suite(chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path) -> None:
    (chart_repo / "suites" / "late.suite.yaml").write_text(FAILING)
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path).run()
    assert run.outputs["run"]["outcome"] == "failed", run.log
    code = int(run.outputs["run"]["exit-code"])
    assert code == 1
    assert run.step("Fail when the run failed").code == code and run.failed
    annotations = run.step("Annotate the failures").stdout
    assert annotations.startswith(
        "::error file=suites/late.suite.yaml,line=8,title="  # the line of the app
        "late%3A%3Alate%3A%3Await[configmap/never-made] failed::late::wait[configmap/never-made]: "
        "expected configmap/never-made to meet create within 2s"
    ), annotations
    assert annotations.count("::error") == 1
    assert "❌ helm-harness: 1 failed" in run.summary, run.summary
    assert "late" in run.summary and "configmap/never-made" in run.summary
    assert run.step("Delete the clusters").ran  # if: always()


def test_changed_since_with_no_chart_changed_runs_nothing(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    git(chart_repo, "checkout", "-q", "-b", "docs")
    (chart_repo / "README.md").write_text("charts\n")
    git(chart_repo, "add", "-A")
    git(chart_repo, "commit", "-q", "-m", "docs only")
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, **{"changed-since": "main"})
    run.run()
    assert run.outputs["run"]["outcome"] == "nothing-to-run", run.log
    assert run.outputs["run"]["exit-code"] == "0"
    assert run.step("Fail when the run failed").code == 0 and not run.failed
    assert "nothing to run: no suite uses a chart changed since `main`" in run.summary
    assert not run.step("Annotate the failures").ran
    assert not (chart_repo / "harness-report").exists()


def test_changed_since_with_the_changed_suites_deselected_runs_nothing(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    """As the gate leaves out suites/broken: pytest's exit 5 (no tests collected) after
    --changed-since chose some suites is nothing to run too."""
    git(chart_repo, "checkout", "-q", "-b", "bump")
    values = chart_repo / "charts" / "web" / "values.yaml"
    values.write_text(values.read_text() + "\n# touched\n")
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, **{"changed-since": "main"})
    run.run(only="run")
    assert run.outputs["run"]["outcome"] == "passed", run.log  # the web suite uses it
    # its reports stay in place: the next run must not take them for its own
    args = run.values["pytest-args"] + " --deselect=suites/web.suite.yaml"
    run = on_the_session_cluster(
        chart_repo, harness_cluster, tmp_path, **{"changed-since": "main", "pytest-args": args}
    )
    run.run(only="run")
    assert run.outputs["run"] == {
        "outcome": "nothing-to-run",
        "exit-code": "0",
        "report-dir": "harness-report",
    }, run.log
    assert "2 deselected" in run.step("Run the suites").stdout


def test_changed_since_runs_only_the_suite_of_the_changed_chart(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    shutil.copytree(chart_repo / "charts" / "web", chart_repo / "charts" / "other")
    other = PASSING.replace("../charts/web", "../charts/other")
    (chart_repo / "suites" / "other.suite.yaml").write_text(other)
    git(chart_repo, "add", "-A")
    git(chart_repo, "commit", "-q", "-m", "another chart")
    git(chart_repo, "checkout", "-q", "-b", "bump")
    values = chart_repo / "charts" / "other" / "values.yaml"
    values.write_text(values.read_text() + "\n# touched\n")
    git(chart_repo, "commit", "-q", "-am", "touch the other chart")
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, **{"changed-since": "main"})
    run.run()
    assert run.outputs["run"]["outcome"] == "passed", run.log
    assert "helm-harness: all 2 items passed" in run.summary, run.summary
    assert "| other | web | other |" in run.summary and "| web | web | web |" not in run.summary


def test_pytest_args_are_split_as_a_shell_would_with_nothing_expanded(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    (chart_repo / "suites" / "late.suite.yaml").write_text(FAILING)
    marker = tmp_path / "ran"
    args = shlex.join([f"--kubeconfig={harness_cluster.kubeconfig}", "-p", "no:cacheprovider"])
    args += f" -k 'web and not late' --junit-prefix='$(touch {marker})' `touch {marker}`x"
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, **{"pytest-args": args})
    run.run(only="run")
    assert not marker.exists()
    step = run.step("Run the suites")
    assert f"-k web and not late --junit-prefix=$(touch {marker}) `touch" in step.stdout
    assert run.outputs["run"]["outcome"] == "failed"  # pytest: no file "`touch", "...`x"
    assert "file or directory not found: `touch" in step.stdout + step.stderr


def test_the_notify_url_reaches_the_run_and_stays_out_of_the_log(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    url = "ftp://hooks.example/T0KEN"  # not http(s): the run refuses it before it starts
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, **{"notify-url": url})
    run.run(only="run")
    step = run.step("Run the suites")
    assert run.outputs["run"]["exit-code"] == "4", run.log  # a usage error
    assert "--notify=***" in step.stdout
    assert "an alert URL is an http:// or https:// URL" in step.stdout + step.stderr
    assert "T0KEN" not in step.stdout + step.stderr


def test_the_history_reaches_the_run_and_a_url_stays_out_of_the_log(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    url = "postgresql://ci:PW-PLANTED@127.0.0.1:1/harness"  # nothing listens on port 1
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, history=url)
    run.run(only="run")
    step = run.step("Run the suites")
    out = step.stdout + step.stderr
    assert "--history=***" in step.stdout and "PW-PLANTED" not in out
    # the store is down: a warning, and the run and its reports as they would have been
    assert "helm-harness: warning: history postgresql://127.0.0.1:1: cannot connect" in out
    assert run.outputs["run"]["exit-code"] in ("0", "1"), run.log


def test_the_upgrade_git_base_reaches_the_run(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    inputs = {"upgrade": "true", "upgrade-from-git-base": "-main"}  # refused by the run
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, **inputs)
    run.run(only="run")
    step = run.step("Run the suites")
    assert "--upgrade --upgrade-from-git-base=-main" in step.stdout, run.log
    assert run.outputs["run"]["exit-code"] == "4", run.log  # a usage error
    assert "not a branch name: '-main'" in step.stdout + step.stderr


def test_lint_runs_first_and_a_problem_stops_the_suites(
    chart_repo: Path, harness_cluster: ClusterInfo, tmp_path: Path
) -> None:
    suite = chart_repo / "suites" / "web.suite.yaml"
    suite.write_text(
        PASSING.replace(
            "chart: ../charts/web", "chart: ../charts/web\n    set: {replicaCount: two}"
        )
    )
    run = on_the_session_cluster(chart_repo, harness_cluster, tmp_path, lint="true").run()
    step = run.step("Run the suites")
    assert "helm-harness lint suites --cluster=existing" in step.stdout, run.log
    assert "helm-harness run" not in step.stdout  # the suites did not run
    assert "suites/web.suite.yaml::web: Deployment/web-web" in step.stdout, run.log
    assert run.outputs["run"]["outcome"] == "failed" and run.outputs["run"]["exit-code"] == "1"
    annotations = run.step("Annotate the failures").stdout
    assert "web%3A%3Aweb%3A%3Alint" in annotations or "web::lint" in annotations, annotations
