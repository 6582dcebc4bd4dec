"""``helm-harness lint [PATH...]``: only the lint items of the suites (``--lint-only``:
``helm lint`` and a server-side dry-run of each app's chart, :mod:`harness.deploy.lint`),
one line per problem, exit code 0 or 1 as ``run`` gives it.

Lint needs an API server and nothing else: without ``--cluster`` or ``--kubeconfig`` on
its command line it uses a kwok cluster (a real API server, no containers: seconds to
start, no Docker), whatever the ini file says for runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

LINT_HELP = """usage: helm-harness lint [PATH...] [pytest and helm-harness options]

Lints each app of the suite files under PATH (default: ./suites) without installing it:
`helm lint` of its chart with its values, then every object the chart renders (crds/
included) sent to the API server as a server-side dry-run apply with strict field
validation; custom resources whose CRD the chart brings are checked against that CRD's
schema. Prints one line per problem and exits 1 when there is any (0 when none, 4 on a
usage error). The cluster: --cluster/--kubeconfig as for `helm-harness run`, else kwok.

  helm-harness lint                                # ./suites on a kwok cluster it starts
  helm-harness lint suites/web.suite.yaml --kubeconfig ~/.kube/config --context dev
"""

LINT_ONLY = "--lint-only"
CLUSTER_FLAGS = ("--cluster", "--kubeconfig")


def lint_args(args: Sequence[str], pytest_args: Callable[[Sequence[str]], list[str]]) -> list[str]:
    """The pytest command line of ``helm-harness lint ARGS``, from ``run``'s
    (``pytest_args``: :func:`harness.cli.main.pytest_args`)."""
    argv = pytest_args(args)
    chosen = any(arg.split("=", 1)[0] in CLUSTER_FLAGS for arg in argv)
    extra = [] if chosen else ["--cluster=kwok"]
    quiet = ["-qq", "--tb=no", "--no-header", "-rN", "-o", "console_output_style=classic"]
    return [*argv, *extra, LINT_ONLY, *quiet]


class LintPrinter:
    """A pytest plugin: each lint item's outcome as lines, as the items end."""

    def __init__(self) -> None:
        self.apps = 0
        self.problems = 0

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: Any, config: Any) -> Any:
        """No progress letters: they would run into the lines printed here."""
        status = yield
        return (status[0], "", "") if status else status

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when != "call" or not report.nodeid.endswith("::lint"):
            return
        label = report.nodeid.removesuffix("::lint")
        props = dict(report.user_properties)
        problems = [line for line in str(props.get("lint_problems", "")).splitlines() if line]
        self.apps += 1
        if report.passed:
            checked = int(props.get("lint_checked", 0))
            print(f"ok  {label} ({checked} object{'' if checked == 1 else 's'} validated)")
        elif hasattr(report, "wasxfail"):
            print(f"xfail  {label}: {report.wasxfail}")
        else:
            self.problems += len(problems)
        for line in problems:
            print(f"{label}: {line}")
        for note in str(props.get("lint_notes", "")).splitlines():
            print(f"  note: {note}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(
            f"helm-harness lint: {self.apps} app(s), {self.problems} problem(s)"
        )


def lint(args: Sequence[str], pytest_args: Callable[[Sequence[str]], list[str]]) -> int:
    from harness.cli.changed import NothingToRun

    if "-h" in args or "--help" in args:
        print(LINT_HELP)
        return 0
    try:
        argv = lint_args(args, pytest_args)
    except NothingToRun as exc:
        print(exc)
        return 0
    return int(pytest.main(argv, plugins=[LintPrinter()]))
