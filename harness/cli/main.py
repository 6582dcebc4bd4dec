"""The ``helm-harness`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import tools
from harness.clusters.registry import PROVIDER_CHOICES
from harness.errors import HarnessError, UsageError
from harness.plugin.options import value_type
from harness.units import normalize_k8s_version, parse_duration

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 4  # pytest's usage-error code


_duration = value_type(parse_duration, argparse.ArgumentTypeError)
_k8s_version = value_type(normalize_k8s_version, argparse.ArgumentTypeError)


def _add_cluster_options(parser: argparse.ArgumentParser, *, default_cluster: str) -> None:
    parser.add_argument(
        "--cluster",
        default=default_cluster,
        choices=PROVIDER_CHOICES,
        help="cluster provider (default: %(default)s)",
    )
    parser.add_argument(
        "--name",
        "--cluster-name",
        dest="name",
        default="helm-harness",
        help="cluster name (default: %(default)s)",
    )
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig for --cluster existing")
    parser.add_argument("--context", help="context in --kubeconfig")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helm-harness",
        description="Install Helm charts on throwaway clusters and prove them healthy.",
    )
    parser.add_argument("--version", action="version", version=f"helm-harness {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tools_cmd = commands.add_parser(
        "tools", help="install or locate the binaries kwok clusters need"
    )
    tools_sub = tools_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = tools_sub.add_parser(
        "install", help="build missing binaries into the cache (needs Go)"
    )
    install.add_argument("--helm4", action="store_true", help="also build Helm 4 (as helm4)")
    install.add_argument(
        "--metrics-server",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="build metrics-server, for the metrics.k8s.io API on kwok clusters (default: yes)",
    )
    install.add_argument(
        "--registry", action="store_true", help="also build an OCI registry (for tests)"
    )
    install.add_argument(
        "--kind",
        action="store_true",
        help="also provision the kind test bed: Docker engine, host egress guard, kind, and a "
        "node image built on this machine (clusters/kind/install.sh; needs root for Docker)",
    )
    tools_sub.add_parser("path", help="print the binary cache folder")
    tools_sub.add_parser("check", help="say which binaries are present")

    cluster = commands.add_parser("cluster", help="manage clusters by hand")
    cluster_sub = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = cluster_sub.add_parser("up", help="create a cluster (or reuse it with --reuse)")
    _add_cluster_options(up, default_cluster="kwok")
    up.add_argument("--config", type=Path, help="provider config file (kwokctl -c)")
    up.add_argument("--nodes", type=int, default=1, help="simulated nodes (kwok; default 1)")
    up.add_argument(
        "--k8s-version",
        type=_k8s_version,
        metavar="VERSION",
        help="Kubernetes version, e.g. 1.36 or v1.36.4 (kind node image, k3s image)",
    )
    up.add_argument(
        "--kind-image",
        metavar="IMAGE",
        default=os.environ.get("HELM_HARNESS_KIND_IMAGE") or None,
        help="kind node image (default: $HELM_HARNESS_KIND_IMAGE, else the config's, else kind's)",
    )
    up.add_argument("--reuse", action="store_true", help="use the cluster if it exists")
    up.add_argument(
        "--pod-startup",
        type=_duration,
        default=2.0,
        metavar="DURATION",
        help="kwok: delay before a pod turns Ready (default 2s)",
    )
    up.add_argument(
        "--pod-jitter",
        type=_duration,
        default=2.0,
        metavar="DURATION",
        help="kwok: extra random delay, up to this much (default 2s)",
    )
    up.add_argument(
        "--wait",
        type=_duration,
        default=120.0,
        metavar="DURATION",
        help="how long to wait for the control plane (default 2m)",
    )
    down = cluster_sub.add_parser("down", help="delete a cluster")
    _add_cluster_options(down, default_cluster="kwok")
    listing = cluster_sub.add_parser("list", help="list clusters")
    _add_cluster_options(listing, default_cluster="kwok")
    sweeping = cluster_sub.add_parser(
        "sweep",
        help="delete the clusters and namespaces the harness made that no live run owns",
    )
    sweeping.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    sweeping.add_argument(
        "--kubeconfig", type=Path, help="also sweep namespaces on this (existing) cluster"
    )
    sweeping.add_argument("--context", help="context in --kubeconfig")
    sweeping.add_argument(
        "--name",
        metavar="PATTERN",
        help="only clusters whose name matches this shell pattern, e.g. 'hh-*'",
    )
    sweeping.add_argument(
        "--older-than",
        type=_duration,
        metavar="DURATION",
        help="only clusters created longer ago than this, e.g. 2h (a cluster made seconds "
        "ago by a run that has just handed it over is left alone)",
    )

    validate = commands.add_parser(
        "validate", help="check suite files against the schema, without a cluster"
    )
    validate.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="suite files, or folders to search for them",
    )

    changed = commands.add_parser(
        "changed",
        help="list the charts a change touches (since a ref, or the target branch) and the "
        "suites that use them",
    )
    changed.add_argument(
        "--since",
        metavar="REF",
        help="compare with the merge base of HEAD and REF (default: with the target branch)",
    )
    changed.add_argument(
        "--target-branch",
        default="main",
        metavar="BRANCH",
        help="without --since: origin/BRANCH, else BRANCH (default: %(default)s)",
    )
    changed.add_argument(
        "--suites",
        type=Path,
        default=Path("suites"),
        metavar="PATH",
        help="a suite file, or a folder to search for them (default: %(default)s)",
    )
    changed.add_argument(
        "--exclude",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="folders (or files) whose charts and suites are left out",
    )
    changed.add_argument(
        "--format", choices=("text", "json"), default="text", help="output (default: %(default)s)"
    )

    schema = commands.add_parser(
        "schema", help="print the suite files' JSON Schema (for editors: docs/suites.md)"
    )
    schema.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write it to FILE instead of stdout"
    )

    init = commands.add_parser(
        "init", help="write a starter suite for a chart, from what `helm template` renders"
    )
    init.add_argument(
        "chart", metavar="CHART", help="a chart folder or .tgz, a name in --repo, or oci://..."
    )
    init.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write (default: ./<name>.suite.yaml; - for stdout)",
    )
    init.add_argument("--repo", metavar="URL", help="the chart repository holding CHART")
    init.add_argument("--version", metavar="V", help="the chart version (repo and OCI charts)")
    init.add_argument("--name", metavar="NAME", help="the app's name (default: the chart's)")
    init.add_argument("--force", action="store_true", help="replace FILE if it exists")
    init.add_argument("--helm", metavar="PATH", help="the helm binary (default: as for runs)")

    commands.add_parser(
        "run",
        help="run suites (default: ./suites) with pytest, with progress; "
        "any pytest or helm-harness option may follow",
        add_help=False,
    )
    commands.add_parser(
        "lint",
        help="lint each app without installing it: helm lint, and a server-side dry-run of "
        "what its chart renders (default: ./suites, on kwok); run's options may follow",
        add_help=False,
    )

    report = commands.add_parser(
        "report", help="re-render report.html and report.md of a report dir from its results.json"
    )
    report.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="the report dir(s)")
    report.add_argument(
        "--merge",
        action="store_true",
        help="merge the report dirs of a sharded run (--shard K/N) into --output",
    )
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("harness-report"),
        metavar="DIR",
        help="with --merge: where the merged report goes (default: harness-report)",
    )

    from harness.report.history import add_history_parser

    add_history_parser(commands)
    return parser


def _version() -> str:
    from harness import __version__

    return __version__


def _tools(args: argparse.Namespace) -> int:
    if args.action == "path":
        print(tools.bin_dir())
        return EXIT_OK
    if args.action == "check":
        missing = [
            name for name in (*tools.KWOK_BINARIES, "helm") if tools.find_binary(name) is None
        ]
        for name in (*tools.KWOK_BINARIES, "helm"):
            print(f"{name:26} {tools.find_binary(name) or 'MISSING'}")
        for name in tools.KWOK_OPTIONAL_BINARIES:
            print(f"{name:26} {tools.find_binary(name) or 'not installed (optional)'}")
        if missing:
            print(
                f"missing: {', '.join(missing)}; install with: {tools.INSTALL_HINT}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return EXIT_OK
    print(
        tools.install(helm4=args.helm4, metrics_server=args.metrics_server, registry=args.registry)
    )
    if args.kind:
        print(tools.install_kind())
    return EXIT_OK


def _cluster(args: argparse.Namespace) -> int:
    from harness.clusters.registry import ClusterSpec, acquire, get_provider

    if args.action == "sweep":
        return _sweep(args)
    options = {"kubeconfig": args.kubeconfig, "context": args.context}
    if args.action == "up":
        options |= {"pod_startup": args.pod_startup, "pod_jitter": args.pod_jitter}
    provider = get_provider(args.cluster, **options)
    if args.action == "list":
        for name in provider.list():
            print(name)
        return EXIT_OK
    if args.action == "down":
        if not provider.exists(args.name):
            print(f"no {provider.name} cluster named {args.name!r}", file=sys.stderr)
            return EXIT_FAILED
        provider.delete(args.name)
        print(f"deleted {provider.name} cluster {args.name}", file=sys.stderr)
        return EXIT_OK
    if provider.name == "kwok":
        from harness.clusters.kwok import check_k8s_version

        check_k8s_version(args.k8s_version)
    spec = ClusterSpec(
        name=args.name,
        config=args.config,
        k8s_version=args.k8s_version,
        nodes=args.nodes,
        wait_seconds=args.wait,
        image=args.kind_image,
        logs_dir=Path.cwd(),
    )
    provider.check()
    print(f"starting {provider.name} cluster {args.name} ...", file=sys.stderr)
    info = acquire(provider, spec, reuse=args.reuse)
    verb = "created" if info.created else "reusing"
    print(f"{verb} {info.provider} cluster {info.name}; kubeconfig:", file=sys.stderr)
    print(info.kubeconfig)
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    import fnmatch

    from harness.clusters.records import ClusterRecord
    from harness.clusters.sweep import sweep

    if args.kubeconfig is not None and not args.kubeconfig.is_file():
        raise UsageError(f"--kubeconfig {args.kubeconfig}: no such file")

    def selected(record: ClusterRecord) -> bool:
        if args.name and not fnmatch.fnmatchcase(record.name, args.name):
            return False
        return args.older_than is None or record.age > args.older_than

    result = sweep(
        dry_run=args.dry_run,
        kubeconfig=args.kubeconfig,
        context=args.context,
        select=selected,
        sweeper_pid=os.getpid(),
    )
    for line in result.removed:
        print(line)
    for line in result.errors:
        print(f"helm-harness: {line}", file=sys.stderr)
    if not result.removed:
        print("nothing to sweep", file=sys.stderr)
    for line in result.kept:
        print(f"kept {line}: a live run holds it", file=sys.stderr)
    return EXIT_FAILED if result.errors else EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from harness.suite.model import SuiteError, find_suite_files, load_suite, name_collisions

    files: list[Path] = []
    usage_problem = False
    for path in args.paths:
        if path.is_dir():
            found = find_suite_files(path)
            if not found:
                print(f"helm-harness: error: no suite files found in {path}", file=sys.stderr)
                usage_problem = True
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            print(f"helm-harness: error: no such file or folder: {path}", file=sys.stderr)
            usage_problem = True
    unique: dict[Path, Path] = {}  # a file named twice is checked once
    for path in files:
        unique.setdefault(path.resolve(), path)
    invalid = 0
    suites = []
    for path in unique.values():
        try:
            suite = load_suite(path)
        except SuiteError as exc:
            print(exc)
            invalid += 1
            continue
        suites.append(suite)
        checks = sum(len(app.checks or ()) for app in suite.apps)
        print(f"ok  {path} ({_count(len(suite.apps), 'app')}, {_count(checks, 'check')})")
    for problem in name_collisions(suites):
        print(f"helm-harness: error: {problem}", file=sys.stderr)
        usage_problem = True
    if invalid:
        print(f"helm-harness: {invalid} of {len(unique)} suite files invalid", file=sys.stderr)
    return EXIT_USAGE if invalid or usage_problem else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from harness.report.merge import merge, rerender

    if args.merge:
        print(merge(args.dirs, args.output))
        return EXIT_OK
    if len(args.dirs) > 1:
        raise UsageError("give one report dir, or several with --merge")
    print(rerender(args.dirs[0]))
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    import json

    from harness.files import write_atomic
    from harness.suite.model import suite_schema

    text = json.dumps(suite_schema(), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        write_atomic(args.output, text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from harness.cli.init import init

    result = init(
        tools.find_helm(args.helm),
        args.chart,
        output=args.output,
        repo=args.repo,
        version=args.version,
        name=args.name,
        force=args.force,
    )
    for warning in result.warnings:
        print(f"helm-harness: warning: {warning}", file=sys.stderr)
    if result.path is None:
        sys.stdout.write(result.text)
    else:
        print(f"wrote {result.path}: app {result.app}, items {', '.join(result.items)}")
    if result.variants:
        print(
            "valuesMatrix: the chart's ci/*-values.yaml files make one app each: "
            + ", ".join(result.variants),
            file=sys.stderr if result.path is None else sys.stdout,
        )
    return EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


RUN_HELP = """usage: helm-harness run [PATH...] [pytest and helm-harness options]

