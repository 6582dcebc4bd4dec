"""The run history (``--history FILE|URL``): every run's record appended to a store, and the
trends read back from it (``helm-harness history``, the alerts, report.html).

A store is a SQLite file (the default: embedded, stdlib ``sqlite3``) or a PostgreSQL
database given as a ``postgresql://`` URL (through psycopg), for a team that shares one.
Both hold the same tables (:data:`MIGRATIONS`); ``schema_version`` says which migrations a
store has had, they are applied forward when it is opened, and a store from a newer schema
is refused. One run is one transaction, taken under a lock (SQLite: ``BEGIN IMMEDIATE``
with WAL and a busy timeout; PostgreSQL: an advisory transaction lock around the schema
check), so concurrent writers (shards, parallel processes) lose no record.

Trends (:func:`trends`) per app over its last N runs: the outcomes, flaky items (both
outcomes on the same chart version and values digest), regressions of time-to-ready and
memory against the median of the earlier runs, and the first run of a current failure
streak. Every problem with a store is a :class:`HistoryError` with a one-line message.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.errors import HarnessError
from harness.redact import url_origin
from harness.report.html import _list, _mapping
from harness.report.notify import one_line

SCHEMA_VERSION = 2
BUSY_TIMEOUT = 10.0  # seconds a SQLite writer waits for another before giving up
CONNECT_TIMEOUT = 5  # seconds to reach a PostgreSQL server
DEFAULT_LAST = 10
# A regression: above the median of the earlier runs by this factor AND this much.
SLOWER_FACTOR = 1.5
SLOWER_BY_S = 2.0
MEMORY_FACTOR = 1.5
MEMORY_BY_BYTES = 16 * 1024 * 1024
_ADVISORY_LOCK = 0x68680001  # PostgreSQL: one writer at a time checks the schema
MARKS = {"passed": "✔", "failed": "✘", "skipped": "–"}

# Migration N brings a store from schema N-1 to N; a new one is appended, never edited.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE runs (record_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,"
        " started TEXT NOT NULL, finished TEXT, passed INTEGER, failed INTEGER,"
        " error INTEGER, skipped INTEGER, total INTEGER, cluster TEXT, git_sha TEXT)",
        "CREATE TABLE apps (record_id TEXT NOT NULL, suite TEXT NOT NULL, app TEXT NOT NULL,"
        " chart TEXT, chart_version TEXT, values_digest TEXT, outcome TEXT NOT NULL,"
        " ready_s DOUBLE PRECISION)",
        "CREATE INDEX apps_by_app ON apps (suite, app)",
    ),
    (
        "ALTER TABLE apps ADD COLUMN memory_bytes DOUBLE PRECISION",
        "CREATE TABLE failures (record_id TEXT NOT NULL, suite TEXT NOT NULL,"
        " app TEXT NOT NULL, item TEXT NOT NULL, cause TEXT)",
    ),
)


class HistoryError(HarnessError):
    """The history store could not be opened, read or written: where and why, one line."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"history {where}: {reason}")


