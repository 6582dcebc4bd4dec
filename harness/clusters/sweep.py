"""``helm-harness cluster sweep``: remove what the harness created and no live run owns.

What counts, and nothing else:

- clusters with an ownership record (:mod:`harness.clusters.records`) none of whose
  holders is a live pytest/helm-harness process;
- namespaces labelled ``app.kubernetes.io/managed-by=helm-harness`` with a
  ``helm-harness.io/run`` label, on the recorded clusters still in use (and on the
  ``--kubeconfig`` cluster), whose run is not alive. A run is alive when it is registered
  (or holds a cluster) in a live process; a run nobody registered is taken as alive while
  any pytest/helm-harness process that started before its namespace is still running
  (and is not known to be some other run), since that process may be it.

Unlabelled clusters and namespaces are never touched; a cluster or namespace whose owner
cannot be told is kept.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.clusters import records
from harness.deploy.deployer import LABEL_OWNER, LABEL_RUN, OWNER
from harness.errors import HarnessError

CLOCK_SKEW = 300.0  # seconds an API server's clock may be off from this machine's


@dataclass
class SweepResult:
    removed: list[str] = field(default_factory=list)  # what was (or would be) deleted
    kept: list[str] = field(default_factory=list)  # what a live run holds
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Liveness:
    live_runs: frozenset[str]
    dead_runs: frozenset[str]
    unaccounted_starts: tuple[float, ...]  # start times of harness processes of unknown runs

    def run_alive(self, run_id: str, namespace_created: float | None) -> bool:
        if run_id in self.live_runs:
            return True
        if run_id in self.dead_runs:
            return False
        if namespace_created is None:
            return bool(self.unaccounted_starts)
        return any(start <= namespace_created + CLOCK_SKEW for start in self.unaccounted_starts)


def sweep(
    *,
    dry_run: bool = False,
    kubeconfig: Path | None = None,
    context: str | None = None,
    select: Callable[[records.ClusterRecord], bool] | None = None,
    sweeper_pid: int | None = None,
) -> SweepResult:
    """Delete (or with ``dry_run`` only list) left-over clusters and namespaces.

    ``select`` limits which recorded clusters are looked at (all by default);
    ``sweeper_pid`` is a process known to own nothing (``helm-harness cluster sweep``
    itself), so it protects no namespace."""
    result = SweepResult()
    verb = "would delete" if dry_run else "deleted"
    chosen = [r for r in records.cluster_records() if select is None or select(r)]
    in_use: list[records.ClusterRecord] = []
    for record in chosen:
        holders = record.live_holders()
        if holders:
            pids = ", ".join(str(holder.pid) for holder in holders)
            result.kept.append(f"{record.provider} cluster {record.name} (held by pid {pids})")
            in_use.append(record)
            continue
        what = f"{record.provider} cluster {record.name} ({record.describe()}; no live holder)"
        try:
            if not dry_run:
                _delete_cluster(record)
            result.removed.append(f"{verb} {what}")
        except HarnessError as exc:
            result.errors.append(f"could not delete {what}: {exc}")

    liveness = _liveness(ignore_pid=sweeper_pid)
    targets: list[tuple[str, Path, str | None]] = [
        (f"{r.provider} cluster {r.name}", Path(r.kubeconfig), None) for r in in_use
    ]
    if kubeconfig is not None:
        targets.append((f"the cluster of {kubeconfig}", kubeconfig, context))
    for where, config, ctx in targets:
        _sweep_namespaces(where, config, ctx, liveness, dry_run=dry_run, result=result)

    if not dry_run:
        for holder in records.runs():
            if not holder.alive():
                records.forget_run(holder.run_id)
    return result


def _delete_cluster(record: records.ClusterRecord) -> None:
    from harness.clusters.registry import get_provider

    provider = get_provider(record.provider)
    provider.delete(record.name)
    records.forget_cluster(record.provider, record.name)


def _liveness(*, ignore_pid: int | None) -> _Liveness:
    live: set[str] = set()
    dead: set[str] = set()
    known_pids: set[int] = set()
    holders = list(records.runs())
    for record in records.cluster_records():
        holders.extend(record.holders)
    for holder in holders:
        if not holder.run_id:
            continue
        if holder.alive():
            live.add(holder.run_id)
            known_pids.add(holder.pid)
        else:
            dead.add(holder.run_id)
    starts = tuple(
        proc.started if proc.started is not None else 0.0
        for proc in records.harness_processes()
        if proc.pid not in known_pids and proc.pid != ignore_pid
    )
    return _Liveness(frozenset(live), frozenset(dead - live), starts)


def _sweep_namespaces(
    where: str,
    kubeconfig: Path,
    context: str | None,
    liveness: _Liveness,
    *,
    dry_run: bool,
    result: SweepResult,
) -> None:
    from kubernetes import client

    from harness.kube.client import api_client

    if not kubeconfig.is_file():
        return
    try:
        api = api_client(kubeconfig, context)
    except HarnessError as exc:
        result.errors.append(f"could not use {where}: {exc}")
        return
    with api:
        api.configuration.retries = 0
        core = client.CoreV1Api(api)
        try:
            namespaces = core.list_namespace(
                label_selector=f"{LABEL_OWNER}={OWNER},{LABEL_RUN}", _request_timeout=10
            ).items
        except Exception as exc:  # unreachable (stopped, gone): nothing to sweep there
            result.errors.append(f"could not list namespaces on {where}: {_first_line(exc)}")
            return
        for namespace in namespaces:
            meta = namespace.metadata
            if meta is None or not meta.name or meta.deletion_timestamp is not None:
                continue  # already on its way out
            run_id = str((meta.labels or {}).get(LABEL_RUN, ""))
            if not run_id:
                continue
            what = f"namespace {meta.name} on {where} (run {run_id})"
            if liveness.run_alive(run_id, _epoch(meta.creation_timestamp)):
                result.kept.append(what)
                continue
            try:
                if not dry_run:
                    core.delete_namespace(meta.name, _request_timeout=10)
                verb = "would delete" if dry_run else "deleted"
                result.removed.append(f"{verb} {what}; the run is not alive")
            except Exception as exc:  # someone else removed it, or we may not
                result.errors.append(f"could not delete {what}: {_first_line(exc)}")


def _epoch(moment: Any) -> float | None:
    if isinstance(moment, datetime.datetime):
        return moment.timestamp()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
