"""Who made which cluster, and which runs are alive: small JSON files under the harness
cache, so that ``helm-harness cluster sweep`` can find what the harness created and tell
what a live run still holds.

kind cannot label a cluster, and kwok has nothing to label, so ownership is recorded here
for every provider that creates clusters::

    <cache>/clusters/<provider>-<name>.json   a cluster: when it was made, its kubeconfig,
                                              the run that made it, and the processes
                                              holding it (pid + process start time)
    <cache>/runs/<run id>.json                a run (pid + process start time)
    <cache>/locks/clusters/<provider>-<name>.lock
                                              the lock of a cluster: who holds it (pid,
                                              start time, command, since when, for what)

A holder is alive while its pid is a running pytest or helm-harness process that started
when the record says (so a recycled pid does not count). A cluster nobody alive holds is
left over; so is a namespace labelled with the id of a run that is not alive.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import filelock
import psutil

from harness import tools
from harness.errors import ClusterError

HARNESS_COMMANDS = ("pytest", "py.test", "helm-harness", "harness.cli")
START_TOLERANCE = 2.0  # seconds: process start times are read at tick precision
_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)  # ended, not yet reaped
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Holder:
    """A process that holds a cluster or runs a run."""

    pid: int
    started: float | None  # the process's start time (epoch seconds), None where unknown
    run_id: str = ""

    def alive(self) -> bool:
        """Whether this very process still runs, and is pytest or helm-harness. A process
        whose command line this user may not read counts when its start time shows it is
        the same process."""
        proc = process(self.pid)
        if proc is None:
            return False
        same = self._same_start(proc)
        if proc.cmdline is None:
            return bool(same)
        return is_harness_command(proc.cmdline) and same is not False

    def running(self) -> bool:
        """Whether this very process still runs, whatever it is."""
        proc = process(self.pid)
        return proc is not None and self._same_start(proc) is not False

    def _same_start(self, proc: Process) -> bool | None:
        """Whether ``proc`` started when this holder did (None: a start time is unknown);
        a pid reused by a later process starts later."""
        if self.started is None or proc.started is None:
            return None
        return abs(proc.started - self.started) <= START_TOLERANCE


@dataclass(frozen=True)
class ClusterRecord:
    """A cluster the harness created."""

    provider: str
    name: str
    created: float  # epoch seconds
    kubeconfig: str
    run_id: str = ""  # the run that created it, when known
    holders: tuple[Holder, ...] = ()
    details: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return cluster_record_path(self.provider, self.name)

    def live_holders(self) -> list[Holder]:
        return [holder for holder in self.holders if holder.alive()]

    def describe(self) -> str:
        made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))
        pids = ", ".join(str(holder.pid) for holder in self.holders) or "none"
        run = f"run {self.run_id}, " if self.run_id else ""
        owner = self.details.get("owner")
        command = self.details.get("command")
        by = f" by {owner}" if owner else ""
        how = f" ({command})" if command else ""
        return f"created {made}{by}{how}, {run}held by pid {pids}"

    @property
    def age(self) -> float:
        """Seconds since the record was made."""
        return max(0.0, time.time() - self.created)


@dataclass(frozen=True)
class Process:
    pid: int
    cmdline: str | None  # None where this user may not read it
    started: float | None  # epoch seconds, None where unknown


# -- processes ----------------------------------------------------------------------------


def process(pid: int) -> Process | None:
    """The running process ``pid`` (None when there is none, or it is a zombie)."""
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() in _GONE:
                return None
            started = _readable(proc.create_time)
            argv = _readable(proc.cmdline)
    except psutil.NoSuchProcess:  # ZombieProcess too
        return None
    except psutil.AccessDenied:  # not even its status: it runs, but nothing else is known
        return Process(pid, None, None)
    return Process(pid, None if argv is None else " ".join(argv).strip(), started)


_T = TypeVar("_T")


def _readable(read: Callable[[], _T]) -> _T | None:
    try:
        return read()
    except psutil.AccessDenied:
        return None


def is_harness_command(cmdline: str) -> bool:
    return any(word in cmdline for word in HARNESS_COMMANDS)


def harness_processes() -> list[Process]:
    """Every running pytest or helm-harness process this user can see."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        info = proc.info  # what could not be read (AccessDenied) is None
        if info["status"] in _GONE or not info["cmdline"]:
            continue
        cmdline = " ".join(info["cmdline"]).strip()
        if is_harness_command(cmdline):
            found.append(Process(info["pid"], cmdline, info["create_time"]))
    return found


