"""Benchmark: the loop chart-testing runs (``helm install --wait``, ``helm test``,
``helm uninstall --wait``, one app after another) against ``helm-harness`` on the same
apps and the same kwok cluster; then the harness's peak memory over 100 apps, how soon a
pod that cannot start fails its item, and the wall time of ``scripts/run-examples``.

    .venv/bin/python bench/bench_loop.py [--apps 10] [--skip-memory] [--memory-apps 100]
                                         [--skip-examples] [--pod-startup 2s] [--pod-jitter 2s]
                                         [--also-max-parallel N ...] [--cluster kind]

One kwok cluster (pods start after 2 s plus up to 2 s more) serves (a)-(e); it is deleted
at the end, also on an error, Ctrl-C or SIGTERM. Each app is the fixture chart ``web``
with its default values:

(a) chart-testing's loop: per app ``helm install NAME web --namespace NS
    --create-namespace --wait --timeout 5m``, ``helm test NAME -n NS``, ``helm uninstall
    NAME -n NS --wait``, one after another;
(b) ``python -m pytest`` over one-app suites (checks ``ready`` and ``helmTest``) with the
X
    (b') the same with ``--metrics-wait=0``, to show what the snapshots cost;
(c) the same as (b) with ``-n 4``;
(d) peak memory: ``--memory-apps`` one-app suites (``ready`` only, the default ``--max-parallel``,
    ``--metrics-wait=0``) in one pytest process: its kernel high-water mark (``VmHWM``);
(e) fast-fail latency: apps whose pod is ImagePullBackOff, Unschedulable (a nodeSelector
    no node has) or in CrashLoopBackOff past ``maxRestarts`` (a tiny chart written here),
    ``ready`` with a 120 s timeout, ``--max-parallel 1`` so no app waits behind another:
    from the moment this script first sees the pod's condition in the API (polled every
    0.2 s) to the end of the failed ``ready`` item (its report's stop time);
then, with this script's cluster gone, ``scripts/run-examples`` as it is (its own
set-up, then ``helm-harness run suites/`` on the cluster ``--cluster auto`` picks), its
reports sent to a temporary folder: the time after its set-up says "done".

``--cluster kind`` runs (a)-(c) on a new kind cluster of the test bed instead (real pods:
the fixture image is loaded into it first, so neither side pulls), for the issue's "repeat
(a)-(c) on kind"; (d) and (e) use kwok's simulated pods and are left out.

Goals: a/b >= 3, a/c >= 5, run-examples <= 25 s after set-up, <= 200 MB peak, <= 5 s
from a pod's condition to the failed item.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from procs import peak_rss_mb, python_children  # bench/procs.py

from harness import tools
from harness.clusters.base import ClusterSpec
from harness.clusters.kind import KindProvider
from harness.clusters.kwok import KwokProvider
from harness.kube.client import api_client
from harness.units import parse_duration

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "fixtures" / "charts" / "web"
FIXTURE_IMAGE = "helm-harness/fixture-app:1"  # the web chart's image (scripts/setup builds it)
GOAL_B = 3.0  # a/b
GOAL_C = 5.0  # a/c
GOAL_EXAMPLES_S = 25.0
GOAL_RSS_MB = 200.0
GOAL_FAST_FAIL_S = 5.0
SAMPLE_EVERY = 0.2  # s between reads of /proc and polls of the pods
RUN_TIMEOUT = 1800.0  # s for any one command
FAST_FAIL_TIMEOUT = "120s"

# (e): the tiny chart, and the apps that cannot start: app -> (values, ready options)
STUCK_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: stuck\nversion: 0.1.0\n",
    "values.yaml": 'simulate: ""\nnodeSelector: {}\n',
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name | quote }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name | quote }}}
      {{- with .Values.simulate }}
      annotations:
        helm-harness.io/simulate: {{ . | quote }}
      {{- end }}
    spec:
      {{- with .Values.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: app
          image: registry.invalid/stuck:1
          resources:
            requests: {cpu: 10m, memory: 16Mi}
""",
}
STUCK_APPS = {
    "pull": ("{simulate: image-pull-backoff}", "{}"),
    "unschedulable": ("{nodeSelector: {helm-harness.io/bench: nowhere}}", "{}"),
    "crashloop": ("{simulate: crashloop}", "{maxRestarts: 2}"),
}
CONDITION = {
    "pull": "ImagePullBackOff",
    "unschedulable": "Unschedulable",
    "crashloop": "CrashLoopBackOff",
}
# A conftest for (e) that writes when each item's call report ended (epoch) to a file.
TIMES_CONFTEST = """\
import json
import os


def pytest_runtest_logreport(report):
    if report.when == "call":
        record = {"id": report.nodeid, "outcome": report.outcome, "stop": report.stop}
        with open(os.environ["BENCH_LOOP_TIMES"], "a") as out:
            out.write(json.dumps(record) + "\\n")
"""


