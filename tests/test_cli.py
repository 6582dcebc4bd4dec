"""``helm-harness`` as a user runs it: a separate process, real kwok clusters."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.clusters.base import ClusterInfo
from harness.clusters.kwok import KwokProvider
from tests.conftest import REPO


def helm_harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def cluster_name() -> Iterator[str]:
    name = f"hh-cli-{uuid.uuid4().hex[:6]}"
    yield name
    KwokProvider().delete(name)


def test_up_list_reuse_down(cluster_name: str) -> None:
    up = helm_harness(
        "cluster", "up", "--cluster", "kwok", "--name", cluster_name, "--pod-startup", "0"
    )
    assert up.returncode == 0, up.stderr
    assert f"created kwok cluster {cluster_name}" in up.stderr
    kubeconfig = up.stdout.strip()
    assert kubeconfig.endswith(f"kwok-{cluster_name}.yaml")

    listed = helm_harness("cluster", "list", "--cluster", "kwok")
    assert cluster_name in listed.stdout.split()

    again = helm_harness("cluster", "up", "--name", cluster_name)
    assert again.returncode == 1
    assert "already exists" in again.stderr and "--reuse" in again.stderr
    assert "Traceback" not in again.stderr

    reused = helm_harness("cluster", "up", "--name", cluster_name, "--reuse")
    assert reused.returncode == 0 and f"reusing kwok cluster {cluster_name}" in reused.stderr

    down = helm_harness("cluster", "down", "--name", cluster_name)
    assert down.returncode == 0, down.stderr
    assert cluster_name not in helm_harness("cluster", "list").stdout.split()


def test_down_of_an_unknown_cluster_says_so() -> None:
    down = helm_harness("cluster", "down", "--name", "hh-never-made")
    assert down.returncode == 1 and "no kwok cluster named 'hh-never-made'" in down.stderr


def test_bad_duration_is_a_usage_error() -> None:
    bad = helm_harness("cluster", "up", "--pod-startup", "soon")
    assert bad.returncode == 2  # argparse's own usage exit
    assert "not a duration: 'soon'" in bad.stderr


def test_existing_without_kubeconfig_is_a_usage_error() -> None:
    bad = helm_harness("cluster", "list", "--cluster", "existing")
    assert bad.returncode == 4 and "--kubeconfig" in bad.stderr


def test_list_existing_names_the_context(harness_cluster: ClusterInfo) -> None:
    out = helm_harness(
        "cluster", "list", "--cluster", "existing", "--kubeconfig", str(harness_cluster.kubeconfig)
    )
    assert out.returncode == 0 and out.stdout.strip() == "current-context"


def test_schema_prints_the_suite_schema_that_validates_the_example_suites(tmp_path: Path) -> None:
    import json

    import jsonschema
    import yaml

    from harness.suite.model import suite_schema

    printed = helm_harness("schema")
    assert printed.returncode == 0, printed.stderr
    schema = json.loads(printed.stdout)
    assert schema == suite_schema()
    assert schema["$id"] == "https://helm-harness.dev/schema/suite.schema.json"
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    suites = sorted((REPO / "suites").glob("*.suite.yaml"))
    assert suites
    for path in suites:  # what an editor does with the schema: no complaint on a good suite
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path, errors[0].message if errors else "")
    bad = validator.iter_errors({"apiVersion": "helm-harness/v1", "kind": "Suite", "apps": [{}]})
    assert any("'name' is a required property" in error.message for error in bad)

    written = helm_harness("schema", "-o", str(tmp_path / "editor" / "suite.schema.json"))
    assert written.returncode == 0, written.stderr
    assert json.loads((tmp_path / "editor" / "suite.schema.json").read_text()) == schema
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    refused = helm_harness("schema", "-o", str(blocked / "suite.schema.json"))
    assert refused.returncode == 4
    assert refused.stderr.startswith("helm-harness: error: cannot write")
    assert "Traceback" not in refused.stderr
