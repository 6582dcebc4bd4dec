"""The one table of helm-harness's pytest options, and the parsers of their values.

``pytest_addoption`` adds every row, as a command-line option and as an ini key
(``helm_harness_<flag>`` in ``pytest.ini``, ``tox.ini``, ``setup.cfg`` or pyproject's
``[tool.pytest.ini_options]``); ``helm-harness run`` derives from it which options take a
value (:data:`VALUE_OPTIONS`); the docs' option table lists the same rows. The provider
choices come from the provider registry. A bad value is a usage error (exit code 4).

Where a value comes from, first found wins: the command line, the option's environment
variable (three have one), the ini key, the built-in default. So the command line
starts every option as "not given" (``None``) and :func:`resolve` fills in the rest, before
any ``pytest_configure`` reads them. A repeatable option (``--notify``) is a list: given
once or more on the command line, or as values separated by white space in its
environment variable or ini key; the first place that gives any wins, as for the others.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from harness.clusters.registry import PROVIDER_CHOICES
from harness.report.notify import parse_target
from harness.units import normalize_k8s_version, parse_duration


def value_type(parse: Callable[[str], Any], error: type[Exception]) -> Callable[[str], Any]:
    """An option's type function: ``parse``, its ValueError re-raised as ``error`` (pytest's
    UsageError here; argparse's ArgumentTypeError in the ``helm-harness`` command)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise error(str(exc)) from exc

    convert.__name__ = parse.__name__
    return convert


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {text}")
    return path


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"not a count: {text!r}")
    return int(text)


def _branch(text: str) -> str:
    if not text.strip() or text.startswith("-") or any(c.isspace() for c in text):
        raise ValueError(f"not a branch name: {text!r}")
    return text


duration = value_type(parse_duration, pytest.UsageError)
branch = value_type(_branch, pytest.UsageError)
existing_file = value_type(_existing_file, pytest.UsageError)
count = value_type(_count, pytest.UsageError)
k8s_version = value_type(normalize_k8s_version, pytest.UsageError)
notify_target = value_type(parse_target, pytest.UsageError)


@dataclass(frozen=True)
class Option:
    """One option: its flag, where pytest keeps it (``config.option.<dest>``), its value."""

    flag: str
    dest: str
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    # "store_true", argparse.BooleanOptionalAction, "append" (repeatable: a list of values),
    # or None: takes a value
    action: Any = None
    env: str | None = None  # an environment variable that gives the value
    path: bool = False  # a path: in an ini file, relative to that file's folder
    secret: bool = False  # a value never quoted in messages (a URL with a token)

    @property
    def takes_value(self) -> bool:
        return self.action is None or self.repeatable

    @property
    def repeatable(self) -> bool:
        return bool(self.action == "append")

    @property
    def ini(self) -> str:
        """The ini key: ``--cluster-name`` is ``helm_harness_cluster_name``."""
        return "helm_harness_" + self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, group: Any, parser: pytest.Parser) -> None:
        # None: not given on the command line (resolve() fills in the rest)
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help, "default": None}
        for name in ("type", "metavar", "choices", "action"):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = list(value) if name == "choices" else value
        group.addoption(self.flag, **kwargs)
        parser.addini(self.ini, f"{self.help} (as {self.flag})", type=self.ini_type, default=None)

    @property
    def ini_type(self) -> Literal["bool", "string"]:
        return "string" if self.takes_value else "bool"

    def convert(self, text: str, *, base: Path | None = None) -> Any:
        """``text`` (from the environment or an ini file) as the command line would have it:
        for a repeatable option, each of its values separated by white space."""
        if self.repeatable:
            return [self._convert_one(part, base=base) for part in text.split()]
        return self._convert_one(text, base=base)

    def _convert_one(self, text: str, *, base: Path | None = None) -> Any:
        if self.path and base is not None and not Path(text).expanduser().is_absolute():
            text = str(base / text)
        if self.choices is not None and text not in self.choices:
            raise pytest.UsageError(f"{text!r} is not one of {', '.join(self.choices)}")
        return self.type(text) if self.type is not None else text

    def value(self, config: pytest.Config) -> Any:
        """This option's value in ``config``: the command line's, else the environment's,
        else the ini file's, else the default."""
        given = getattr(config.option, self.dest, None)
        if given is not None:
            return given
        if self.env and os.environ.get(self.env):
            return self._converted(os.environ[self.env], f"${self.env}")
        raw = config.getini(self.ini)  # also from `-o KEY=VALUE`
        if raw is not None:
            if not self.takes_value:
                return bool(raw)
            where = f"{self.ini} in {config.inipath}" if config.inipath else self.ini
            return self._converted(str(raw).strip(), where, base=_ini_folder(config))
        if isinstance(self.default, str) and self.type is not None:
            return self.type(self.default)
        return self.default

    def _converted(self, text: str, where: str, *, base: Path | None = None) -> Any:
        try:
            return self.convert(text, base=base)
        except pytest.UsageError as exc:
            shown = "(not shown: it may hold a token)" if self.secret else repr(text)
            raise pytest.UsageError(f"{where} = {shown}: {exc}") from None