class Interrupted(KeyboardInterrupt):
    """SIGTERM, turned into the same unwinding as Ctrl-C (so the cluster is deleted)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Interrupted()


# -- processes --------------------------------------------------------------------------


@dataclass
class Run:
    """One command: its wall time, exit code, output tail and peak memory."""

    seconds: float = 0.0
    exit_code: int = 0
    tail: str = ""
    main_rss_mb: float = 0.0  # the process started
    child_rss_mb: dict[int, float] = field(default_factory=dict)  # its Python children
    lines: list[tuple[float, str]] = field(default_factory=list)  # (s since start, line)


def run(
    argv: list[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    sample: bool = False,
    keep_lines: bool = False,
) -> Run:
    """Run ``argv`` (a list, never a shell string), output merged; with ``sample``, read
    the peak RSS of it and its Python children until it ends; with ``keep_lines``, each
    output line with the time it arrived."""
    outcome = Run()
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        out: Any = subprocess.PIPE if keep_lines else log
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        try:
            if keep_lines:
                assert proc.stdout is not None
                for line in proc.stdout:
                    outcome.lines.append((time.perf_counter() - started, line.rstrip("\n")))
                proc.wait(timeout=RUN_TIMEOUT)
            elif not sample:
                proc.wait(timeout=RUN_TIMEOUT)
            while proc.poll() is None:
                if time.perf_counter() - started > RUN_TIMEOUT:
                    raise subprocess.TimeoutExpired(argv, RUN_TIMEOUT)
                if sample:
                    for pid in python_children(proc.pid):
                        peak = peak_rss_mb(pid)
                        if peak is not None:
                            outcome.child_rss_mb[pid] = max(
                                peak, outcome.child_rss_mb.get(pid, 0.0)
                            )
                    outcome.main_rss_mb = peak_rss_mb(proc.pid) or outcome.main_rss_mb
                time.sleep(SAMPLE_EVERY)
        except BaseException:
            proc.terminate()  # pytest tidies its namespaces on SIGTERM
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        outcome.seconds = time.perf_counter() - started
        outcome.exit_code = proc.returncode
        if keep_lines:
            text = "\n".join(line for _, line in outcome.lines)
        else:
            log.seek(0)
            text = log.read()
        outcome.tail = "\n".join(text.strip().splitlines()[-3:])
    return outcome


# -- (a) chart-testing's loop -----------------------------------------------------------


@dataclass
class LoopOutcome:
    seconds: float
    steps: list[dict[str, float]]  # per app: install, test, uninstall
    failures: list[str]


def chart_testing_loop(helm: Path, kubeconfig: Path, apps: int) -> LoopOutcome:
    base = [str(helm), "--kubeconfig", str(kubeconfig)]
    steps: list[dict[str, float]] = []
    failures: list[str] = []
    started = time.perf_counter()
    for index in range(apps):
        name, ns = f"ct{index:02}", f"ct-{index:02}"
        commands = {
            "install": [
                *base,
                *("install", name, str(CHART), "--namespace", ns, "--create-namespace"),
                *("--wait", "--timeout", "5m"),
            ],
            "test": [*base, "test", name, "-n", ns],
            "uninstall": [*base, "uninstall", name, "-n", ns, "--wait"],
        }
        times: dict[str, float] = {}
        for step, argv in commands.items():
            outcome = run(argv)
            times[step] = outcome.seconds
            if outcome.exit_code != 0:
                failures.append(f"{name} {step}: exit {outcome.exit_code}: {outcome.tail}")
        steps.append(times)
    return LoopOutcome(time.perf_counter() - started, steps, failures)


# -- (b)-(e) harness runs -------------------------------------------------------------


def write_web_suites(folder: Path, apps: int, checks: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    for index in range(apps):
        (folder / f"web{index:03}.suite.yaml").write_text(
            "apiVersion: helm-harness/v1\nkind: Suite\napps:\n"
            f"  - {{name: web{index:03}, chart: {CHART}, checks: {checks}}}\n"
        )


def write_stuck_suite(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(TIMES_CONFTEST)
    chart = folder / "stuck"
    for rel, text in STUCK_CHART.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)
    apps = "".join(
        f"  - name: {app}\n    chart: {chart}\n    values: {values}\n"
        f"    timeout: {FAST_FAIL_TIMEOUT}\n"
        f"    checks: [{{ready: {ready}, timeout: {FAST_FAIL_TIMEOUT}}}]\n"
        for app, (values, ready) in STUCK_APPS.items()
    )
    (folder / "fastfail.suite.yaml").write_text(
        f"apiVersion: helm-harness/v1\nkind: Suite\nmetadata: {{name: fastfail}}\napps:\n{apps}"
    )


@dataclass
class HarnessOutcome:
    label: str
    run: Run
    results: dict[str, Any]


def harness_run(
    folder: Path, kubeconfig: Path, label: str, extra: list[str], env_extra: dict[str, str]
) -> HarnessOutcome:
    report = folder / f"report-{label}"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    argv += [f"--kubeconfig={kubeconfig}", f"--report-dir={report}", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_HARNESS_METRICS")}
    env.update(env_extra)
    outcome = run(argv, cwd=folder, env=env, sample=True)
    try:
        results = json.loads((report / "results.json").read_text())
    except (OSError, ValueError):
        results = {}
    return HarnessOutcome(label, outcome, results)


def per_app(results: dict[str, Any]) -> list[dict[str, float]]:
    """Per app of a results.json: its items' durations, and install/ready timings."""
    rows = []
    for app in results.get("apps", []):
        row = {f"item:{item['name']}": item["duration_s"] for item in app.get("items", [])}
        for key, value in (app.get("timings") or {}).items():
            row[f"t:{key}"] = value
        rows.append(row)
    return rows


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    return f"median {median:.2f} (min {ordered[0]:.2f}, max {ordered[-1]:.2f})"