# --- stores ----------------------------------------------------------------------------------


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class Store:
    """One history store: :meth:`append` a run record, :meth:`runs` to read them back."""

    where: str

    def _transaction(self) -> Any:  # a context manager giving a Cursor
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def _version(self, cur: Cursor) -> int:
        raise NotImplementedError

    def _migrate(self, cur: Cursor) -> None:
        """Bring the store to SCHEMA_VERSION (inside the caller's transaction)."""
        version = self._version(cur)
        if version > SCHEMA_VERSION:
            raise HistoryError(
                self.where,
                f"written by a newer helm-harness (schema {version}; this one knows up to "
                f"{SCHEMA_VERSION}): upgrade helm-harness or give another store",
            )
        if version == 0:
            cur.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            cur.execute("INSERT INTO schema_version (version) VALUES (0)")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                cur.execute(statement)
        if version < SCHEMA_VERSION:
            cur.execute(self._sql("UPDATE schema_version SET version = ?"), (SCHEMA_VERSION,))

    def append(self, results: Mapping[str, Any], *, git_sha: str | None = None) -> str:
        """Add one run record (results.json's content) in one transaction; its record id."""
        record_id = uuid.uuid4().hex
        run, apps, failures = rows_of(results, record_id, git_sha)
        with self._transaction() as cur:
            self._migrate(cur)
            cur.execute(self._sql(f"INSERT INTO runs VALUES ({_marks(run)})"), run)
            for row in apps:
                cur.execute(
                    self._sql(
                        "INSERT INTO apps (record_id, suite, app, chart, chart_version,"
                        " values_digest, outcome, ready_s, memory_bytes)"
                        f" VALUES ({_marks(row)})"
                    ),
                    row,
                )
            for row in failures:
                cur.execute(self._sql(f"INSERT INTO failures VALUES ({_marks(row)})"), row)
        return record_id

    def runs(self, *, app: str | None = None) -> list[Run]:
        """Every run of the store, oldest first, with its apps (those named ``app`` only)."""
        with self._transaction() as cur:
            self._migrate(cur)
            cur.execute(
                "SELECT record_id, run_id, started, finished, passed, failed, error, skipped,"
                " total, cluster, git_sha FROM runs ORDER BY started, record_id"
            )
            runs = {row[0]: Run(*row) for row in cur.fetchall()}
            where, params = ("WHERE app = ?", (app,)) if app else ("", ())
            cur.execute(
                self._sql(
                    "SELECT record_id, suite, app, chart, chart_version, values_digest,"
                    f" outcome, ready_s, memory_bytes FROM apps {where}"
                ),
                params,
            )
            for row in cur.fetchall():
                if row[0] in runs:
                    runs[row[0]].apps.append(AppRow(*row[1:]))
            cur.execute(
                self._sql(f"SELECT record_id, suite, app, item, cause FROM failures {where}"),
                params,
            )
            for record_id, suite, name, item, cause in cur.fetchall():
                for row in runs[record_id].apps if record_id in runs else ():
                    if (row.suite, row.app) == (suite, name):
                        row.failures[item] = cause
        return list(runs.values())


def _marks(row: Sequence[Any]) -> str:
    return ", ".join("?" for _ in row)


class SqliteStore(Store):
    def __init__(self, path: Path, *, timeout: float = BUSY_TIMEOUT) -> None:
        self.path = path
        self.where = str(path)
        self.timeout = timeout

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(self.where, f"cannot open it: {exc}") from exc
        try:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield db.cursor()
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise self._error(exc) from exc
            except BaseException:
                db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        finally:
            db.close()

    def _error(self, exc: sqlite3.Error) -> HistoryError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            reason = f"locked by another writer for more than {self.timeout:g}s"
        elif isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
            reason = "not a SQLite database (give a history file helm-harness wrote, or a new path)"
        else:
            reason = one_line(text)
        return HistoryError(self.where, reason)

    def _version(self, cur: Cursor) -> int:
        cur.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
        if cur.fetchone() is None:
            cur.execute("SELECT count(*) FROM sqlite_master")
            if cur.fetchone()[0]:
                raise HistoryError(self.where, "a SQLite database, but no helm-harness history")
            return 0
        cur.execute("SELECT version FROM schema_version")
        row = cur.fetchone()
        return int(row[0]) if row else 0


class PostgresStore(Store):
    def __init__(self, url: str) -> None:
        self.url = url
        self.where = url_origin(url)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        import psycopg

        try:
            db = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise HistoryError(self.where, f"cannot connect: {one_line(exc)}") from exc
        try:
            with db.transaction(), db.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
                yield cur
        except psycopg.Error as exc:
            raise HistoryError(self.where, one_line(exc)) from exc
        finally:
            db.close()

    def _version(self, cur: Cursor) -> int:
        cur.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("SELECT version FROM schema_version")
        row = cur.fetchone()
        return int(row[0]) if row else 0


def open_store(spec: str | os.PathLike[str]) -> Store:
    """The store ``spec`` names: a ``postgresql://`` (or ``postgres://``) URL, else a file."""
    text = str(spec)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise HistoryError(url_origin(text), "a PostgreSQL store needs psycopg") from exc
        return PostgresStore(text)
    path = Path(text).expanduser()
    if path.is_dir():
        raise HistoryError(text, "is a folder: give a file")
    return SqliteStore(path)


# --- rows ------------------------------------------------------------------------------------