def creator() -> dict[str, str]:
    """Who is creating a cluster: ``user@host`` and the command line (secret-looking flag
    values and URL credentials masked), for ``cluster sweep`` to show."""
    import getpass
    import socket

    from harness.redact import redact_args

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        user = str(os.getuid())
    argv = _readable(psutil.Process().cmdline) or []
    command = " ".join(redact_args(argv))
    if len(command) > 200:
        command = command[:197] + "..."
    return {"owner": f"{user}@{socket.gethostname()}", "command": command}


def this_process(run_id: str = "") -> Holder:
    me = process(os.getpid())
    return Holder(pid=os.getpid(), started=me.started if me else None, run_id=run_id)


# -- cluster records ----------------------------------------------------------------------


def state_dir() -> Path:
    return tools.cache_dir() / "clusters"


def runs_dir() -> Path:
    return tools.cache_dir() / "runs"


def cluster_record_path(provider: str, name: str) -> Path:
    return state_dir() / f"{_SAFE.sub('_', provider)}-{_SAFE.sub('_', name)}.json"


def cluster_lock_path(provider: str, name: str) -> Path:
    """The lock file of a cluster (see :func:`harness.clusters.registry.cluster_lock`)."""
    record = cluster_record_path(provider, name)
    return tools.cache_dir() / "locks" / "clusters" / f"{record.stem}.lock"


def record_cluster(
    provider: str,
    name: str,
    *,
    kubeconfig: Path,
    run_id: str = "",
    details: dict[str, str] | None = None,
) -> ClusterRecord:
    """Record that this process is creating cluster ``name`` (call before creating it, so
    that a process killed half-way still leaves a record to sweep)."""
    record = ClusterRecord(
        provider=provider,
        name=name,
        created=time.time(),
        kubeconfig=str(kubeconfig),
        run_id=run_id,
        holders=(this_process(run_id),),
        details={**creator(), **(details or {})},
    )
    _write(record.path, _record_json(record))
    return record


def hold_cluster(provider: str, name: str, *, run_id: str = "") -> ClusterRecord | None:
    """Add this process to the holders of a recorded cluster (a run reusing it); clusters
    the harness has no record of are left alone (None)."""
    record = read_cluster(provider, name)
    if record is None:
        return None
    me = this_process(run_id)
    # a hold is a run's: two runs in one process (pytest in-process, a run started from
    # a test) each hold the cluster, and each gives up only its own hold
    others = [h for h in record.holders if not _same_hold(h, me) and h.alive()]
    updated = replace(record, holders=(*others, me), run_id=record.run_id or run_id)
    _write(updated.path, _record_json(updated))
    return updated


def unhold_cluster(provider: str, name: str, *, run_id: str = "") -> None:
    """Run ``run_id`` of this process (any of its runs, without one) no longer holds the
    cluster (it keeps it, for someone else)."""
    record = read_cluster(provider, name)
    if record is None:
        return
    me = this_process(run_id)
    others = tuple(
        h
        for h in record.holders
        if h.alive() and not (h.pid == me.pid and (not run_id or h.run_id == run_id))
    )
    updated = replace(record, holders=others)
    _write(updated.path, _record_json(updated))


def _same_hold(a: Holder, b: Holder) -> bool:
    return a.pid == b.pid and a.run_id == b.run_id


def forget_cluster(provider: str, name: str) -> None:
    """The cluster is gone: remove its record, and its lock file unless someone holds it."""
    cluster_record_path(provider, name).unlink(missing_ok=True)
    lock = cluster_lock_path(provider, name)
    if lock.exists():
        try:
            with filelock.FileLock(lock, blocking=False):
                lock.unlink(missing_ok=True)  # taken first: a waiter on it takes a new one
        except filelock.Timeout:
            pass  # held (by the release() deleting the cluster, which removes it itself)


def read_cluster(provider: str, name: str) -> ClusterRecord | None:
    return _read_record(cluster_record_path(provider, name))


def cluster_records() -> list[ClusterRecord]:
    folder = state_dir()
    if not folder.is_dir():
        return []
    found = (_read_record(path) for path in sorted(folder.glob("*.json")))
    return [record for record in found if record is not None]


# -- runs ---------------------------------------------------------------------------------