def describe_harness(outcome: HarnessOutcome) -> None:
    run_ = outcome.run
    rows = per_app(outcome.results)
    print(
        f"  {outcome.label}: {run_.seconds:.1f}s wall, exit {run_.exit_code}, "
        f"pytest's duration_s {outcome.results.get('duration_s', float('nan')):.1f}, "
        f"outcomes {outcome.results.get('outcomes', {})}",
        flush=True,
    )
    for key in sorted({k for row in rows for k in row}):
        print(f"    {key:<16} {spread([row[key] for row in rows if key in row])}")
    items = sum(v for row in rows for k, v in row.items() if k.startswith("item:"))
    outside = run_.seconds - outcome.results.get("duration_s", float("nan"))
    print(
        f"    sum of item durations {items:.1f}s; outside pytest's session (interpreter start, "
        f"the clean-up at the end) {outside:.1f}s"
    )
    if run_.exit_code != 0:
        print(f"    tail: {run_.tail}")


# -- (e) watching pods ------------------------------------------------------------------


class PodWatcher:
    """Polls every pod of the cluster and keeps, per namespace, when (this machine's
    epoch clock) it first showed ImagePullBackOff, Unschedulable or CrashLoopBackOff, and
    the time the API gives the condition (a lastTransitionTime, whole seconds)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.core = k8s_client.CoreV1Api(api_client(kubeconfig))
        self.seen: dict[str, tuple[str, float, float | None]] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> PodWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.core.list_pod_for_all_namespaces(_request_timeout=5).items
            except Exception:  # a missed poll only coarsens the figure
                self.errors += 1
                pods = []
            now = time.time()
            for pod in pods:
                ns = pod.metadata.namespace
                if ns in self.seen or not ns.startswith("h-"):
                    continue
                found = _condition(pod)
                if found is not None:
                    self.seen[ns] = (found[0], now, found[1])
            self._stop.wait(SAMPLE_EVERY)


def _condition(pod: Any) -> tuple[str, float | None] | None:
    status = pod.status
    conditions = {c.type: c for c in status.conditions or []}
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.status == "False":
        if scheduled.reason == "Unschedulable":
            return "Unschedulable", _epoch(scheduled.last_transition_time)
    for container in status.container_statuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in ("ImagePullBackOff", "CrashLoopBackOff"):
            # kwok's stage writes the waiting state and the Ready condition at once
            ready = conditions.get("Ready")
            return waiting.reason, _epoch(ready.last_transition_time if ready else None)
    return None


def _epoch(moment: Any) -> float | None:
    return moment.timestamp() if moment is not None else None


@dataclass
class FastFail:
    app: str
    condition: str
    outcome: str
    item_s: float | None  # the ready item's duration (results.json)
    latency_s: float | None  # condition first seen -> the item's report
    api_latency_s: float | None  # the API's lastTransitionTime -> the item's report
    message: str


def fast_fail(folder: Path, kubeconfig: Path) -> tuple[list[FastFail], HarnessOutcome]:
    write_stuck_suite(folder)
    times_file = folder / "times.jsonl"
    with PodWatcher(kubeconfig) as watcher:
        outcome = harness_run(
            folder,
            kubeconfig,
            "fastfail",
            ["--max-parallel=1", "--metrics-wait=0"],
            {"BENCH_LOOP_TIMES": str(times_file)},
        )
    stops = {}
    if times_file.exists():
        for line in times_file.read_text().splitlines():
            record = json.loads(line)
            stops[record["id"].split("::", 1)[1]] = record  # app::ready
    apps = {app["app"]: app for app in outcome.results.get("apps", [])}
    found = []
    for app in STUCK_APPS:
        record = stops.get(f"{app}::ready")
        seen = next((v for ns, v in watcher.seen.items() if ns.endswith(f"-{app}")), None)
        items = {item["name"]: item for item in apps.get(app, {}).get("items", [])}
        ready = items.get("ready", {})
        latency = api_latency = None
        if record is not None and seen is not None:
            latency = record["stop"] - seen[1]
            if seen[2] is not None:
                api_latency = record["stop"] - seen[2]
        found.append(
            FastFail(
                app=app,
                condition=seen[0] if seen else f"{CONDITION[app]} never seen",
                outcome=record["outcome"] if record else "no report",
                item_s=ready.get("duration_s"),
                latency_s=latency,
                api_latency_s=api_latency,
                message=(ready.get("message") or "")[:160],
            )
        )
    if watcher.errors:
        print(f"  note: {watcher.errors} polls of the pods failed")
    return found, outcome


# -- scripts/run-examples -------------------------------------------------------------


@dataclass
class Examples:
    total_s: float
    after_setup_s: float | None
    exit_code: int
    results: dict[str, Any]
    tail: str
    cluster_line: str


def run_examples(report: Path) -> Examples:
    outcome = run(
        [str(ROOT / "scripts" / "run-examples"), f"--report-dir={report}"], keep_lines=True
    )
    done = next((t for t, line in outcome.lines if line.startswith("[setup] done")), None)
    try:
        results = json.loads((report / "results.json").read_text())
    except (OSError, ValueError):
        results = {}
    after = outcome.seconds - done if done is not None else None
    created = next((line for _, line in outcome.lines if " created " in line), "")
    return Examples(outcome.seconds, after, outcome.exit_code, results, outcome.tail, created)


def describe_examples(results: dict[str, Any]) -> None:
    """Per app of the examples' results.json: the items that took 0.5 s or more (the last
    one's teardown holds the metric snapshot), and why a snapshot had no figures."""
    for app in results.get("apps", []):
        items = [i for i in app.get("items", []) if i["duration_s"] >= 0.5]
        slow = [f"{i['name']} {i['duration_s']:.1f}s" for i in items]
        reason = (app.get("metrics") or {}).get("reason")
        print(
            f"    {app['suite']}/{app['app']}: {', '.join(slow) or 'no item >= 0.5s'}"
            + (f"; snapshot: {reason[:90]}" if reason else "")
        )
    for test in results.get("tests", []):
        print(f"    {test['name']}: {test['duration_s']:.1f}s")


