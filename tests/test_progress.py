"""The progress of ``helm-harness run`` (harness/plugin/progress.py): plain lines in logs
(cluster start, each finished item, failures with their cause, skips summarised once, no
ANSI), and on a terminal a live region naming what each worker runs now, replaced as items
finish, one row per xdist worker. Runs of Python tests and of real suites on the session's
kwok cluster."""

from __future__ import annotations

import io
import re
import threading

import pytest

from harness.clusters.base import ClusterInfo
from harness.plugin.progress import Progress
from tests.conftest import FIXTURE_CHARTS
from tests.test_run_cli import run_command, suite

WEB = FIXTURE_CHARTS / "web"
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
REDRAW = re.compile(r"\r(?:\x1b\[2K|\x1b\[1A)+")  # rich's Live going back over its region
PYTHON_TESTS = """
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.mark.parametrize("n", [1, 2, 3])
def test_not_today(n):
    pytest.skip("not today")

def test_other_skip():
    pytest.skip("elsewhere")
"""


def regions(raw: str) -> list[list[str]]:
    """What a terminal showed of the live region after each redraw: its rows (a worker's
    ``<spinner> [gwN] <what> ... <phase> <timer>``), in order."""
    shown = []
    for piece in REDRAW.split(raw):
        lines = CONTROL.sub("", piece).splitlines()
        shown.append([line for line in lines if " ... " in line and line[:1] not in "[ "])
    return shown


def rich_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if type(t).__module__.startswith("rich")]


def run_in_process(
    pytester: pytest.Pytester, *args: str, terminal: bool, **kwargs: object
) -> tuple[pytest.RunResult, str]:
    stream = io.StringIO()
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", *args, plugins=[Progress(stream, terminal=terminal)], **kwargs
    )
    return result, stream.getvalue()


def test_plain_lines_give_causes_and_summarise_skips_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=PYTHON_TESTS)
    result, out = run_in_process(pytester, terminal=False)
    result.assert_outcomes(passed=1, failed=1, skipped=4)
    assert "\x1b" not in out
    assert "collected 6 items, 0 apps" in out
    assert re.search(r"\] test_mixed\.py::test_passes ok \(\d+\.\ds\)", out)
    assert re.search(
        r"test_mixed\.py::test_fails FAILED \(\d+\.\ds\): AssertionError: one is not two", out
    )
    assert out.count("skipped 4 items:") == 1
    assert out.count("3 items: not today") == 1 and out.count("1 item: elsewhere") == 1
    assert "test_not_today" not in out  # no line per skip
    # pytest's own per-item output (file name, dots, percentages) is left out; its summary stays
    assert not re.search(r"^test_mixed\.py [.Fs]", result.stdout.str(), re.M)
    assert "[100%]" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*FAILED test_mixed.py::test_fails*", "*1 failed, 1 passed*"])


def test_verbose_keeps_pytests_own_lines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=PYTHON_TESTS)
    result, out = run_in_process(pytester, "-v", terminal=True)
    result.stdout.fnmatch_lines(["*test_mixed.py::test_passes PASSED*"])
    assert "test_mixed.py::test_fails FAILED" in out
    assert "\x1b" not in out and not rich_threads()  # -v: lines, never a live region