def register_run(run_id: str, holder: Holder | None = None) -> Holder:
    """Record that run ``run_id`` lives in this process (or in ``holder``)."""
    holder = holder or this_process(run_id)
    holder = replace(holder, run_id=run_id)
    _write(_run_path(run_id), json.dumps(asdict(holder), indent=2))
    return holder


def forget_run(run_id: str) -> None:
    _run_path(run_id).unlink(missing_ok=True)


def runs() -> list[Holder]:
    folder = runs_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append(_holder(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written or foreign: not ours to judge
    return found


def iter_live_run_ids() -> Iterator[str]:
    """Ids of the runs that are alive: registered runs, and holders that said their run."""
    for holder in runs():
        if holder.run_id and holder.alive():
            yield holder.run_id
    for record in cluster_records():
        for holder in record.holders:
            if holder.run_id and holder.alive():
                yield holder.run_id


def _run_path(run_id: str) -> Path:
    return runs_dir() / f"{_SAFE.sub('_', run_id)}.json"


# -- locks --------------------------------------------------------------------------------


@contextmanager
def file_lock(
    path: Path, *, timeout: float, purpose: str, provider: str = "", name: str = ""
) -> Iterator[Path]:
    """Hold the file lock ``path`` (``flock``, through :class:`filelock.FileLock`) for
    ``purpose`` ("create kwok cluster x"), waiting at most ``timeout`` seconds; then a
    :class:`ClusterError` names the file, what holds it, and what to do.

    The holder writes itself (pid, start time, command, purpose) into the file, which is
    how a waiter can tell. The holder may remove the file just before leaving (when what
    it guards is gone): a waiter then takes a new one."""
    lock = filelock.FileLock(path, timeout=timeout, on_acquired=_lock_writer(purpose))
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise ClusterError(_lock_timeout(path, timeout), provider=provider, name=name) from exc
    try:
        yield path
    finally:
        lock.release()


def _lock_writer(purpose: str) -> Callable[[int], None]:
    def write(fd: int) -> None:
        holder = {**asdict(this_process()), "command": creator()["command"]}
        data = json.dumps({**holder, "purpose": purpose, "since": time.time()}).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data + b"\n", 0)
        except OSError:
            pass  # a full disk, say: the lock holds all the same, only waiters can't tell who

    return write


def _lock_timeout(path: Path, timeout: float) -> str:
    waited = f"waited {timeout:g}s for the lock {path}"
    try:
        data = json.loads(path.read_text())
        holder = _holder(data)
        purpose, command = str(data.get("purpose") or ""), str(data.get("command") or "")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(data["since"])))
    except (OSError, ValueError, KeyError, TypeError):
        return (
            f"{waited}; its holder is unknown. Find the process holding it (fuser -v {path}), "
            "let it finish or end it, and try again"
        )
    who = f"pid {holder.pid}" + (f" ({command})" if command else "")
    doing = f" to {purpose}" if purpose else ""
    if holder.running():
        return (
            f"{waited}: {who} holds it since {since}{doing}. Wait for that run to finish and "
            f"try again, or end it (kill {holder.pid}) if it hangs"
        )
    return (
        f"{waited}: {who} took it at {since}{doing} and has ended, but a process it started "
        f"still holds it. Find that process (fuser -v {path}), end it, and try again"
    )


# -- files --------------------------------------------------------------------------------


def _record_json(record: ClusterRecord) -> str:
    data = asdict(record)
    data["holders"] = [asdict(holder) for holder in record.holders]
    return json.dumps(data, indent=2)


def _read_record(path: Path) -> ClusterRecord | None:
    try:
        data = json.loads(path.read_text())
        return ClusterRecord(
            provider=str(data["provider"]),
            name=str(data["name"]),
            created=float(data["created"]),
            kubeconfig=str(data["kubeconfig"]),
            run_id=str(data.get("run_id") or ""),
            holders=tuple(_holder(item) for item in data.get("holders", [])),
            details={str(k): str(v) for k, v in (data.get("details") or {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _holder(data: dict[str, object]) -> Holder:
    pid = data["pid"]
    started = data.get("started")
    if not isinstance(pid, int) or not (started is None or isinstance(started, (int, float))):
        raise TypeError("malformed holder")
    return Holder(pid=pid, started=started, run_id=str(data.get("run_id") or ""))


def _write(path: Path, text: str) -> None:
    """Write atomically, so a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