Runs the suite files (and Python tests) under PATH (default: ./suites) with pytest, shows
progress (cluster start, each app's phases), writes reports to --report-dir (default
harness-report/), and exits with pytest's exit code. Examples:

  helm-harness run                              # ./suites on a cluster it starts (--cluster auto)
  helm-harness run suites/web.suite.yaml -n 4   # four xdist workers sharing one cluster
  helm-harness run --upgrade --shard 2/4        # the second quarter of the upgrade run
  helm-harness run --kubeconfig ~/.kube/config --context dev
  helm-harness run --changed-since origin/main  # only the suites that use what changed

--changed-since REF keeps, of the suite files under PATH, those that `helm-harness changed
--since REF` selects (changed since the merge base of HEAD and REF, uncommitted edits
included); Python test files are left out. When none is selected it says so and exits 0.

The helm-harness options are listed under "helm-harness" in: pytest --help
"""


def _value_options() -> frozenset[str]:
    """Options of ours that take a value: written OPTION=VALUE before pytest sees them,
    since pytest picks its rootdir before plugin options are known and would take the
    value for a test path. Derived from the plugin's option table."""
    from harness.plugin.options import VALUE_OPTIONS

    return VALUE_OPTIONS


def pytest_args(args: Sequence[str]) -> list[str]:
    """The pytest command line ``helm-harness run ARGS`` stands for."""
    from harness.cli.changed import changed_only, take_run_option

    since, args = take_run_option(args)
    joined: list[str] = []
    pending: str | None = None
    for arg in args:
        if pending is not None:
            joined.append(f"{pending}={arg}")
            pending = None
        elif arg in _value_options():
            pending = arg
        else:
            joined.append(arg)
    if pending is not None:
        raise UsageError(f"{pending} needs a value")
    given_paths = [
        arg for arg in joined if not arg.startswith("-") and Path(arg.split("::")[0]).exists()
    ]
    if not given_paths:
        if not Path("suites").is_dir():
            raise UsageError("no PATH given and there is no ./suites folder")
        joined.append("suites")
        given_paths = ["suites"]
    if since is not None:
        joined = changed_only(joined, given_paths, since)
    # The command has imported the harness before pytest could rewrite its asserts: fine.
    # -rfE: failures and errors in the short summary; skips are summarised by the progress
    return ["-rfE", "-W", "ignore::pytest.PytestAssertRewriteWarning", *joined]


def _run(args: Sequence[str]) -> int:
    import pytest

    from harness.cli.changed import NothingToRun
    from harness.plugin.progress import Progress

    if "-h" in args or "--help" in args:
        print(RUN_HELP)
        return EXIT_OK
    try:
        argv = pytest_args(args)
    except NothingToRun as exc:
        print(exc)
        return EXIT_OK
    return int(pytest.main(argv, plugins=[Progress()]))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["run"], ["lint"]):
        try:
            if argv[0] == "lint":
                from harness.cli.lint import lint

                return lint(argv[1:], pytest_args)
            return _run(argv[1:])
        except UsageError as exc:
            print(f"helm-harness: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except HarnessError as exc:  # before pytest starts: git missing for --changed-since
            print(f"helm-harness: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "tools":
            return _tools(args)
        if args.command == "cluster":
            return _cluster(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "report":
            return _report(args)
        if args.command == "init":
            return _init(args)
        if args.command == "schema":
            return _schema(args)
        if args.command == "history":
            from harness.report.history import history_command

            return history_command(args)
        if args.command == "changed":
            from harness.cli.changed import changed

            return changed(args)
    except UsageError as exc:
        print(f"helm-harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HarnessError as exc:
        print(f"helm-harness: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("helm-harness: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
