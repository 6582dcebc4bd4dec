"""Suite files: loading, validation and ``helm-harness validate``. Pure: no cluster."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli.main import main
from harness.suite.model import (
    CHECK_KINDS,
    DEFAULT_TIMEOUT,
    MAX_DURATION,
    ChartRef,
    SuiteError,
    find_suite_files,
    is_suite_file,
    load_suite,
    name_collisions,
    suite_duration,
    suite_schema,
)

HEAD = "apiVersion: helm-harness/v1\nkind: Suite\n"

# The example of SPEC's "Suite file" section, verbatim but for the `db` app it depends on.
SPEC_EXAMPLE = """\
apiVersion: helm-harness/v1
kind: Suite
metadata: {name: shop}              # default: the file name without .suite.yaml
defaults: {timeout: 5m}             # any app field below may be defaulted here
apps:
  - name: web                       # unique in the suite
    chart: ../fixtures/charts/web   # local dir or .tgz; or a name in `repo`; or oci://...
    repo: https://charts.example.org  # optional
    version: 1.4.0                  # chart version, for repo/OCI charts
    release: web                    # default: the app name
    namespace: web                  # default: a fresh namespace per run, h-<run>-<app>
    values: {replicaCount: 2}       # inline values
    valuesFiles: [web-ci.yaml]      # relative to the suite file
    set: {image.tag: "1.2"}         # --set style
    dependsOn: [db]                 # installed and healthy first
    timeout: 3m                     # deadline for install + readiness
    runbook: https://runbooks.example.org/web   # shown with every failure of this app
    upgrade:                        # used by upgrade runs (see below)
      from: {version: 1.3.2}        # or {chart: ../old/web} or {repo: ..., version: ...}
    checks:                         # default when omitted: [ready, helmTest if the chart has tests]
      - ready: {}                   # every workload of the release becomes ready
      - wait: {resource: deployment/web, for: condition=Available, timeout: 60s}
      - wait: {resource: pods, selector: app=web, for: "jsonpath={.status.phase}=Running"}
      - http: {service: web, port: 80, path: /healthz, expect: {status: 200, body: ok}}
      - logs: {selector: app=web, contains: [listening], absent: [panic, ERROR]}
      - helmTest: {}
      - noRestarts: {max: 0}
      - events: {noWarnings: true, allow: [BackOff]}
      - metrics: {memory: "<= 256Mi", cpu: "<= 500m"}      # budgets on the snapshot
      - rbac: {serviceAccount: web, cannot: ["create secrets", "get nodes"]}
      - security: {runAsNonRoot: true, privileged: false, resources: required}
      - python: {call: tests.checks:web_cart_works}       # escape hatch: a function taking the app
  - name: db
    chart: ../fixtures/charts/db
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: ``suites/`` (with a values file) and two local charts."""
    return _make_project(tmp_path)


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_project(tmp_path_factory.mktemp("fuzz"))


def _make_project(root: Path) -> Path:
    for chart in ("web", "db"):
        (root / "fixtures" / "charts" / chart).mkdir(parents=True)
        (root / "fixtures" / "charts" / chart / "Chart.yaml").write_text(f"name: {chart}\n")
    (root / "suites").mkdir()
    (root / "suites" / "web-ci.yaml").write_text("replicaCount: 3\n")
    return root


def write(project: Path, text: str, name: str = "shop.suite.yaml") -> Path:
    path = project / "suites" / name
    path.write_text(text)
    return path


def suite_error(path: Path) -> SuiteError:
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    return caught.value


# --- valid suites -------------------------------------------------------------------------


def test_the_spec_example_loads(project: Path) -> None:
    path = write(project, SPEC_EXAMPLE)
    suite = load_suite(path)
    assert suite.path == path and suite.name == "shop" and not suite.upgrade
    web, db = suite.apps
    assert web.name == "web" and web.line == 6
    assert web.source == ChartRef(
        "../fixtures/charts/web", repo="https://charts.example.org", version="1.4.0"
    )
    assert (web.release, web.namespace, web.timeout) == ("web", "web", 180.0)
    assert web.values == {"replicaCount": 2}
    assert web.values_files == ((project / "suites" / "web-ci.yaml").resolve(),)
    assert web.set_values == {"image.tag": "1.2"}
    assert web.depends_on == ("db",)
    assert web.runbook == "https://runbooks.example.org/web"
    assert web.upgrade_from == ChartRef(
        "../fixtures/charts/web", repo="https://charts.example.org", version="1.3.2"
    )
    assert web.checks is not None
    assert [check.id for check in web.checks] == [
        "ready",
        "wait[deployment/web]",
        "wait[pods]",
        "http[/healthz]",
        "logs[app=web]",
        "helmTest",
        "noRestarts",
        "events",
        "metrics",
        "rbac[web]",
        "security",
        "python[tests.checks:web_cart_works]",
    ]
    wait = web.checks[1]
    assert wait.kind == "wait" and wait.line == 22 and wait.timeout is None
    assert wait.spec == {
        "resource": "deployment/web",
        "for": "condition=Available",
        "timeout": "60s",
    }
    assert web.checks[3].spec["expect"] == {"status": 200, "body": "ok"}

    local = (project / "fixtures" / "charts" / "db").resolve()
    assert db.source == ChartRef(str(local)) and db.source.is_local
    assert (db.release, db.namespace, db.timeout, db.checks) == ("db", None, 300.0, None)


def test_the_spec_example_is_valid_against_the_schema_alone() -> None:
    jsonschema.Draft202012Validator(suite_schema()).validate(yaml.safe_load(SPEC_EXAMPLE))


def test_the_schema_ships_in_the_package_and_suits_draft_7_editors() -> None:
    text = resources.files("harness.suite").joinpath("schema", "suite.schema.json").read_text()
    schema = json.loads(text)
    assert schema == suite_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft7Validator.check_schema(schema)  # yaml-language-server reads draft 7
    assert "unevaluatedProperties" not in text and "prefixItems" not in text
    assert set(schema["$defs"]["check"]["properties"]) == {
        "name",
        "timeout",
        "runbook",
        "xfail",
        "catch",
        "finally",
        *CHECK_KINDS,
    }


def test_defaults_merge_under_each_app_like_helm_values(project: Path) -> None:
    path = write(
        project,
        HEAD
        + textwrap.dedent(
            """\
        defaults:
          upgrade: true
          repo: https://charts.example.org
          timeout: 90
          values: {image: {repository: web, tag: "1"}, replicaCount: 1}
          set: {a: 1, b: 2}
          valuesFiles: [web-ci.yaml]
          checks: [{ready: {}}]
        apps:
          - name: web
            chart: web
            values: {image: {tag: "2"}, extra: [1]}
            set: {b: 3}
            valuesFiles: []
          - name: api
            chart: api
            repo: https://other.example.org
            timeout: 1m30s
            checks:
              - http: {service: api, port: http}
                name: api-up
                timeout: 1m
                runbook: restart it
        """
        ),
        name="plain.suite.yaml",
    )
    suite = load_suite(path)
    web, api = suite.apps
    assert suite.name == "plain" and suite.upgrade
    assert web.values == {
        "image": {"repository": "web", "tag": "2"},
        "replicaCount": 1,
        "extra": [1],
    }
    assert web.set_values == {"a": 1, "b": 3}
    assert web.values_files == ()  # lists replace
    assert web.source == ChartRef("web", repo="https://charts.example.org")
    assert web.timeout == 90.0 and web.release == "web"
    assert web.checks is not None and [c.id for c in web.checks] == ["ready"]
    assert api.source.repo == "https://other.example.org" and api.timeout == 90.0
    assert api.values_files == ((project / "suites" / "web-ci.yaml").resolve(),)
    assert api.checks is not None
    (http,) = api.checks
    assert (http.id, http.timeout, http.runbook) == ("api-up", 60.0, "restart it")
    assert http.spec == {"service": "api", "port": "http"}


def test_a_defaulted_values_mapping_is_not_shared_between_apps(project: Path) -> None:
    text = HEAD + "defaults: {values: {a: {b: 1}}, chart: x, repo: 'https://r.org'}\n"
    suite = load_suite(write(project, text + "apps: [{name: one}, {name: two}]\n"))
    suite.apps[0].values["a"]["b"] = 2
    assert suite.apps[1].values == {"a": {"b": 1}}


def test_bare_check_kinds_yaml_merge_keys_and_local_upgrades(project: Path) -> None:
    path = write(
        project,
        HEAD
        + textwrap.dedent(
            """\
        x-common: &common {chart: ../fixtures/charts/web}
        apps:
          - <<: *common
            name: web
            upgrade: {from: {chart: ../fixtures/charts/db}}
            checks:
              - ready:
              - helmTest:
              - ready: {allowSuspended: true}
                name: ready-suspended
        """
        ),
        name="merge.yaml",
    )
    (web,) = load_suite(path).apps
    assert web.timeout == DEFAULT_TIMEOUT and web.namespace is None
    assert web.source == ChartRef(str((project / "fixtures" / "charts" / "web").resolve()))
    assert web.upgrade_from == ChartRef(str((project / "fixtures" / "charts" / "db").resolve()))
    assert web.checks is not None
    assert [(c.kind, c.spec) for c in web.checks] == [
        ("ready", {}),
        ("helmTest", {}),
        ("ready", {"allowSuspended": True}),
    ]


# --- invalid suites: every message names file, line and key ------------------------------

APP = "apps:\n  - name: web\n    chart: pg\n    repo: https://charts.example.org\n"

ERRORS = [
    pytest.param(
        "apiVersion: helm-harness/v2\nkind: Suite\n" + APP,
        1,
        "apiVersion",
        "must be 'helm-harness/v1'",
        id="api-version",
    ),
    pytest.param(
        HEAD + "app:\n  - name: web\n",
        3,
        "app",
        "unknown key 'app' (did you mean 'apps'?)",
        id="typo",
    ),
    pytest.param(
        HEAD + "metadata: {name: shop}\n", 1, "", "missing required key 'apps'", id="no-apps"
    ),
    pytest.param(HEAD + "apps: []\n", 3, "apps", "must not be empty", id="empty-apps"),
    pytest.param(
        HEAD + APP + "    valuesfiles: [a.yaml]\n",
        7,
        "apps[0].valuesfiles",
        "unknown key 'valuesfiles' (did you mean 'valuesFiles'?)",
        id="unknown-app-key",
    ),
    pytest.param(
        HEAD + "apps:\n  - name: web\n", 4, "apps[0]", "missing required key 'chart'", id="no-chart"
    ),
    pytest.param(
        HEAD + APP.replace("name: web", "name: Web_1"),
        4,
        "apps[0].name",
        "an app name is lower-case letters",
        id="bad-name",
    ),
    pytest.param(
        HEAD + APP + "    version: 1.10\n",
        7,
        "apps[0].version",
        'expected text, got the number 1.10; quote it: "1.10"',
        id="unquoted-version",
    ),
    pytest.param(
        HEAD + APP + "    timeout: soon\n",
        7,
        "apps[0].timeout",
        "a duration is a number with a unit (90s, 5m, 1m30s, 1h)",
        id="bad-duration",
    ),
    pytest.param(
        HEAD + APP + "    checks:\n      - wait: {resource: deployment/web, for: ready}\n",
        8,
        "apps[0].checks[0].wait.for",
        "write `for` as condition=NAME[=VALUE]",
        id="bad-wait-for",
    ),
    pytest.param(
        HEAD + APP + "    checks:\n      - wait:\n        resource: pods\n",
        9,
        "apps[0].checks[0].resource",
        "it belongs to 'wait': indent it under `wait:`",
        id="misindented-check",
    ),
    pytest.param(
        HEAD + APP + "    checks:\n      - http: {service: web, port: 80}\n        ready: {}\n",
        8,
        "apps[0].checks[0]",
        "a check has exactly one kind, this one has http and ready",
        id="two-kinds",
    ),
    pytest.param(
        HEAD + APP + "    checks:\n      - name: smoke\n",
        8,
        "apps[0].checks[0]",
        "a check needs one check kind: ready, wait",
        id="no-kind",
    ),
    pytest.param(
        HEAD + APP + "    checks: [ready]\n",
        7,
        "apps[0].checks[0]",
        "write a check as a mapping: `- ready: {}`",
        id="check-as-text",
    ),
    pytest.param(
        HEAD + APP + "    checks:\n      - rbac: {serviceAccount: web}\n",
        8,
        "apps[0].checks[0].rbac",
        "needs `can`, `cannot` or both",
        id="rbac-without-rules",
    ),
    pytest.param(
        HEAD + APP + "    checks:\n      - http: {service: web, port: 80, expect: {code: 200}}\n",
        8,
        "apps[0].checks[0].http.expect.code",
        "unknown key 'code'; allowed here: status, body",
        id="unknown-check-field",
    ),
    pytest.param(
        HEAD
        + APP
        + "    checks:\n      - ready: {}\n      - noRestarts: {max: 1}\n      - ready:\n",
        10,
        "apps[0].checks[2]",
        "apps[0].checks[0] (line 8) has the same id 'ready'; give one of them a `name`",
        id="duplicate-check-id",
    ),
    pytest.param(
        HEAD + APP + APP.replace("apps:\n", ""),
        7,
        "apps[1].name",
        "apps[0] (line 4) already has the name 'web'",
        id="duplicate-app",
    ),
    pytest.param(
        HEAD + APP + "    dependsOn: [dbb]\n" + APP.replace("apps:\n", "").replace("web", "db"),
        7,
        "apps[0].dependsOn[0]",
        "no app named 'dbb' in this suite (did you mean 'db'?); its apps: web, db",
        id="unknown-dependency",
    ),
    pytest.param(
        HEAD
        + APP
        + "    dependsOn: [db]\n"
        + APP.replace("apps:\n", "").replace("web", "db")
        + "    dependsOn: [cache]\n"
        + APP.replace("apps:\n", "").replace("web", "cache")
        + "    dependsOn: [web]\n",
        7,
        "apps[0].dependsOn[0]",
        "dependsOn has a cycle: web -> db -> cache -> web",
        id="dependency-cycle",
    ),
    pytest.param(
        HEAD + APP + "    dependsOn: [web]\n",
        7,
        "apps[0].dependsOn[0]",
        "web depends on itself",
        id="self-dependency",
    ),
    pytest.param(
        HEAD + "apps:\n  - name: web\n    chart: ../charts/nope\n",
        5,
        "apps[0].chart",
        "chart not found: ",
        id="missing-local-chart",
    ),
    pytest.param(
        HEAD + "apps:\n  - name: web\n    chart: ../fixtures\n",
        5,
        "apps[0].chart",
        "is not a Helm chart: no Chart.yaml",
        id="folder-without-chart-yaml",
    ),
    pytest.param(
        HEAD + "apps:\n  - name: web\n    chart: ../fixtures/charts/web/Chart.yaml\n",
        5,
        "apps[0].chart",
        "is not a Helm chart: give a chart folder or a .tgz",
        id="file-that-is-no-chart",
    ),
    pytest.param(
        HEAD + "defaults:\n  chart: ../charts/nope\napps:\n  - name: web\n",
        4,
        "defaults.chart",
        "chart not found",
        id="missing-defaulted-chart",
    ),
    pytest.param(
        HEAD + "apps:\n  - name: web\n    chart: ../fixtures/charts/web\n    version: '1.0'\n",
        6,
        "apps[0].version",
        "version applies to charts from a repo or an OCI registry",
        id="version-of-local-chart",
    ),
    pytest.param(
        HEAD
        + "apps:\n  - name: web\n    chart: ../fixtures/charts/web\n    valuesFiles: [x.yaml]\n",
        6,
        "apps[0].valuesFiles[0]",
        "values file not found: ",
        id="missing-values-file",
    ),
    pytest.param(
        HEAD + "apps:\n  - name: web\n    chart: ../fixtures/charts/web\n"
        "    upgrade:\n      from: {version: 1.0.0}\n",
        7,
        "apps[0].upgrade.from",
        "the app's chart is a local folder, so `from` needs its own `chart`",
        id="upgrade-from-local-version",
    ),
    pytest.param(
        HEAD
        + "defaults: {namespace: shop}\n"
        + APP
        + APP.replace("apps:\n", "").replace("name: web", "name: db\n    release: web"),
        9,
        "apps[1].release",
        "apps[0] (web) and apps[1] (db) both install release 'web' into namespace 'shop'",
        id="same-release-twice",
    ),
    pytest.param(
        HEAD + APP + "    chart: pg\n",
        7,
        "apps[0].chart",
        "duplicate key (first given at line 5)",
        id="duplicate-key",
    ),
    pytest.param(
        HEAD + APP + "    values: {1: one}\n",
        7,
        "apps[0].values",
        "a key must be text, not 1; quote it",
        id="number-as-key",
    ),
    pytest.param(
        HEAD + "apps: &apps\n  - *apps\n",
        3,
        "apps[0]",
        "the alias at apps[0] refers to a node that contains it (its anchor is at line 3)",
        id="loop",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), ERRORS)
def test_errors_name_file_line_and_key(
    project: Path, text: str, line: int, key: str, fragment: str
) -> None:
    path = write(project, text)
    error = suite_error(path)
    assert (error.path, error.line, error.key) == (path, line, key)
    where = f"{path}:{line}: {key}: " if key else f"{path}:{line}: "
    assert str(error).startswith(where), str(error)
    assert fragment in error.problem, str(error)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        pytest.param(HEAD + "apps:\n\t- name: web\n", 4, "indents with spaces, not tabs", id="tab"),
        pytest.param(
            HEAD + "apps:\n  - name: web\n   chart: x\n", 5, "check the indentation", id="indent"
        ),
        pytest.param(HEAD + "apps: [a, b\n", 4, "invalid YAML", id="unclosed"),
        pytest.param(HEAD + "apps: *nowhere\n", 3, "undefined alias", id="alias"),
        pytest.param(HEAD + "apps: !!python/object:os.system x\n", 3, "constructor", id="tag"),
        pytest.param("kind: Suite\x00\n", 1, "#x0000 is not allowed", id="nul"),
        pytest.param("- a\n- b\n", 1, "a suite file is a mapping", id="list"),
    ],
)
def test_malformed_yaml_gives_the_line(project: Path, text: str, line: int, fragment: str) -> None:
    error = suite_error(write(project, text))
    assert error.line == line and fragment in str(error), str(error)
    assert "Traceback" not in str(error)


def test_an_empty_or_unreadable_or_binary_file_is_a_suite_error(project: Path) -> None:
    assert "the file is empty" in str(suite_error(write(project, "")))
    assert "cannot read the file" in str(suite_error(project / "suites" / "missing.suite.yaml"))
    assert "cannot read the file" in str(suite_error(project / "suites"))
    binary = project / "suites" / "binary.suite.yaml"
    binary.write_bytes(b"kind: Suite\n\xff\xfe\x00")
    error = suite_error(binary)
    assert error.line == 2 and "not UTF-8" in str(error)


def test_alias_bombs_and_deep_nesting_are_refused(project: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 7):
        levels.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    assert "too large" in str(suite_error(write(project, "\n".join(levels) + "\n")))
    nested = "a: " + "[" * 100 + "]" * 100 + "\n"
    assert "nested more than" in str(suite_error(write(project, nested)))
    very = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    assert "nests too deeply" in str(suite_error(write(project, very)))


# --- which files are suites ---------------------------------------------------------------


def test_is_suite_file(project: Path) -> None:
    suites = project / "suites"
    write(project, SPEC_EXAMPLE)
    write(project, "kind: Suite\n", name="plain.yml")
    write(project, "apps: [\n\t", name="broken.suite.yaml")
    write(project, "apiVersion: v1\n", name="kindless.suite.yaml")
    write(project, "kind: Deployment\n", name="other.suite.yaml")
    write(project, "apps: [\n\t", name="broken.yaml")
    (project / "web.suite.yaml").write_text(HEAD + APP)
    (project / "elsewhere.yaml").write_text(HEAD + APP)
    (project / "a.suite.yaml").mkdir()
    assert is_suite_file(suites / "shop.suite.yaml")
    assert is_suite_file(suites / "plain.yml")
    assert is_suite_file(suites / "broken.suite.yaml")  # loading it says what is wrong
    assert is_suite_file(suites / "kindless.suite.yaml")
    assert is_suite_file(project / "web.suite.yaml")
    assert not is_suite_file(suites / "other.suite.yaml")
    assert not is_suite_file(suites / "web-ci.yaml")  # a values file beside the suites
    assert not is_suite_file(suites / "broken.yaml")
    assert not is_suite_file(project / "elsewhere.yaml")
    assert not is_suite_file(project / "a.suite.yaml")
    assert not is_suite_file(project / "missing.suite.yaml")
    assert not is_suite_file(Path("\x00.suite.yaml"))


def test_find_suite_files_skips_hidden_folders(project: Path) -> None:
    write(project, SPEC_EXAMPLE)
    (project / ".venv").mkdir()
    (project / ".venv" / "x.suite.yaml").write_text(HEAD + APP)
    (project / "more" / "suites").mkdir(parents=True)
    (project / "more" / "suites" / "a.yaml").write_text(HEAD + APP)
    assert find_suite_files(project) == [
        project / "more" / "suites" / "a.yaml",
        project / "suites" / "shop.suite.yaml",
    ]


# --- helm-harness validate ----------------------------------------------------------------


def test_validate_reports_each_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(project, SPEC_EXAMPLE)
    assert main(["validate", str(project)]) == 0
    assert capsys.readouterr().out == f"ok  {good} (2 apps, 12 checks)\n"

    bad = write(project, HEAD + APP + "    timeout: soon\n", name="bad.suite.yaml")
    assert main(["validate", str(project), str(good)]) == 4
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{bad}:7: apps[0].timeout: a duration is a number with a unit (90s, 5m, 1m30s, 1h) "
        "or a number of seconds; got the text 'soon'",
        f"ok  {good} (2 apps, 12 checks)",
    ]
    assert "1 of 2 suite files invalid" in err and "Traceback" not in err


def test_a_name_from_the_file_name_is_held_to_the_name_rule(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once it passed validate, then every item failed with a 422 (the name goes into
    labels)."""
    weird = write(project, HEAD + APP, name="Weird Name_X.suite.yaml")
    with pytest.raises(SuiteError) as failure:
        load_suite(weird)
    assert str(failure.value).startswith(f"{weird}: metadata.name: the suite's name defaults")
    assert "'Weird Name_X'" in str(failure.value)
    assert main(["validate", str(weird)]) == 4
    named = write(project, HEAD + "metadata: {name: weird}\n" + APP, name="Weird Name_X.suite.yaml")
    assert load_suite(named).name == "weird"


