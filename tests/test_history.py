"""The run history (``--history``): SQLite stores (append, migration from schema 1, a newer
schema refused, a file that is no database, a locked one, several processes appending at
once), trends from crafted records (flaky items, regressions, a failure streak), the same
on a real PostgreSQL server started here on 127.0.0.1 (and a URL it refuses), and two real
runs on the session's kwok cluster appending to one history that ``helm-harness history``
then shows, with the second run's alert saying the app is still failing."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.clusters.base import ClusterInfo
from harness.report.history import (
    MIGRATIONS,
    SCHEMA_VERSION,
    HistoryError,
    SqliteStore,
    Store,
    open_store,
    render_text,
    trend_view,
    trends,
)
from harness.report.html import render
from tests.test_notify import WEB, Hook, broken_app, hook, write_suite  # noqa: F401
from tests.test_reports import run

MiB = 1024 * 1024


def record(
    run_id: str,
    minute: int,
    *apps: dict[str, Any],
) -> dict[str, Any]:
    """A results.json record with ``apps`` (see :func:`app`)."""
    failed = sum(1 for a in apps if a["status"] == "failed")
    return {
        "schema": "helm-harness/results/v1",
        "run_id": run_id,
        "started": f"2026-12-01T10:{minute:02d}:00.000Z",
        "finished": f"2026-12-01T10:{minute:02d}:30.000Z",
        "outcomes": {"passed": len(apps) - failed, "failed": failed, "total": len(apps)},
        "cluster": {"provider": "kwok", "name": "hh-test"},
        "apps": list(apps),
    }


def app(
    name: str,
    status: str = "passed",
    *,
    failing: tuple[str, ...] = (),
    ready: float = 5.0,
    memory: float = 100 * MiB,
    version: str = "1.0.0",
    digest: str = "sha256:aa",
) -> dict[str, Any]:
    items = [{"id": f"shop::{name}::install", "outcome": "passed", "message": None}]
    items += [
        {"id": item, "outcome": "failed", "message": f"{item} broke\nmore"} for item in failing
    ]
    return {
        "suite": "shop",
        "app": name,
        "chart": f"charts/{name}",
        "chart_version": version,
        "values_digest": digest,
        "status": status,
        "timings": {"ready": ready},
        "metrics": {"memory_bytes": memory, "time_to_ready_s": ready},
        "items": items,
    }


def appended(store: Store, *records: dict[str, Any]) -> Store:
    for one in records:
        store.append(one)
    return store


# --- SQLite ----------------------------------------------------------------------------------


def test_append_keeps_runs_apps_and_failing_items(tmp_path: Path) -> None:
    store = open_store(tmp_path / "sub" / "history.db")
    store.append(record("r1", 1, app("web"), app("db", "failed", failing=("shop::db::ready",))))
    store.append(record("r2", 2, app("web")), git_sha="abc123")
    runs = store.runs()
    assert [r.run_id for r in runs] == ["r1", "r2"]
    assert (runs[0].passed, runs[0].failed, runs[0].cluster) == (1, 1, "kwok/hh-test")
    assert runs[1].git_sha == "abc123" and runs[0].git_sha is None
    db = next(a for a in runs[0].apps if a.app == "db")
    assert (db.chart, db.chart_version, db.values_digest, db.outcome) == (
        "charts/db",
        "1.0.0",
        "sha256:aa",
        "failed",
    )
    assert db.ready_s == 5.0 and db.memory_bytes == 100 * MiB
    assert db.failures == {"shop::db::ready": "shop::db::ready broke"}  # one line
    assert [a.app for a in store.runs(app="web")[0].apps] == ["web"]
    with sqlite3.connect(tmp_path / "sub" / "history.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_of_schema_1_migrates_forward_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # what a helm-harness of schema 1 wrote, by hand
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        raw.execute("INSERT INTO schema_version VALUES (1)")
        for statement in MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute(
            "INSERT INTO runs VALUES ('old1', 'r0', '2026-11-30T10:00:00.000Z', NULL,"
            " 1, 0, 0, 0, 1, NULL, NULL)"
        )
        raw.execute(
            "INSERT INTO apps VALUES ('old1', 'shop', 'web', 'c', '0.9.0', NULL, 'passed', 4.0)"
        )
    store = open_store(path)
    store.append(record("r1", 1, app("web", "failed", failing=("shop::web::ready",))))
    runs = store.runs()
    assert [r.run_id for r in runs] == ["r0", "r1"]
    assert runs[0].apps[0].memory_bytes is None and runs[0].apps[0].chart_version == "0.9.0"
    assert runs[1].apps[0].failures == {"shop::web::ready": "shop::web::ready broke"}
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchone()[0] == 2


def test_a_store_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_store(path).append(record("r1", 1, app("web")))
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(HistoryError) as caught:
        open_store(path).append(record("r2", 2, app("web")))
    assert str(caught.value) == (
        f"history {path}: written by a newer helm-harness (schema 99; this one knows up to "
        f"{SCHEMA_VERSION}): upgrade helm-harness or give another store"
    )
    with sqlite3.connect(path) as raw:  # nothing written to it
        assert raw.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_a_text_file_is_no_history(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(HistoryError, match=r"not a SQLite database") as caught:
        open_store(path).append(record("r1", 1, app("web")))
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert path.read_text().startswith("these are my notes")


def test_a_sqlite_database_of_something_else_is_no_history(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(HistoryError, match="a SQLite database, but no helm-harness history"):
        open_store(path).runs()


def test_a_store_locked_past_the_timeout_says_so(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    open_store(path).append(record("r1", 1, app("web")))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError) as caught:
            SqliteStore(path, timeout=0.2).append(record("r2", 2, app("web")))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(caught.value) == f"history {path}: locked by another writer for more than 0.2s"
    assert len(open_store(path).runs()) == 1


WRITER = """
import sys
from harness.report.history import open_store
store = open_store(sys.argv[1])
for n in range(int(sys.argv[3])):
    store.append({"run_id": f"{sys.argv[2]}-{n}", "started": "2026-12-01T10:00:00Z",
                  "apps": [{"suite": "s", "app": "a", "status": "passed", "items": []}]})
