"""The ``helm-harness`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import tools
from harness.errors import HarnessError, UsageError
from harness.units import parse_duration

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 4  # pytest's usage-error code


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_cluster_options(parser: argparse.ArgumentParser, *, default_cluster: str) -> None:
    parser.add_argument(
        "--cluster",
        default=default_cluster,
        choices=["auto", "kwok", "existing"],
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
    install.add_argument("--metrics-server", action="store_true", help="also build metrics-server")
    tools_sub.add_parser("path", help="print the binary cache folder")
    tools_sub.add_parser("check", help="say which binaries are present")

    cluster = commands.add_parser("cluster", help="manage clusters by hand")
    cluster_sub = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = cluster_sub.add_parser("up", help="create a cluster (or reuse it with --reuse)")
    _add_cluster_options(up, default_cluster="kwok")
    up.add_argument("--config", type=Path, help="provider config file (kwokctl -c)")
    up.add_argument("--nodes", type=int, default=1, help="simulated nodes (kwok; default 1)")
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
        if missing:
            print(
                f"missing: {', '.join(missing)}; install with: {tools.INSTALL_HINT}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return EXIT_OK
    print(tools.install(helm4=args.helm4, metrics_server=args.metrics_server))
    return EXIT_OK


def _cluster(args: argparse.Namespace) -> int:
    from harness.clusters import ClusterSpec, acquire, get_provider

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
    spec = ClusterSpec(name=args.name, config=args.config, nodes=args.nodes, wait_seconds=args.wait)
    provider.check()
    print(f"starting {provider.name} cluster {args.name} ...", file=sys.stderr)
    info = acquire(provider, spec, reuse=args.reuse)
    verb = "created" if info.created else "reusing"
    print(f"{verb} {info.provider} cluster {info.name}; kubeconfig:", file=sys.stderr)
    print(info.kubeconfig)
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from harness.suite import SuiteError, find_suite_files, load_suite

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
    for path in unique.values():
        try:
            suite = load_suite(path)
        except SuiteError as exc:
            print(exc)
            invalid += 1
            continue
        checks = sum(len(app.checks or ()) for app in suite.apps)
        print(f"ok  {path} ({_count(len(suite.apps), 'app')}, {_count(checks, 'check')})")
    if invalid:
        print(f"helm-harness: {invalid} of {len(unique)} suite files invalid", file=sys.stderr)
    return EXIT_USAGE if invalid or usage_problem else EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "tools":
            return _tools(args)
        if args.command == "cluster":
            return _cluster(args)
        if args.command == "validate":
            return _validate(args)
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
