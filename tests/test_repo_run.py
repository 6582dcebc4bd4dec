"""The repository run: every suite under ``fixtures/repo/`` (real-shaped fixture charts,
see fixtures/README.md) and the example suites under ``suites/`` as ONE pytest run with
``-n 2`` on a kwok cluster the run makes and deletes, in a subprocess as a user would
start it. It holds what real repositories hold, including pairs of apps that render the
same cluster-scoped object (``clash.suite.yaml``), which run one after another. Every app
must pass, and every item must reach results.json and junit.xml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from harness import tools
from harness.clusters.kwok import KwokProvider
from harness.helm.client import Helm
from harness.kube import manifests
from tests.conftest import FIXTURE_CHARTS, REPO

REPO_SUITES = REPO / "fixtures" / "repo"
EXAMPLES = REPO / "suites"

# (suite, app): the apps of the run.
APPS = {
    ("data", "local-volumes"),
    ("data", "kvstore"),
    ("data", "storefront"),
    ("operators", "meter-operator"),
    ("operators", "meter"),
    ("operators", "log-shipper"),
    ("edge", "gateway"),
    ("edge", "route"),
    ("upgrade", "ledger"),
    ("apps", "web"),
    ("apps", "migrate"),
    ("clash", "ledger"),
    ("clash", "ledger-upgrade"),
    ("clash", "gateway"),
    ("clash", "gateway-internal"),
    # the example suites
    ("web", "web"),
    ("crds", "widget"),
    ("crds", "widget-operator"),
    ("crds", "gadget-crd"),
    ("daemonset", "agent"),
    ("hooks", "migrate"),
    ("stateful", "db"),
}
ITEMS = 141  # 140 suite items and the example plain pytest test
# What kwok cannot show, skipped with the reason: nothing serves the web example's port.
SKIPPED = {"suites/web.suite.yaml::web::http[/healthz]"}
# Pairs that render one cluster-scoped object, so run one after another.
SERIALISED = {
    ("clash", "ledger"): "upgrade.suite.yaml::ledger (ClusterRole/ledger-node-reader)",
    ("clash", "gateway-internal"): (
        "clash.suite.yaml::gateway (CustomResourceDefinition/routes.repo.helm-harness.io)"
    ),
    ("edge", "gateway"): "clash.suite.yaml::gateway (IngressClass/repo-gateway)",
}

RUN_ARGS = (
    "--cluster=kwok",
    "-n",
    "2",
    "--kwok-pod-startup=0",  # no suite here needs pods to start slowly
    "--kwok-pod-jitter=0",
    "-p",
    "no:cacheprovider",
)


def collected_ids(pytester: pytest.Pytester) -> list[str]:
    result = pytester.runpytest_subprocess(
        str(REPO_SUITES), str(EXAMPLES), "--collect-only", "-q", "-p", "no:cacheprovider"
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return [line for line in result.stdout.lines if "::" in line and " " not in line]


def test_the_repository_runs_as_one_xdist_run_and_every_app_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELM_HARNESS_METRICS_WAIT", "0")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # kwok needs none

    ids = collected_ids(pytester)
    assert len(ids) == len(set(ids)) == ITEMS, ids
    files = {i.split("::")[0] for i in ids if i.endswith(".yaml") or ".suite.yaml::" in i}
    assert {f for f in files if f.startswith("fixtures/repo/")} == {
        f"fixtures/repo/{name}.suite.yaml"
        for name in ("apps", "clash", "data", "edge", "operators", "upgrade")
    }

    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        str(REPO_SUITES), str(EXAMPLES), *RUN_ARGS, "--report-dir", str(report), "-rfEs",
        timeout=900,
    )  # fmt: skip
    out = result.stdout.str()
    assert result.ret == 0, out + result.stderr.str()
    result.assert_outcomes(passed=ITEMS - len(SKIPPED), skipped=len(SKIPPED))
    assert f"2 workers [{ITEMS} items]" in out
    assert "ClusterRole/ledger-node-reader: they run one after another" in out

    # One cluster for both workers, made by the controller and deleted at the end.
    match = re.search(r"helm-harness: run \w+, cluster kwok:(\S+)", out)
    assert match, out
    cluster = match.group(1)
    assert f"deleted kwok cluster {cluster}" in out
    assert not KwokProvider().exists(cluster)
    for suite, app in APPS:  # each app uninstalled and its namespace deleted
        assert re.search(rf"removed {re.escape(app)} and namespace h-\w+-{suite}-{app}\b", out)

    record = json.loads((report / "results.json").read_text())
    assert record["complete"] is True
    assert record["outcomes"] == {
        "passed": ITEMS - len(SKIPPED), "failed": 0, "error": 0, "skipped": len(SKIPPED),
        "xfailed": 0, "xpassed": 0, "total": ITEMS,
    }  # fmt: skip
    assert {(a["suite"], a["app"]) for a in record["apps"]} == APPS
    for app in record["apps"]:
        assert app["status"] == "passed", app
        assert app["installed"] and not app["install_error"], app
        outcomes = {item["id"]: item["outcome"] for item in app["items"]}
        assert {i for i, o in outcomes.items() if o != "passed"} <= SKIPPED, app["items"]
        wanted = SERIALISED.get((app["suite"], app["app"]))
        assert wanted is None or wanted in app["serialised_with"], app["serialised_with"]
    record_ids = [item["id"] for app in record["apps"] for item in app["items"]]
    record_ids += [test["id"] for test in record["tests"]]
    assert sorted(record_ids) == sorted(ids)
    ledger = next(a for a in record["apps"] if a["app"] == "ledger" and a["suite"] == "upgrade")
    assert ledger["upgrade"], "ledger ran as an upgrade (install[from] -> upgrade -> rollback)"

    # junit.xml: one testcase per item, under classname suite::app and the suite's file.
    expected = {
        (f"{a['suite']}::{a['app']}", item["name"], (REPO / a["suite_file"]).resolve())
        for a in record["apps"]
        for item in a["items"]
    }
    cases = list(ElementTree.parse(report / "junit.xml").iter("testcase"))
    suite_cases = [c for c in cases if str(c.get("file")).endswith(".yaml")]
    # junit's file is relative to the rootdir (the repository), the record's absolute
    seen = {
        (c.get("classname"), c.get("name"), (REPO / str(c.get("file"))).resolve())
        for c in suite_cases
    }
    assert len(cases) == ITEMS and len(suite_cases) == len(seen) == ITEMS - 1
    assert seen == expected
    assert not [c for c in cases if c.findall("failure") or c.findall("error")]
    assert len([c for c in cases if c.findall("skipped")]) == len(SKIPPED)


def test_the_harness_sees_every_crd_in_a_charts_crds_folder() -> None:
    """`helm show crds` prints the files of crds/ back to back with no `---` between them;
    read as one document, the last file won and `ready`/`crd-drift` saw one CRD."""
    helm = Helm(tools.require_binaries(["helm"])["helm"])
    text = helm.show_crds(str(FIXTURE_CHARTS / "meter-operator"))
    names = {
        doc["metadata"]["name"]
        for doc in manifests.load_all(text)
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    }
    shipped = {p.name for p in Path(FIXTURE_CHARTS / "meter-operator" / "crds").glob("*.yaml")}
    assert len(shipped) == 2
    assert names == {"meters.repo.helm-harness.io", "meterreports.repo.helm-harness.io"}