"""


def concurrent_writers(spec: str, processes: int = 4, each: int = 15) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, spec, f"w{k}", str(each)])
        for k in range(processes)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * processes
    runs = open_store(spec).runs()
    assert len(runs) == processes * each
    assert {r.run_id for r in runs} == {f"w{k}-{n}" for k in range(processes) for n in range(each)}
    assert all(len(r.apps) == 1 for r in runs)


def test_concurrent_sqlite_writers_lose_no_record(tmp_path: Path) -> None:
    concurrent_writers(str(tmp_path / "shared.db"))


# --- trends ----------------------------------------------------------------------------------


def crafted(store: Store) -> Store:
    """Six runs: web flaky on one version, db failing since r4, api slower and bigger last."""
    ready = "shop::web::ready"
    return appended(
        store,
        record("r1", 1, app("web"), app("db"), app("api", ready=10)),
        record("r2", 2, app("web", "failed", failing=(ready,)), app("db"), app("api", ready=12)),
        record("r3", 3, app("web"), app("db"), app("api", ready=11)),
        record(
            "r4",
            4,
            app("web", version="2.0.0"),
            app("db", "failed", failing=("shop::db::ready",)),
            app("api", ready=10),
        ),
        record(
            "r5",
            5,
            app("web", "failed", failing=(ready,)),
            app("db", "failed", failing=("shop::db::ready",)),
            app("api", ready=11, memory=100 * MiB),
        ),
        record(
            "r6",
            6,
            app("web", "failed", failing=("shop::web::http",), version="3.0.0"),
            app("db", "failed", failing=("shop::db::ready",)),
            app("api", ready=30, memory=400 * MiB),
        ),
    )


def check_trends(store: Store) -> None:
    found = {t.app: t for t in trends(store.runs(), last=10)}
    web, db, api = found["web"], found["db"], found["api"]
    assert web.marks == "✔✘✔✔✘✘" and db.marks == "✔✔✔✘✘✘" and api.marks == "✔✔✔✔✔✔"
    # web's ready failed and passed on 1.0.0/aa; its http failed on 3.0.0, never run before
    assert web.flaky == ["shop::web::ready"]
    assert web.streak == 2 and web.streak_from == "r5" and web.status == "still failing"
    assert db.flaky == [] and db.streak == 3 and db.streak_from == "r4"
    assert db.status == "still failing"
    assert [(r.measure, r.value, r.median) for r in api.regressions] == [
        ("time_to_ready_s", 30.0, 11.0),
        ("memory_bytes", 400.0 * MiB, 100.0 * MiB),
    ]
    assert api.status is None and api.streak_from is None
    assert web.regressions == [] and db.regressions == []
    # Over the last 2 runs only: db's streak counts those, web's ready is not seen flaky.
    last2 = {t.app: t for t in trends(store.runs(), last=2)}
    assert last2["db"].marks == "✘✘" and last2["db"].streak_from == "r5"
    assert last2["web"].flaky == []
    text = render_text(trends(store.runs(), last=10))
    assert "shop/db  ✔✔✔✘✘✘  (6 runs: r1, r2, r3, r4, r5, r6)" in text
    assert "  failing for 3 runs, since run r4" in text
    assert "  flaky: shop::web::ready" in text
    assert "  regression: time to ready 30.0s (median 11.0s)" in text
    assert "  regression: memory 400.0 MiB (median 100.0 MiB)" in text


def test_trends_find_flaky_items_regressions_and_streaks(tmp_path: Path) -> None:
    check_trends(crafted(open_store(tmp_path / "h.db")))


def test_report_html_shows_a_trend_strip_per_app_with_its_marks(tmp_path: Path) -> None:
    store = crafted(open_store(tmp_path / "h.db"))
    page = render(record("r6", 6, app("web")), trends=trend_view(trends(store.runs())))
    rows = re.findall(r'<tr class="trend" data-app="([^"]+)">(.*?)</tr>', page, re.S)
    assert [label for label, _row in rows] == ["shop::web", "shop::db", "shop::api"]
    web, db, api = (row for _label, row in rows)
    assert web.count('<rect x="') == 6 * 3  # outcomes, time to ready, memory
    assert "<title>r2: failed</title>" in web and "flaky: shop::web::ready" in web
    assert "failing since run r4" in db and "regression" not in db
    assert "regression: time to ready 30.0s (median 11.0s)" in api
    # the latest bars of api are the regression's colour; its first ones are not
    assert '<rect x="60" y="2" width="10" height="22" fill="#bf8700"><title>r6: 30.0s' in api
    assert '<rect x="0" y="17" width="10" height="7" fill="#0969da"><title>r1: 10.0s' in api
    assert "<script" not in page
    assert "Trends" not in render(record("r6", 6, app("web")))  # no history: no strip


def test_a_first_failure_is_new_and_a_flaky_one_says_flaky(tmp_path: Path) -> None:
    store = appended(
        open_store(tmp_path / "h.db"),
        record("r1", 1, app("web"), app("db")),
        record("r2", 2, app("web", "failed", failing=("shop::web::ready",)), app("db")),
    )
    assert {t.app: t.status for t in trends(store.runs())} == {"web": "new", "db": None}
    store.append(record("r3", 3, app("web"), app("db")))
    store.append(record("r4", 4, app("web", "failed", failing=("shop::web::ready",)), app("db")))
    assert {t.app: t.status for t in trends(store.runs())}["web"] == "flaky"


def test_small_changes_are_no_regression(tmp_path: Path) -> None:
    # +100% but only 1 s more; +60% but only 6 MiB more: under the thresholds
    store = appended(
        open_store(tmp_path / "h.db"),
        record("r1", 1, app("web", ready=1.0, memory=10 * MiB)),
        record("r2", 2, app("web", ready=2.0, memory=16 * MiB)),
    )
    assert trends(store.runs())[0].regressions == []


# --- the command -----------------------------------------------------------------------------


def test_the_history_command_prints_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.db"
    crafted(open_store(path))
    assert main(["history", "--history", str(path), "--app", "db", "--last", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "shop/db  ✘✘✘  (3 runs: r4, r5, r6)" and "web" not in out
    assert main(["history", "--history", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [a["app"] for a in data["apps"]] == ["web", "db", "api"]
    assert data["apps"][1]["marks"] == "✔✔✔✘✘✘" and data["apps"][1]["streak_from"] == "r4"


@pytest.mark.parametrize("kind", ["missing", "text", "none"])
def test_the_history_command_exits_4_with_one_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELM_HARNESS_HISTORY", raising=False)
    path = tmp_path / "h.db"
    if kind == "text":
        path.write_text("hello\n" * 200)
    args = ["history"] if kind == "none" else ["history", "--history", str(path)]
    assert main(args) == 4
    err = capsys.readouterr().err
    assert err.startswith("helm-harness: error: history ") and err.count("\n") == 1
    assert not path.exists() if kind == "missing" else True


# --- PostgreSQL ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_binary(name: str) -> str | None:
    """On PATH, else where Debian's postgresql package puts it (not on PATH)."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    return found


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with trust auth for user ``tester``; its URL."""
    initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed (scripts/setup does it)")
    folder = Path(tempfile.mkdtemp(prefix="hh-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        os.chown(folder, 65534, 65534)
        folder.chmod(0o755)
        run_as = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    data, port = folder / "data", _free_port()
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-U", "tester", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder}"
    start = [*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w"]
    subprocess.run([*start, "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://tester@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """The server, its history tables dropped after each test."""
    import psycopg

    yield postgres
    with psycopg.connect(postgres, autocommit=True) as db:
        for table in ("schema_version", "runs", "apps", "failures"):
            db.execute(f"DROP TABLE IF EXISTS {table}")


def test_postgres_append_migrate_and_trends(pg_url: str) -> None:
    import psycopg

    store = open_store(pg_url)
    check_trends(crafted(store))
    runs = store.runs()
    assert len(runs) == 6 and runs[0].cluster == "kwok/hh-test"
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(HistoryError, match=r"schema 99; this one knows up to 2"):
        store.runs()


def test_concurrent_postgres_writers_lose_no_record(pg_url: str) -> None:
    concurrent_writers(pg_url, processes=4, each=10)


def test_a_postgres_url_that_refuses_is_one_line_without_credentials() -> None:
    url = f"postgresql://tester:SECRET-PW@127.0.0.1:{_free_port()}/postgres"
    with pytest.raises(HistoryError) as caught:
        open_store(url).append(record("r1", 1, app("web")))
    message = str(caught.value)
    assert message.startswith("history postgresql://127.0.0.1:") and "cannot connect" in message
    assert "SECRET" not in message and "\n" not in message


def test_a_postgres_user_it_does_not_know_is_refused(postgres: str) -> None:
    url = postgres.replace("tester@", "nobody-here@")
    with pytest.raises(HistoryError, match="cannot connect: .*nobody-here"):
        open_store(url).runs()


# --- real runs -------------------------------------------------------------------------------


@pytest.mark.cluster
def test_two_runs_append_to_one_history_and_the_second_alert_says_still_failing(
    pytester: pytest.Pytester,
    harness_cluster: ClusterInfo,
    hook: Callable[..., Hook],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = hook()
    web = f"\n  - name: web\n    chart: {WEB}\n    checks: [{{ready: {{}}}}]\n"
    write_suite(pytester.path, web + broken_app())
    history = pytester.path / "history.db"
    for n in (1, 2):
        result = run(
            pytester,
            harness_cluster,
            f"--report-dir=out{n}",
            f"--history={history}",
            f"--notify={target.url}",
        )
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines([f"helm-harness: run appended to the history {history}"])
    first, second = (
        json.loads((pytester.path / f"out{n}" / "results.json").read_text())["run_id"]
        for n in (1, 2)
    )
    statuses = [
        {a["app"]: a["history"] for a in message.json["failed_apps"]} for message in target.received
    ]
    assert statuses == [{"broken": "new"}, {"broken": "still failing"}]
    capsys.readouterr()
    assert main(["history", "--history", str(history)]) == 0
    out = capsys.readouterr().out
    assert f"shop/web  ✔✔  (2 runs: {first}, {second})" in out
    assert f"shop/broken  ✘✘  (2 runs: {first}, {second})" in out
    assert f"  failing for 2 runs, since run {first}" in out
    page = (pytester.path / "out2" / "report.html").read_text()
    assert '<tr class="trend" data-app="shop::broken">' in page
    assert f"failing since run {first}" in page
    first_page = (pytester.path / "out1" / "report.html").read_text()
    assert re.search(r'data-app="shop::broken">.*?new failure.*?</tr>', first_page, re.S)


@pytest.mark.cluster
def test_a_history_that_cannot_be_written_leaves_the_run_and_reports_alone(
    pytester: pytest.Pytester, harness_cluster: ClusterInfo
) -> None:
    write_suite(
        pytester.path, f"\n  - name: web\n    chart: {WEB}\n    checks: [{{ready: {{}}}}]\n"
    )
    bad = pytester.path / "notes.txt"
    bad.write_text("not a database\n" * 200)
    result = run(pytester, harness_cluster, "--report-dir=out", f"--history={bad}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"helm-harness: warning: history {bad}: not a SQLite database*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert json.loads((pytester.path / "out" / "results.json").read_text())["complete"] is True