def test_two_files_whose_apps_would_share_a_namespace_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once a 409 traceback at install: the same metadata.name and app name in two files."""
    first = write(project, HEAD + "metadata: {name: shop}\n" + APP, name="a.suite.yaml")
    second = write(project, HEAD + "metadata: {name: shop}\n" + APP, name="b.suite.yaml")
    assert main(["validate", str(project)]) == 4
    err = capsys.readouterr().err
    assert f"{first} and {second} both have suite 'shop' with app 'web'" in err
    assert name_collisions([load_suite(first), load_suite(second)]) != []


@pytest.mark.parametrize("key", ["image[", "a..b", ".a", "a.", "args[x]", "a]b"])
def test_set_keys_helm_cannot_parse_are_named(project: Path, key: str) -> None:
    """Helm would say only 'error parsing index: EOF', naming no key."""
    path = write(project, HEAD + APP + f"    set: {{'{key}': 1}}\n")
    error = suite_error(path)
    assert (error.line, error.key) == (7, f'apps[0].set["{key}"]'), str(error)
    assert "not a key Helm's --set can parse" in error.problem


def test_set_keys_helm_parses_are_taken(project: Path) -> None:
    path = write(project, HEAD + APP + "    set: {image.tag: v1, 'args[0]': x, 'a\\.b.c': 1}\n")
    assert set(load_suite(path).apps[0].set_values) == {"image.tag", "args[0]", "a\\.b.c"}


def test_a_values_file_helm_refuses_is_named(project: Path) -> None:
    (project / "suites" / "list.yaml").write_text("- a\n- b\n")
    path = write(project, HEAD + APP + "    valuesFiles: [list.yaml]\n")
    error = suite_error(path)
    assert (error.line, error.key) == (7, "apps[0].valuesFiles[0]")
    assert "holds a list, not a mapping of values" in error.problem
    (project / "suites" / "list.yaml").write_text("a: [1,\n")
    error = suite_error(path)
    assert "the values file is not valid YAML" in error.problem and "list.yaml:" in error.problem
    (project / "suites" / "list.yaml").write_text("")
    assert load_suite(path).apps[0].values_files  # an empty values file is fine


def test_a_second_document_is_not_ignored(project: Path) -> None:
    path = write(project, HEAD + APP + "---\n" + HEAD + APP)
    error = suite_error(path)
    assert error.line == 8 and "a second YAML document" in error.problem
    assert load_suite(write(project, HEAD + APP + "---\n")).apps  # a trailing '---' is fine


def test_validate_a_missing_path_or_a_folder_without_suites(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(project / "nope")]) == 4
    assert f"no such file or folder: {project / 'nope'}" in capsys.readouterr().err
    (project / "empty").mkdir()
    assert main(["validate", str(project / "empty")]) == 4
    assert "no suite files found in" in capsys.readouterr().err


def test_validate_a_file_named_explicitly(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = project / "suites" / "web-ci.yaml"
    assert main(["validate", str(values)]) == 4
    assert f"{values}:1: missing required key 'apiVersion'" in capsys.readouterr().out
    one = write(project, HEAD + APP, name="one.yaml")
    assert main(["validate", str(one)]) == 0
    assert capsys.readouterr().out == f"ok  {one} (1 app, 0 checks)\n"


# --- durations: what Helm's --timeout and the harness can take ------------------------------

# Where a suite gives a duration, as (key, suite text with {d} for the duration, line): the
# defaults are checked although the app overrides them.
DURATION_PLACES = [
    ("apps[0].timeout", HEAD + APP + "    timeout: {d}\n", 7),
    ("defaults.timeout", HEAD + "defaults: {{timeout: {d}}}\n" + APP + "    timeout: 5m\n", 3),
    (
        "apps[0].checks[0].timeout",
        HEAD + APP + "    checks:\n      - helmTest: {{}}\n        timeout: {d}\n",
        9,
    ),
    (
        "apps[0].checks[0].wait.timeout",
        HEAD + APP + "    checks:\n      - wait: {{resource: pods, timeout: {d}}}\n",
        8,
    ),
    (
        "defaults.checks[0].timeout",
        HEAD
        + "defaults:\n  checks:\n    - ready: {{}}\n      timeout: {d}\n"
        + APP
        + "    checks: [{{ready: {{}}}}]\n",
        6,
    ),
]
NEGATIVE = "a duration cannot be negative; give at least 1s"
ZERO = (
    "a duration of 0 is no time at all (Helm takes --timeout 0s as no limit, the harness "
    "would give up at once); give at least 1s"
)
TOO_SHORT = (
    "a duration under 1s is too short: Helm gets --timeout in whole seconds and the harness "
    "waits at least 1s, so it would silently become 1s; give at least 1s"
)
TOO_LARGE = (
    "a duration is too large: Helm's --timeout, a Go duration, holds at most "
    "2562047h47m16.854775807s (about 292 years)"
)
# (as written in YAML, as the message shows it, the message)
BAD_DURATIONS = [
    ("-5", "the number -5", NEGATIVE),
    ("-1m30s", "the text '-1m30s'", NEGATIVE),
    ("0", "the number 0", ZERO),
    ("0s", "the text '0s'", ZERO),
    ("0h0m", "the text '0h0m'", ZERO),
    ("500ms", "the text '500ms'", TOO_SHORT),
    ("0.5", "the number 0.5", TOO_SHORT),
    ("999ms", "the text '999ms'", TOO_SHORT),
    ("500ns", "the text '500ns'", TOO_SHORT),  # below a timedelta's microsecond
    ("2562047h47m17s", "the text '2562047h47m17s'", TOO_LARGE),
    ("9223372037", "the number 9223372037", TOO_LARGE),
    ("3000000h", "the text '3000000h'", TOO_LARGE),
    ("9999999999999999999h1s", "the text '9999999999999999999h1s'", TOO_LARGE),
    (".inf", "the number .inf", TOO_LARGE),
    ("1" + "0" * 400, "the number 1" + "0" * 56 + "...", TOO_LARGE),  # too big for a float
]


@pytest.mark.parametrize(
    ("written", "shown", "message"), BAD_DURATIONS, ids=[b[0][:24] for b in BAD_DURATIONS]
)
@pytest.mark.parametrize(
    ("key", "template", "line"), DURATION_PLACES, ids=[p[0] for p in DURATION_PLACES]
)
def test_durations_helm_or_the_harness_cannot_take_are_named(
    project: Path, key: str, template: str, line: int, written: str, shown: str, message: str
) -> None:
    """Once they passed validate: a timeout of 0s or 500ms reached Helm as 1s (with the
    harness's deadline already gone), one over Go's limit made Helm refuse the flag."""
    path = write(project, template.format(d=written))
    error = suite_error(path)
    assert str(error) == f"{path}:{line}: {key}: {message}; got {shown}"


def test_the_schema_has_no_duration_the_loader_does_not_check() -> None:
    """DURATION_PLACES covers each place the schema refers to a duration (defaults and
    apps share the app fields, defaults' and apps' checks the check fields)."""
    text = json.dumps(suite_schema())
    assert text.count('"$ref": "#/$defs/duration"') == 4  # defaults, app, check, wait


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("1s", 1.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1m30s", 90.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("1h2m3.5s", 3723.5),
        ("1500ms", 1.5),
        ("+5m", 300.0),
        ("'90'", 90.0),
        ("1", 1.0),
        ("90", 90.0),
        ("2.5", 2.5),
        ("2562047h", 2562047 * 3600.0),
        ("2562047h47m16.854775807s", MAX_DURATION),
    ],
)
def test_durations_helm_takes_are_accepted_everywhere(
    project: Path, written: str, seconds: float
) -> None:
    text = (
        HEAD
        + f"defaults: {{timeout: {written}}}\n"
        + APP
        + f"    checks:\n      - helmTest: {{}}\n        timeout: {written}\n"
        + f"      - wait: {{resource: pods, timeout: {written}}}\n"
    )
    (web,) = load_suite(write(project, text)).apps
    assert web.checks is not None
    helm_test, wait = web.checks
    assert web.timeout == helm_test.timeout == pytest.approx(seconds)
    assert suite_duration(wait.spec["timeout"]) == pytest.approx(seconds)


class _RecordingHelm:
    """Helm for the Deployer and the helmTest check, noting each --timeout it is given."""

    def __init__(self) -> None:
        self.timeouts: list[tuple[str, str]] = []

    def install(self, release: str, chart: str, **kwargs: Any) -> dict[str, Any]:
        self.timeouts.append(("install", kwargs["timeout"]))
        return {}

    def upgrade(self, release: str, chart: str, **kwargs: Any) -> dict[str, Any]:
        self.timeouts.append(("upgrade", kwargs["timeout"]))
        return {}

    def test(self, release: str, *, namespace: str, timeout: str = "5m") -> str:
        self.timeouts.append(("test", timeout))
        return ""

    def manifest(self, release: str, **kwargs: Any) -> str:
        return ""

    hooks = manifest

    def show_crds(self, chart: str, **kwargs: Any) -> str:
        return ""


def _helm_timeouts(project: Path, monkeypatch: pytest.MonkeyPatch, written: str) -> list[str]:
    """The --timeout values the harness hands Helm for an app whose timeout is ``written``,
    with a helmTest check of that timeout and one of the app's: install, upgrade, test."""
    from harness.checks import helm_test
    from harness.deploy.deployer import PHASE_TO, Deployer

    text = (
        HEAD
        + APP
        + f"    timeout: {written}\n    checks:\n"
        + f"      - {{helmTest: {{}}, name: own, timeout: {written}}}\n"
        + "      - {helmTest: {}, name: app}\n"
    )
    suite = load_suite(write(project, text))
    (app,) = suite.apps
    helm = _RecordingHelm()
    monkeypatch.setattr(Deployer, "_create_namespace", lambda self, run: False)
    deployer = Deployer(run_id="t", api=cast(Any, None), helm=cast(Any, helm))
    run = deployer.ensure_phase(suite, app, PHASE_TO)  # install, then upgrade
    assert run.ctx is not None
    run.ctx.hooks = [{"metadata": {"name": "t", "annotations": {"helm.sh/hook": "test"}}}]
    for check in app.checks or ():
        helm_test.run(run.ctx, check)
    assert [step for step, _ in helm.timeouts] == ["install", "upgrade", "test", "test"]
    return [timeout for _, timeout in helm.timeouts]


GO_MAX_WHOLE_SECONDS = (2**63 - 1) // 10**9  # the most "Ns" Go's time.ParseDuration takes
SWEEP = [f"{1.7**k:.3f}" for k in range(60) if 1.7**k <= MAX_DURATION]


@pytest.mark.parametrize(
    "written", ["1s", "1.5s", "1999ms", "1m30s", "1.5m", "2562047h", "9223372036.8", *SWEEP]
)
def test_the_harness_hands_helm_a_timeout_it_parses(
    project: Path, monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    """Every duration the loader takes becomes, at each place it reaches Helm, a --timeout
    of whole seconds from 1s to Go's limit (what time.ParseDuration takes as "Ns")."""
    seconds = load_suite(write(project, HEAD + APP + f"    timeout: {written}\n")).apps[0].timeout
    for timeout in _helm_timeouts(project, monkeypatch, written):
        assert re.fullmatch(r"[1-9][0-9]*s", timeout), timeout
        assert 1 <= int(timeout[:-1]) <= min(seconds, GO_MAX_WHOLE_SECONDS), timeout


def test_helm_parses_the_timeouts_the_harness_gives_and_refuses_what_the_loader_does(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real helm binary: Helm's flag parsing refuses a bad --timeout even for
    ``helm template``. The loader's upper bound is Helm's."""
    from harness.errors import MissingBinariesError
    from harness.tools import find_helm
    from tests.conftest import tiny_chart

    try:
        helm = find_helm()
    except MissingBinariesError:
        pytest.skip("no helm binary")
    chart = tiny_chart(tmp_path, "tiny", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    env = {
        **os.environ,
        **{f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CACHE", "CONFIG", "DATA")},
    }

    def helm_takes(timeout: str) -> bool:
        argv = [str(helm), "template", "t", str(chart), "--timeout", timeout]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0 or "--timeout" in done.stderr, done.stderr
        return done.returncode == 0

    given = {
        timeout
        for written in ("1s", "1.5s", "1m30s", "1.5m", "2562047h47m16.854775807s")
        for timeout in _helm_timeouts(project, monkeypatch, written)
    }
    assert {"1s", "90s", f"{GO_MAX_WHOLE_SECONDS}s"} <= given  # install's: what is left
    assert all(helm_takes(timeout) for timeout in sorted(given))
    # just past the limit, Helm refuses the flag and the loader the suite
    assert not helm_takes(f"{GO_MAX_WHOLE_SECONDS + 1}s")
    assert not helm_takes("2562047h47m16.854775808s")
    for written in (f"{GO_MAX_WHOLE_SECONDS + 1}", "2562047h47m17s"):
        path = write(project, HEAD + APP + f"    timeout: {written}\n")
        assert TOO_LARGE in suite_error(path).problem


def test_validate_names_a_defaulted_duration_no_app_uses(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(project, HEAD + "defaults: {timeout: 500ms}\n" + APP + "    timeout: 5m\n")
    assert main(["validate", str(bad)]) == 4
    assert (
        capsys.readouterr().out == f"{bad}:3: defaults.timeout: {TOO_SHORT}; got the text '500ms'\n"
    )


# --- fuzzing: nothing but SuiteError ever escapes -----------------------------------------

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

YAML_BITS = [
    HEAD, "apps:\n", "  - name: web\n", "    chart: ", "../fixtures/charts/web", "pg", "repo: ",
    "https://r.org", "checks:\n", "- ", "ready: {}", "wait: ", "{resource: pods, for: create}",
    "timeout: ", "5m", "dependsOn: [web]", "defaults: ", "values: ", "&a ", "*a", "<<: *a",
    "!!binary ", "!!python/name:os.system ", "!!set ", "? ", ": ", "[", "]", "{", "}", ", ",
    "'", '"', "|\n", ">-\n", "#", "---\n", "...\n", "%YAML 1.1\n", "~", "1.10", ".nan", ".inf",
    "2024-01-01", "0x1F", "\t", "\n", "  ", "    ", "\\", "\x00", "\ufeff", "é", "=", "-",
]  # fmt: skip
FIELDS = [
    "name", "chart", "repo", "version", "release", "namespace", "values", "valuesFiles", "set",
    "dependsOn", "timeout", "runbook", "upgrade", "from", "checks", "metadata", "defaults",
    "apps", "kind", "apiVersion", *CHECK_KINDS, "resource", "for", "service", "port", "path",
    "expect", "status", "max", "call", "can", "cannot", "serviceAccount", "memory", "cpu",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        ["web", "db", "5m", "90", "../fixtures/charts/web", "../fixtures/charts/nope",
         "oci://r.io/web", "https://r.org", "web-ci.yaml", "nope.yaml", "condition=Ready",
         "deployment/web", "helm-harness/v1", "Suite", "/healthz", "a:b", "get pods"]
    )
)  # fmt: skip
KEYS = st.sampled_from(FIELDS) | st.text(max_size=8)


def _nested(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[Any] = KEYS) -> Any:
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=20,
    )


JUNK = _nested(SCALARS)
WILD = _nested(SCALARS, KEYS | st.integers(0, 3))  # with keys that are not text


def _field(*choices: Any) -> Any:
    """Mostly a plausible value for a field, sometimes anything at all."""
    return st.one_of(*[st.sampled_from(choices)] * 6, JUNK)


def _check() -> Any:
    kinds = suite_schema()["$defs"]
    specs = {
        kind: st.none()
        | st.dictionaries(
            st.sampled_from([*kinds[kind].get("properties", {}), "x"]),
            SCALARS | st.lists(st.sampled_from(["get pods", "panic", "x"]), max_size=2),
        )
        for kind in CHECK_KINDS
    }
    one = st.sampled_from(CHECK_KINDS).flatmap(
        lambda kind: st.fixed_dictionaries({kind: specs[kind]})
    )
    extras = st.fixed_dictionaries(
        {}, optional={"name": _field("a", "b"), "timeout": _field("5s", 1), "wait": specs["wait"]}
    )
    check = st.tuples(one, extras).map(lambda pair: {**pair[0], **pair[1]})
    return st.one_of(check, check, check, JUNK)


SOURCE = ["chart", "repo", "version"]
OLD = _field("1.0.0", "pg", "https://r.org", "../fixtures/charts/db")
APP_FIELDS = {
    "chart": _field("../fixtures/charts/web", "../fixtures", "nope", "pg", "oci://r.io/web"),
    "repo": _field("https://r.org", "nope"),
    "version": _field("1.0.0", "2"),
    "release": _field("web", "db", "Web"),
    "namespace": _field("shop", "web"),
    "values": st.one_of(*[st.dictionaries(st.text(max_size=5), JUNK, max_size=3)] * 4, WILD),
    "valuesFiles": st.lists(_field("web-ci.yaml", "nope.yaml", "../suites"), max_size=2),
    "set": st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
    "dependsOn": st.lists(_field("web", "db", "x"), max_size=2),
    "timeout": _field("5m", "90", 90, 0.5, "1h", "soon", float("inf")),
    "runbook": _field("https://runbooks.example.org"),
    "upgrade": st.fixed_dictionaries({"from": st.dictionaries(st.sampled_from(SOURCE), OLD)}),
    "checks": st.lists(_check(), max_size=3),
}
APPS = st.fixed_dictionaries({"name": _field("web", "db", "x")}, optional=APP_FIELDS) | JUNK
SUITES = st.fixed_dictionaries(
    {"apiVersion": st.just("helm-harness/v1"), "kind": st.just("Suite")},
    optional={
        "apps": st.lists(APPS, max_size=3) | JUNK,
        "defaults": st.fixed_dictionaries(
            {}, optional={**APP_FIELDS, "upgrade": st.booleans() | JUNK}
        ),
        "metadata": st.fixed_dictionaries({}, optional={"name": _field("shop", "a b")}) | JUNK,
    },
)


def _load_only_suite_errors(path: Path, text: str | bytes) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_suite(path)
    except SuiteError as exc:
        assert str(exc).startswith(str(path)), str(exc)
    assert isinstance(is_suite_file(path), bool)


@FUZZ
@given(text=st.text() | st.binary())
def test_fuzz_arbitrary_text(fuzz_project: Path, text: str | bytes) -> None:
    _load_only_suite_errors(fuzz_project / "suites" / "fuzz.suite.yaml", text)


@FUZZ
@given(bits=st.lists(st.sampled_from(YAML_BITS), max_size=40))
def test_fuzz_yaml_ish_text(fuzz_project: Path, bits: list[str]) -> None:
    _load_only_suite_errors(fuzz_project / "suites" / "fuzz.suite.yaml", "".join(bits))


@FUZZ
@given(data=SUITES | SUITES | WILD)
def test_fuzz_structures_dumped_to_yaml(fuzz_project: Path, data: Any) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    _load_only_suite_errors(fuzz_project / "suites" / "fuzz.suite.yaml", text)


def test_the_check_forms_the_docs_give_are_taken(project: Path) -> None:
    """`helmTest: {required: true}` and rbac's `VERB RESOURCE in NAMESPACE`, as checks.md
    writes them (the schema once refused both)."""
    path = write(
        project,
        HEAD
        + APP
        + "    checks:\n"
        + "      - helmTest: {required: true}\n"
        + "      - rbac: {serviceAccount: web, cannot: [get configmaps in kube-system]}\n",
    )
    helm_test, rbac = load_suite(path).apps[0].checks or []
    assert helm_test.spec == {"required": True}
    assert rbac.spec["cannot"] == ["get configmaps in kube-system"]


def test_a_permission_that_is_not_verb_resource_is_named(project: Path) -> None:
    path = write(
        project, HEAD + APP + "    checks: [{rbac: {serviceAccount: web, cannot: [get]}}]\n"
    )
    with pytest.raises(SuiteError, match="VERB RESOURCE in NAMESPACE"):
        load_suite(path)