def _ini_folder(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath is not None else config.rootpath


OPTIONS: tuple[Option, ...] = (
    Option(
        "--cluster",
        "harness_cluster",
        f"cluster provider: {', '.join(PROVIDER_CHOICES)} (default auto)",
        default="auto",
        metavar="PROVIDER",
        choices=PROVIDER_CHOICES,
    ),
    Option(
        "--cluster-name",
        "harness_cluster_name",
        "cluster name (default: hh-<run id>; helm-harness with --reuse-cluster)",
        metavar="NAME",
    ),
    Option(
        "--cluster-config",
        "harness_cluster_config",
        "the provider's config: kind and k3d --config, extra kwokctl -c for kwok",
        type=existing_file,
        metavar="FILE",
        path=True,
    ),
    Option(
        "--k8s-version",
        "harness_k8s_version",
        "Kubernetes version of a created cluster, e.g. 1.36 or v1.36.4 (kind, k3d, k3s)",
        type=k8s_version,
        metavar="VERSION",
    ),
    Option(
        "--kubeconfig",
        "harness_kubeconfig",
        "kubeconfig of an existing cluster",
        type=existing_file,
        metavar="FILE",
        path=True,
    ),
    Option("--context", "harness_context", "context in --kubeconfig", metavar="NAME"),
    Option(
        "--kind-image",
        "harness_kind_image",
        "kind node image of a created cluster (default: $HELM_HARNESS_KIND_IMAGE, else the "
        "kind config's nodes[].image, else from --k8s-version, else kind's own)",
        metavar="IMAGE",
        env="HELM_HARNESS_KIND_IMAGE",
    ),
    Option(
        "--load-images",
        "harness_load_images",
        "kind, k3d: before an app installs, load the images its manifests name from the "
        "local Docker engine into the cluster (default: yes)",
        default=True,
        action=argparse.BooleanOptionalAction,
    ),
    Option(
        "--reuse-cluster",
        "harness_reuse_cluster",
        "use the named cluster if it exists, create it if not, never delete it",
        default=False,
        action="store_true",
    ),
    Option(
        "--keep-cluster",
        "harness_keep_cluster",
        "do not delete the cluster at the end",
        default=False,
        action="store_true",
    ),
    Option(
        "--keep-on-failure",
        "harness_keep_on_failure",
        "keep the namespaces (and the cluster) of failed apps for inspection",
        default=False,
        action="store_true",
    ),
    Option(
        "--cluster-nodes",
        "harness_nodes",
        "simulated nodes of a kwok cluster (default 1)",
        default=1,
        type=count,
        metavar="N",
    ),
    Option(
        "--kwok-pod-startup",
        "harness_pod_startup",
        "kwok: delay before a pod turns Ready (default 2s; 0: none)",
        default="2s",
        type=duration,
        metavar="DURATION",
    ),
    Option(
        "--kwok-pod-jitter",
        "harness_pod_jitter",
        "kwok: up to this much extra random delay (default 2s)",
        default="2s",
        type=duration,
        metavar="DURATION",
    ),
    Option(
        "--helm",
        "harness_helm",
        "helm binary (default: helm on PATH, else the harness's cache)",
        metavar="PATH",
    ),
    Option(
        "--cluster-timeout",
        "harness_cluster_timeout",
        "how long a new cluster may take to become usable (default 2m)",
        default="2m",
        type=duration,
        metavar="DURATION",
    ),
    Option(
        "--metrics-wait",
        "harness_metrics_wait",
        "how long an app's metric snapshot may wait for figures of new pods "
        "(default 20s, or $HELM_HARNESS_METRICS_WAIT; 0: take what is there)",
        default="20s",
        type=duration,
        metavar="DURATION",
        env="HELM_HARNESS_METRICS_WAIT",
    ),
    Option(
        "--metrics-source",
        "harness_metrics_source",
        "where metric snapshots read CPU and memory: kubelet (the nodes' resource metrics "
        "through the API server, at once), metrics-api (metrics.k8s.io: waits for "
        "metrics-server's scrapes), auto (kubelet, else metrics-api; the default)",
        default="auto",
        choices=("auto", "kubelet", "metrics-api"),
        metavar="SOURCE",
    ),
    Option(
        "--max-parallel",
        "harness_max_parallel",
        "apps brought up at once, ahead of their items: installed, checked and their "
        "metrics taken in threads while earlier apps' items report (default 16; 1: each app "
        "when its items run)",
        default=16,
        type=count,
        metavar="N",
    ),
    Option(
        "--api-retry",
        "harness_api_retry",
        "how long a Kubernetes API request retries a transient failure (no answer, 429, 5xx) "
        "before the item fails (default 30s; 0: never)",
        default="30s",
        type=duration,
        metavar="DURATION",
    ),
    Option(
        "--shard",
        "harness_shard",
        "run the K-th of N disjoint parts (whole dependency groups), e.g. 2/4",
        metavar="K/N",
    ),
    Option(
        "--upgrade",
        "harness_upgrade",
        "upgrade runs: install each app's upgrade.from, check, upgrade, check, roll back, check",
        default=False,
        action="store_true",
    ),
    Option(
        "--lint",
        "harness_lint",
        "lint each app before its install, as an item <file>::<app>::lint: helm lint, and a "
        "server-side dry-run of what the chart renders; when it fails, nothing of the app "
        "is installed",
        default=False,
        action="store_true",
    ),
    Option(
        "--lint-only",
        "harness_lint_only",
        "only the lint items (implies --lint): nothing is installed (helm-harness lint)",
        default=False,
        action="store_true",
    ),
    Option(
        "--upgrade-from-git-base",
        "harness_upgrade_from_git_base",
        "upgrade.from {git: REF} charts come from the merge base of HEAD and BRANCH "
        "(origin/BRANCH when there is one) instead of REF: a pull request's base",
        type=branch,
        metavar="BRANCH",
    ),
    Option(
        "--cluster-per-worker",
        "harness_cluster_per_worker",
        "with -n N: a cluster per xdist worker instead of one shared by all",
        default=False,
        action="store_true",
    ),
    Option(
        "--notify",
        "harness_notify",
        "when something failed, send one message about the run to URL (repeatable): Slack's "
        "body for hooks.slack.com/services URLs and slack+https://..., else JSON (default: "
        "$HELM_HARNESS_NOTIFY, URLs separated by spaces)",
        default=(),
        type=notify_target,
        metavar="URL",
        action="append",
        env="HELM_HARNESS_NOTIFY",
        secret=True,
    ),
    Option(
        "--notify-timeout",
        "harness_notify_timeout",
        "how long the run's alerts may take in all, retries included (default 30s)",
        default="30s",
        type=duration,
        metavar="DURATION",
    ),
    Option(
        "--history",
        "harness_history",
        "append the run's record to a history store: a SQLite file, or a postgresql:// URL "
        "(default: $HELM_HARNESS_HISTORY; none)",
        metavar="FILE|URL",
        env="HELM_HARNESS_HISTORY",
        secret=True,
    ),
    Option(
        "--report-dir",
        "harness_report_dir",
        "where reports and failure bundles go (default: harness-report)",
        default="harness-report",
        metavar="DIR",
        path=True,
    ),
)

# The flags whose value follows them (``helm-harness run`` joins ``--flag VALUE``).
VALUE_OPTIONS = frozenset(option.flag for option in OPTIONS if option.takes_value)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("helm-harness", "helm-harness: clusters and charts")
    for option in OPTIONS:
        option.add_to(group, parser)


def resolve(config: pytest.Config) -> None:
    """Give every option its value (command line, environment, ini file, default) in
    ``config.option``. Idempotent: a value once set is the command line's from then on."""
    for option in OPTIONS:
        setattr(config.option, option.dest, option.value(config))