@dataclass
class AppRow:
    suite: str
    app: str
    chart: str | None
    chart_version: str | None
    values_digest: str | None
    outcome: str
    ready_s: float | None
    memory_bytes: float | None
    failures: dict[str, str | None] = field(default_factory=dict)  # item id -> cause


@dataclass
class Run:
    record_id: str
    run_id: str
    started: str
    finished: str | None
    passed: int | None
    failed: int | None
    error: int | None
    skipped: int | None
    total: int | None
    cluster: str | None
    git_sha: str | None
    apps: list[AppRow] = field(default_factory=list)


def rows_of(
    results: Mapping[str, Any], record_id: str, git_sha: str | None
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A run record's rows: the run's, its apps' and their failing items'."""
    counts = _mapping(results.get("outcomes"))
    cluster = _mapping(results.get("cluster"))
    shown_cluster = "/".join(str(cluster[k]) for k in ("provider", "name") if cluster.get(k))
    run = (
        record_id,
        str(results.get("run_id") or ""),
        str(results.get("started") or ""),
        results.get("finished"),
        *(int(counts.get(key) or 0) for key in ("passed", "failed", "error", "skipped", "total")),
        shown_cluster or None,
        git_sha,
    )
    apps, failures = [], []
    for app in map(_mapping, _list(results.get("apps"))):
        suite, name = str(app.get("suite")), str(app.get("app"))
        metrics = _mapping(app.get("metrics"))
        ready = metrics.get("time_to_ready_s")
        if ready is None:
            ready = _mapping(app.get("timings")).get("ready")
        apps.append(
            (
                record_id,
                suite,
                name,
                app.get("chart"),
                app.get("chart_version"),
                app.get("values_digest"),
                str(app.get("status") or "passed"),
                _number(ready),
                _number(metrics.get("memory_bytes")),
            )
        )
        for item in map(_mapping, _list(app.get("items"))):
            if item.get("outcome") in ("failed", "error"):
                cause = one_line(item.get("message") or item.get("outcome"))
                failures.append((record_id, suite, name, str(item.get("id")), cause))
        if app.get("status") == "failed" and not any(
            item.get("outcome") in ("failed", "error")
            for item in map(_mapping, _list(app.get("items")))
        ):
            cause = one_line(app.get("install_error") or "failed")
            failures.append((record_id, suite, name, f"{suite}::{name}", cause))
    return run, apps, failures


def git_sha(root: Path | None = None) -> str | None:
    """The commit the run tested: from CI's environment, else ``git rev-parse HEAD``."""
    for key in ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT"):
        if os.environ.get(key):
            return os.environ[key]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None


# --- trends ----------------------------------------------------------------------------------


@dataclass
class Regression:
    measure: str  # "time_to_ready_s" or "memory_bytes"
    value: float
    median: float


@dataclass
class AppTrend:
    suite: str
    app: str
    runs: list[str]  # run ids, oldest first
    outcomes: list[str]
    flaky: list[str]  # item ids with both outcomes on one chart version and values digest
    regressions: list[Regression]
    streak_from: str | None  # the first run of the current failure streak
    streak: int  # how many runs the current failure streak has lasted
    ready_s: list[float | None]
    memory_bytes: list[float | None]
    status: str | None  # for a failing app: "new", "still failing" or "flaky"

    @property
    def marks(self) -> str:
        return "".join(MARKS.get(outcome, "?") for outcome in self.outcomes)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["marks"] = self.marks
        return data


def trends(
    runs: Sequence[Run], *, last: int = DEFAULT_LAST, app: str | None = None
) -> list[AppTrend]:
    """Per app (in the order of its first appearance): its trend over its last ``last`` runs."""
    series: dict[tuple[str, str], list[tuple[Run, AppRow]]] = {}
    for run in runs:
        for row in run.apps:
            if app is None or row.app == app:
                series.setdefault((row.suite, row.app), []).append((run, row))
    return [_trend(key, pairs[-last:]) for key, pairs in series.items()]


def _trend(key: tuple[str, str], pairs: list[tuple[Run, AppRow]]) -> AppTrend:
    rows = [row for _run, row in pairs]
    streak = 0
    for row in reversed(rows):
        if row.outcome != "failed":
            break
        streak += 1
    flaky = _flaky(rows)
    latest = rows[-1]
    status = None
    if latest.outcome == "failed":
        if set(latest.failures) & set(flaky):
            status = "flaky"
        else:
            status = "still failing" if streak > 1 else "new"
    return AppTrend(
        suite=key[0],
        app=key[1],
        runs=[run.run_id for run, _row in pairs],
        outcomes=[row.outcome for row in rows],
        flaky=flaky,
        regressions=_regressions(rows),
        streak_from=pairs[-streak][0].run_id if streak else None,
        streak=streak,
        ready_s=[row.ready_s for row in rows],
        memory_bytes=[row.memory_bytes for row in rows],
        status=status,
    )


def _flaky(rows: Sequence[AppRow]) -> list[str]:
    """Items that failed in a run and passed in a later one of the same chart version and
    values digest (an item passed in a run of the app that did not list it as failing).
    Passing and then failing for good is no flake: that is a failure streak."""
    groups: dict[tuple[str | None, str | None], list[AppRow]] = {}
    for row in rows:
        if row.outcome != "skipped":
            groups.setdefault((row.chart_version, row.values_digest), []).append(row)
    flaky: list[str] = []
    for group in groups.values():
        for item in dict.fromkeys(item for row in group for item in row.failures):
            first = next(n for n, row in enumerate(group) if item in row.failures)
            passed_later = any(item not in row.failures for row in group[first + 1 :])
            if passed_later and item not in flaky:
                flaky.append(item)
    return flaky


def _regressions(rows: Sequence[AppRow]) -> list[Regression]:
    """The latest run's time to ready and memory against the median of the earlier runs."""
    found = []
    limits = (
        ("time_to_ready_s", [row.ready_s for row in rows], SLOWER_FACTOR, SLOWER_BY_S),
        ("memory_bytes", [row.memory_bytes for row in rows], MEMORY_FACTOR, MEMORY_BY_BYTES),
    )
    for measure, values, factor, by in limits:
        latest, earlier = values[-1], [v for v in values[:-1] if v is not None]
        if latest is None or not earlier:
            continue
        median = statistics.median(earlier)
        if latest > median * factor and latest - median >= by:
            found.append(Regression(measure, latest, median))
    return found


def statuses(
    store: Store, results: Mapping[str, Any], *, last: int = DEFAULT_LAST
) -> dict[tuple[str, str], AppTrend]:
    """After ``results`` was appended: the trend of each app of that run, by (suite, app)."""
    names = {
        (str(a.get("suite")), str(a.get("app"))) for a in map(_mapping, _list(results.get("apps")))
    }
    return {
        (t.suite, t.app): t for t in trends(store.runs(), last=last) if (t.suite, t.app) in names
    }


# --- showing ---------------------------------------------------------------------------------


def render_text(found: Sequence[AppTrend]) -> str:
    if not found:
        return "no runs in the history\n"
    lines = []
    for trend in found:
        lines.append(
            f"{trend.suite}/{trend.app}  {trend.marks}  "
            f"({len(trend.runs)} runs: {', '.join(trend.runs)})"
        )
        if trend.streak:
            lines.append(f"  failing for {trend.streak} runs, since run {trend.streak_from}")
        for item in trend.flaky:
            lines.append(f"  flaky: {item}")
        for reg in trend.regressions:
            lines.append(
                f"  regression: {LABELS[reg.measure]} {_shown(reg.measure, reg.value)} "
                f"(median {_shown(reg.measure, reg.median)})"
            )
    return "\n".join(lines) + "\n"


def render_json(found: Sequence[AppTrend]) -> str:
    return json.dumps({"apps": [trend.as_json() for trend in found]}, indent=2) + "\n"


LABELS = {"time_to_ready_s": "time to ready", "memory_bytes": "memory"}


def _shown(measure: str, value: float) -> str:
    if measure == "memory_bytes":
        return f"{value / 1024 / 1024:.1f} MiB"
    return f"{value:.1f}s"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


__all__ = [
    "SCHEMA_VERSION",
    "AppTrend",
    "HistoryError",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "add_history_parser",
    "git_sha",
    "history_command",
    "open_store",
    "render_json",
    "render_text",
    "rerender_with_trends",
    "statuses",
    "trend_view",
    "trends",
]


# --- report.html ---------------------------------------------------------------------------

_COLORS = {"passed": "#1a7f37", "failed": "#cf222e", "skipped": "#6e7781"}
_BAR = "#0969da"
_REGRESSED = "#bf8700"


def trend_view(found: Sequence[AppTrend], *, last: int = DEFAULT_LAST) -> dict[str, Any]:
    """The view data of report.html's trend strips (templates/trends.html.j2): plain
    strings and numbers, escaped by the template."""
    return {"last": last, "apps": [_trend_row(trend) for trend in found]}


def _trend_row(trend: AppTrend) -> dict[str, Any]:
    regressed = {reg.measure for reg in trend.regressions}
    notes = []
    if trend.status == "new":
        notes.append({"kind": "new", "text": "new failure", "color": _COLORS["failed"]})
    elif trend.streak:
        since = f"failing since run {trend.streak_from}"
        notes.append({"kind": "failing", "text": since, "color": _COLORS["failed"]})
    notes += [
        {"kind": "flaky", "text": f"flaky: {item}", "color": _REGRESSED} for item in trend.flaky
    ]
    notes += [
        {
            "kind": "regression",
            "color": _REGRESSED,
            "text": f"regression: {LABELS[reg.measure]} {_shown(reg.measure, reg.value)} "
            f"(median {_shown(reg.measure, reg.median)})",
        }
        for reg in trend.regressions
    ]
    return {
        "label": f"{trend.suite}::{trend.app}",
        "marks": trend.marks,
        "width": 12 * len(trend.runs),
        "outcomes": [
            {"x": 12 * n, "color": _COLORS.get(outcome, "#8c959f"), "title": f"{run}: {outcome}"}
            for n, (run, outcome) in enumerate(zip(trend.runs, trend.outcomes, strict=True))
        ],
        "ready": _bars("time_to_ready_s", trend.runs, trend.ready_s, regressed),
        "memory": _bars("memory_bytes", trend.runs, trend.memory_bytes, regressed),
        "notes": notes,
    }


def _bars(
    measure: str, runs: Sequence[str], values: Sequence[float | None], regressed: set[str]
) -> dict[str, Any]:
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    bars = []
    for n, (run, value) in enumerate(zip(runs, values, strict=True)):
        if value is None:
            continue
        latest = n == len(values) - 1
        bars.append(
            {
                "x": 12 * n,
                "h": max(1, round(22 * value / top)),
                "color": _REGRESSED if latest and measure in regressed else _BAR,
                "title": f"{run}: {_shown(measure, value)}",
            }
        )
    return {"label": LABELS[measure], "bars": bars}


def rerender_with_trends(report_dir: Path, trends_of_run: Sequence[AppTrend]) -> Path:
    """report.html of ``report_dir`` again from its results.json, with the trend strips."""
    from harness.files import write_atomic
    from harness.report.html import render

    results = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    page = render(results, trends=trend_view(trends_of_run))
    return write_atomic(report_dir / "report.html", page)


# --- the command -----------------------------------------------------------------------------


def add_history_parser(commands: Any) -> None:
    """``helm-harness history``: the trends of a history store, per app."""
    parser = commands.add_parser("history", help="trends per app from a run history store")
    parser.add_argument(
        "--history",
        metavar="FILE|URL",
        help="the store: a SQLite file or a postgresql:// URL (default: $HELM_HARNESS_HISTORY)",
    )
    parser.add_argument("--app", metavar="APP", help="this app only")
    parser.add_argument(
        "--last",
        type=_positive,
        default=DEFAULT_LAST,
        metavar="N",
        help=f"the last N runs of each app (default {DEFAULT_LAST})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def _positive(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive count: {text!r}")
    return int(text)


def history_command(args: Any) -> int:
    """Print the trends; exit 4 with a one-line message when the store cannot be read."""
    import sys

    spec = args.history or os.environ.get("HELM_HARNESS_HISTORY")
    try:
        if not spec:
            raise HistoryError("(none)", "give --history FILE|URL or $HELM_HARNESS_HISTORY")
        store = open_store(spec)
        if isinstance(store, SqliteStore) and not store.path.is_file():
            raise HistoryError(str(store.path), "no such file")
        found = trends(store.runs(app=args.app), last=args.last, app=args.app)
    except HistoryError as exc:
        print(f"helm-harness: error: {exc}", file=sys.stderr)
        return 4
    sys.stdout.write(render_json(found) if args.format == "json" else render_text(found))
    return 0
