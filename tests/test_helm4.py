"""The smoke run with the other Helm major (SPEC: the Helm-facing tests run with Helm 3,
a smoke run with Helm 4): example suites and an upgrade run, with --helm pointing at the
Helm 4 build (``helm-harness tools install --helm4``, which scripts/setup runs)."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from harness.clusters.base import ClusterInfo
from harness.tools import bin_dir
from tests.conftest import FIXTURE_CHARTS, REPO

HELM4 = bin_dir() / "helm4"


@pytest.mark.skipif(
    not HELM4.is_file(), reason="helm4 not built (helm-harness tools install --helm4)"
)
def test_suites_and_an_upgrade_run_pass_with_helm_4(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    suites = pytester.path / "suites"
    suites.mkdir()
    for name in ("web", "hooks", "crds"):
        text = (REPO / "suites" / f"{name}.suite.yaml").read_text()
        (suites / f"{name}.suite.yaml").write_text(
            text.replace("../fixtures", str(REPO / "fixtures"))
        )
    versions = FIXTURE_CHARTS / "versions"
    (suites / "upgrade.suite.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: helm-harness/v1
            kind: Suite
            defaults: {{upgrade: true}}
            apps:
              - name: shop
                chart: {versions / "shop-0.2.0"}
                upgrade: {{from: {{chart: {versions / "shop-0.1.0"}}}}}
                checks: [{{ready: {{}}}}]
            """
        )
    )
    result = pytester.runpytest_subprocess(
        f"--kubeconfig={harness_cluster.kubeconfig}",
        f"--helm={HELM4}",
        "-p",
        "no:cacheprovider",
        "-rs",
    )
    result.assert_outcomes(passed=27, skipped=1)  # the skip: http on kwok, nothing serves it
    assert shutil.which(str(HELM4))