# -- the summary ------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-apps", type=int, default=100)
    parser.add_argument("--skip-examples", action="store_true")
    parser.add_argument("--pod-startup", type=parse_duration, default=2.0)
    parser.add_argument("--pod-jitter", type=parse_duration, default=2.0)
    parser.add_argument(
        "--cluster",
        choices=("kwok", "kind"),
        default="kwok",
        help="kind: (a)-(c) on a new kind cluster of the test bed (real pods, the fixture "
        "image loaded first); (d) and (e) need kwok's simulated pods and are left out",
    )
    parser.add_argument(
        "--also-max-parallel",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="one more (b) run with --max-parallel N (repeatable), to choose the default",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    helm = tools.find_helm()
    kind = args.cluster == "kind"
    provider: KwokProvider | KindProvider
    if kind:
        os.environ.update(tools.kind_testbed_env())  # the node image built here
        provider = KindProvider()
        delays = "real pods (kind)"
    else:
        provider = KwokProvider(pod_startup=args.pod_startup, pod_jitter=args.pod_jitter)
        delays = f"pod start-up {args.pod_startup:g}s + up to {args.pod_jitter:g}s"
    name = f"hh-bench-{uuid.uuid4().hex[:6]}"
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, {delays}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hh-bench-loop-") as tmp_name:
        tmp = Path(tmp_name)
        created = time.perf_counter()
        image = os.environ.get("HELM_HARNESS_KIND_IMAGE") if kind else None
        info = provider.create(ClusterSpec(name=name, image=image))
        print(f"{args.cluster} cluster {name} up in {time.perf_counter() - created:.1f}s")
        memory: HarnessOutcome | None = None
        fails: list[FastFail] = []
        try:
            kubeconfig = info.kubeconfig
            if isinstance(provider, KindProvider):  # (a) finds it there, as the harness does
                provider.load_images(name, [FIXTURE_IMAGE])
            print(f"\n(a) chart-testing loop, {args.apps} apps:", flush=True)
            loop = chart_testing_loop(helm, kubeconfig, args.apps)
            print(f"  {loop.seconds:.1f}s wall")
            for step in ("install", "test", "uninstall"):
                print(f"    {step:<10} {spread([s[step] for s in loop.steps])}")
            for failure in loop.failures:
                print(f"    failed: {failure}")
            print(f"\n(b), (b'), (c): {args.apps} one-app suites, [ready, helmTest]:", flush=True)
            write_web_suites(tmp / "web", args.apps, "[{ready: {}}, {helmTest: {}}]")
            b = harness_run(tmp / "web", kubeconfig, "b", [], {})
            describe_harness(b)
            b0 = harness_run(tmp / "web", kubeconfig, "b0", ["--metrics-wait=0"], {})
            describe_harness(b0)
            variants = []
            for at_once in args.also_max_parallel:
                extra = [f"--max-parallel={at_once}"]
                variant = harness_run(tmp / "web", kubeconfig, f"b{at_once}", extra, {})
                describe_harness(variant)
                variants.append((f"(b) with --max-parallel {at_once}", variant, None))
            c = harness_run(tmp / "web", kubeconfig, "c", ["-n", "4"], {})
            describe_harness(c)
            workers = ", ".join(f"{mb:.0f}" for mb in c.run.child_rss_mb.values())
            print(f"    (c) max RSS MB: workers [{workers}], controller {c.run.main_rss_mb:.0f}")
            if not args.skip_memory and not kind:
                print(f"\n(d) {args.memory_apps} one-app suites, [ready], one process:")
                write_web_suites(tmp / "memory", args.memory_apps, "[{ready: {}}]")
                extra = ["--metrics-wait=0"]
                memory = harness_run(tmp / "memory", kubeconfig, "d", extra, {})
                describe_harness(memory)
                print(f"    max RSS (VmHWM) of the pytest process: {memory.run.main_rss_mb:.0f} MB")
            if not kind:
                print("\n(e) fast-fail: ready (timeout 120s) of pods that cannot start:")
                fails, fails_run = fast_fail(tmp / "fastfail", kubeconfig)
                print(f"  {fails_run.run.seconds:.1f}s wall, exit {fails_run.run.exit_code}")
            for f in fails:
                print(
                    f"    {f.app:<14} {f.condition:<17} ready {f.outcome}, item "
                    f"{_s(f.item_s)}, condition seen -> failed {_s(f.latency_s)} (from the "
                    f"API's lastTransitionTime {_s(f.api_latency_s)})\n      {f.message}"
                )
        finally:
            provider.delete(name)
            print(f"{args.cluster} cluster {name} deleted", flush=True)
        examples = None
        if not args.skip_examples:
            print("\nscripts/run-examples (as it is; reports to a temporary folder):", flush=True)
            examples = run_examples(tmp / "examples-report")
            cluster = (examples.results.get("cluster") or {}).get("provider")
            print(
                f"  {examples.total_s:.1f}s in all, {_s(examples.after_setup_s)} after set-up; "
                f"exit {examples.exit_code}, cluster {cluster}, "
                f"outcomes {examples.results.get('outcomes', {})}, pytest's duration_s "
                f"{examples.results.get('duration_s', float('nan')):.1f}\n  {examples.tail}"
            )
            print(f"  {examples.cluster_line.strip()}")
            describe_examples(examples.results)
    a = loop.seconds
    print(f"\nSummary ({args.apps} apps, {delays}, {os.cpu_count()} cores):")
    print(f"  {'figure':<48} {'value':>10}  {'ratio':>7}  goal")
    print(f"  {'(a) helm install --wait / test / uninstall':<48} {a:>9.1f}s")
    for label, outcome, goal in (
        ("(b) helm-harness, defaults", b, GOAL_B),
        ("(b') the same, --metrics-wait=0", b0, None),
        *variants,
        ("(c) the same as (b), -n 4", c, GOAL_C),
    ):
        ratio = a / outcome.run.seconds
        judged = f">= {goal:g}x {verdict(ratio >= goal)}" if goal else "(no goal)"
        print(f"  {label:<48} {outcome.run.seconds:>9.1f}s  {ratio:>6.2f}x  {judged}")
    if memory is not None:
        mb = memory.run.main_rss_mb
        label = f"(d) peak RSS, {args.memory_apps} apps, one process"
        print(f"  {label:<48} {mb:>8.0f}MB  {'':>7}  <= 200 MB {verdict(mb <= GOAL_RSS_MB)}")
    for f in fails:
        ok = f.latency_s is not None and f.latency_s <= GOAL_FAST_FAIL_S
        label = f"(e) {f.condition} -> failed item"
        print(f"  {label:<48} {_s(f.latency_s):>10}  {'':>7}  <= 5 s {verdict(ok)}")
    if examples is not None:
        after = examples.after_setup_s
        ok = after is not None and after <= GOAL_EXAMPLES_S and examples.exit_code == 0
        label = "scripts/run-examples, after set-up"
        print(f"  {label:<48} {_s(after):>10}  {'':>7}  <= 25 s {verdict(ok)}")
    codes = [b.run.exit_code, b0.run.exit_code, c.run.exit_code]
    if loop.failures or any(codes) or (memory is not None and memory.run.exit_code):
        print("  note: a run did not pass (see above)")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


if __name__ == "__main__":
    main()