@pytest.mark.parametrize(
    ("env", "colored"),
    [({"FORCE_COLOR": "1"}, True), ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False), ({}, False)],
    ids=["force-color", "no-color-wins", "not-a-terminal"],
)
def test_colours_follow_pytests_terminal_writer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], colored: bool
) -> None:
    for name in ("FORCE_COLOR", "NO_COLOR", "PY_COLORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_mixed=PYTHON_TESTS)
    _, out = run_in_process(pytester, terminal=False)
    assert ("\x1b[" in out) is colored
    _, out = run_in_process(pytester, "--color=yes", terminal=False)
    assert "\x1b[" in out  # --color=yes wins over NO_COLOR, as for pytest


def test_live_region_times_the_running_test_and_stops_with_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    pytester.makepyfile(
        test_slow="import time\n\ndef test_slow_one():\n    time.sleep(0.8)\n\n"
        "def test_after():\n    pass\n"
    )
    result, out = run_in_process(pytester, "--color=no", terminal=True)
    result.assert_outcomes(passed=2)
    shown = regions(out)
    timers = [
        float(m.group(1))
        for rows in shown
        for row in rows
        if (m := re.search(r"test_slow_one \.\.\. running (\d+\.\d)s", row))
    ]
    assert max(timers) >= 0.5, timers  # the timer ran while the test did
    names = [" ".join(rows) for rows in shown]
    after = next(i for i, rows in enumerate(names) if "test_after ..." in rows)
    assert "test_slow_one" not in " ".join(names[after:])
    assert not shown[-1]  # the region is cleared at the end
    assert not re.search(r"\x1b\[[0-9;]*m", out)  # --color=no: cursor moves only
    assert not rich_threads()


def test_ctrl_c_stops_the_live_region(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    # a second before Ctrl-C: the region redraws (a few times a second) with the test in it
    pytester.makepyfile(
        test_stop="import time\n\n\ndef test_stopped():\n"
        "    time.sleep(1)\n    raise KeyboardInterrupt\n"
    )
    result, out = run_in_process(pytester, terminal=True, no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert any("test_stop.py::test_stopped ..." in row for rows in regions(out) for row in rows)
    assert not regions(out)[-1] and not rich_threads()


def test_plain_lines_of_a_run_on_the_cluster(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    suite(
        pytester.mkdir("suites"),
        "shop",
        f"""\
        - {{name: web, chart: {WEB}, checks: [{{ready: {{}}}}]}}
        - name: bad
          chart: {WEB}
          set: {{replicaCount: not-a-number}}
          checks: [{{ready: {{}}}}, {{helmTest: {{}}}}]
        """,
    )
    code, out = run_command(pytester.path, harness_cluster, tty=False)
    assert code == 1, out
    assert "\x1b" not in out
    assert f"connecting to the cluster in {harness_cluster.kubeconfig} ..." in out
    assert re.search(r"using existing cluster \S+ \(\d+\.\ds\)", out)
    assert re.search(r"shop::web: install ok \(\d+\.\ds\)", out)
    assert re.search(r"shop::web: ready ok \(\d+\.\ds\)", out)
    failed = [line for line in out.splitlines() if "shop::bad: install FAILED" in line]
    assert len(failed) == 1, out
    # Helm's "1 error occurred:" comes with the error it announces
    assert "INSTALLATION FAILED" in failed[0] and "cannot unmarshal" in failed[0]
    assert out.count("skipped 2 items:") == 1
    assert out.count("2 items: bad did not install") == 1
    assert "shop::bad: ready" not in out  # skips are counted, not a line each
    assert re.search(r"app web: healthy \(suite shop, 2 items, \d+\.\ds\)", out)
    assert "app bad: 1 of 3 not ok, 2 skipped (suite shop" in out
    assert re.search(r"cleaned up \(\d+\.\ds\)", out)
    assert not re.search(r"^suites/shop\.suite\.yaml [.FsE]", out, re.M)


def test_live_region_names_the_running_app_until_it_finishes(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    suite(
        pytester.path,
        "shop",
        f"""\
        - {{name: first, chart: {WEB}, checks: [{{ready: {{}}}}]}}
        - {{name: second, chart: {WEB}, checks: [{{ready: {{}}}}]}}
        """,
    )
    result, out = run_in_process(
        pytester,
        f"--kubeconfig={harness_cluster.kubeconfig}",
        "--max-parallel=1",
        terminal=True,
    )
    result.assert_outcomes(passed=4)
    shown = regions(out)
    names = [" ".join(rows) for rows in shown]
    assert any("shop::first: install ... installing" in rows for rows in names)
    assert any("shop::first: ready ... waiting for ready" in rows for rows in names)
    second = next(i for i, rows in enumerate(names) if "shop::second:" in rows)
    assert "shop::first" not in " ".join(names[second:])  # replaced once it finished
    assert re.search(r"shop::first: install ok \(\d+\.\ds\)", out)
    assert not shown[-1]
    assert not rich_threads()
    assert "app first: healthy" in out and "app second: healthy" in out


# Each app's python check waits until the other app's has started: both are running at once.
MEET = """
import pathlib
import time


def meet(app):
    here = pathlib.Path(__file__).parent
    (here / f"{app.app.name}.here").touch()
    other = here / ("b.here" if app.app.name == "a" else "a.here")
    deadline = time.monotonic() + 60
    while not other.exists():
        assert time.monotonic() < deadline, "the other app's check never started"
        time.sleep(0.1)
"""


def test_two_workers_each_show_their_app(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    pytester.makepyfile(meet=MEET)
    check = "[{python: {call: 'meet:meet'}}]"
    suite(
        pytester.path,
        "pair",
        f"""\
        - {{name: a, chart: {WEB}, checks: {check}}}
        - {{name: b, chart: {WEB}, checks: {check}}}
        """,
    )
    result, out = run_in_process(
        pytester, f"--kubeconfig={harness_cluster.kubeconfig}", "-n", "2", terminal=True
    )
    result.assert_outcomes(passed=4)
    assert re.search(r"using existing cluster \S+ \(\d+\.\ds\)", CONTROL.sub("", out))
    both = [
        rows
        for rows in regions(out)
        if {row.split()[1] for row in rows} == {"gw0", "gw1"}
        and any("pair::a: python" in row for row in rows)
        and any("pair::b: python" in row for row in rows)
    ]
    assert both, regions(out)
    assert not rich_threads()
