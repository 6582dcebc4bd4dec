"""``helm-harness init``: a starter suite for a chart, from what ``helm template`` renders.

The chart is rendered with its default values for the Kubernetes version the harness's own
clusters run (:data:`harness.tools.K8S_VERSION`), hooks included. The suite gets one app
whose checks are ``ready`` (covering every workload rendered), ``helmTest`` when the chart
has test hooks, and an ``http`` check on each Service port that looks like plain HTTP. The
file is validated with :func:`harness.suite.model.load_suite` before it is written, and an
existing file is never overwritten unless asked.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.checks.helm_test import TEST_HOOKS
from harness.errors import HelmError, UsageError
from harness.helm.client import Helm
from harness.kube import manifests
from harness.kube.readiness import PREDICATES, service_needs_endpoints
from harness.suite.model import SuiteError, load_suite
from harness.tools import K8S_VERSION

APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
HTTP_PORT_NUMBERS = {80, 3000, 5000, 8000, 8080, 8888}
TLS_PORT_NUMBERS = {443, 8443}
TLS_WORDS = ("https", "tls", "ssl", "grpc")


@dataclass(frozen=True)
class HttpCheck:
    """A Service port that looks like plain HTTP, and the path worth asking for."""

    service: str
    port: int
    port_name: str
    path: str


@dataclass
class Rendered:
    """What the chart renders that a starter suite cares about."""

    workloads: list[str] = field(
        default_factory=list
    )  # "Deployment/web-web", what `ready` waits on
    test_hooks: list[str] = field(default_factory=list)
    http: list[HttpCheck] = field(default_factory=list)
    claim_templates: list[str] = field(default_factory=list)  # StatefulSets with PVC templates


def render(
    helm: Path, chart: str, *, release: str, repo: str | None = None, version: str | None = None
) -> str:
    """``helm template`` of ``chart`` (hooks, tests and ``crds/`` included); a chart Helm
    cannot render is a :class:`UsageError` carrying Helm's reason."""
    flags = ["--kube-version", K8S_VERSION, "--include-crds"]
    try:
        return Helm(helm).template(
            release, chart, namespace="default", version=version, repo=repo, flags=flags
        )
    except HelmError as exc:
        raise UsageError(f"cannot render chart {chart}: {exc.reason}") from exc


def inspect(text: str) -> Rendered:
    """Sort the rendered objects into what ``ready``, ``helmTest`` and ``http`` will see."""
    found = Rendered()
    for obj in manifests.load_all(text):
        if not isinstance(obj, dict) or not obj.get("kind"):
            continue
        kind, name = str(obj["kind"]), str((obj.get("metadata") or {}).get("name", ""))
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        hook = str(annotations.get("helm.sh/hook", ""))
        if hook:
            if TEST_HOOKS & {part.strip() for part in hook.split(",")}:
                found.test_hooks.append(f"{kind}/{name}")
            continue  # other hooks are not part of the release `ready` looks at
        if kind in PREDICATES or (kind == "Service" and service_needs_endpoints(obj)):
            found.workloads.append(f"{kind}/{name}")
        if kind == "StatefulSet" and (obj.get("spec") or {}).get("volumeClaimTemplates"):
            found.claim_templates.append(name)
        if kind == "Service" and service_needs_endpoints(obj):
            found.http += _http_ports(name, obj["spec"].get("ports") or [])
    return found


def _http_ports(service: str, ports: Iterable[dict[str, Any]]) -> list[HttpCheck]:
    checks = []
    for port in ports:
        number = port.get("port")
        if not isinstance(number, int) or str(port.get("protocol", "TCP")).upper() != "TCP":
            continue
        name = str(port.get("name", "")).lower()
        protocol = str(port.get("appProtocol", "")).lower()
        if number in TLS_PORT_NUMBERS or any(word in f"{name} {protocol}" for word in TLS_WORDS):
            continue  # TLS: a plain GET would not get far
        looks_http = "http" in name or "http" in protocol or name in ("web", "metrics")
        if looks_http or number in HTTP_PORT_NUMBERS:
            path = "/metrics" if "metrics" in name else "/"
            checks.append(HttpCheck(service, number, name, path))
    return checks


def app_name(given: str | None, chart: str, *, local: bool) -> str:
    """``--name``, else the chart's name: from its Chart.yaml when local, else the last part
    of the reference (``shop``, ``oci://host/charts/shop``)."""
    if given is not None:
        if not APP_NAME.match(given) or len(given) > 53:
            raise UsageError(
                f"--name {given!r}: an app name is lower-case letters, digits and '-', starting "
                "and ending with a letter or digit, at most 53 characters"
            )
        return given
    base = chart.rstrip("/").rsplit("/", 1)[-1]
    if local:
        base = _local_chart_name(Path(chart)) or base
    return re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:53].strip("-") or "app"


def _local_chart_name(path: Path) -> str | None:
    try:
        if path.is_dir():
            meta = manifests.load((path / "Chart.yaml").read_text())
        else:
            with tarfile.open(path) as archive:
                member = next(
                    m
                    for m in archive.getmembers()
                    if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")
                )
                stream = archive.extractfile(member)
                meta = manifests.load(stream.read().decode("utf-8", "replace")) if stream else None
    except (OSError, StopIteration, tarfile.TarError, yaml.YAMLError):
        return None  # Helm will say what is wrong with it
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(name) if name else None


def suite_text(
    *,
    app: str,
    chart: str,
    chart_shown: str,
    repo: str | None,
    version: str | None,
    rendered: Rendered,
) -> str:
    """The starter suite: a comment header that explains each check, then the suite."""
    lines = [
        f"# A starter suite for the chart {chart_shown}, written by `helm-harness init`.",
        f"# It was read off `helm template` (default values, Kubernetes {K8S_VERSION}): edit it",
        "# to say what healthy means for this chart. Its checks:",
        "#",
        "# - ready: every object of the release that has a readiness becomes ready within the",
        "#   app's timeout. Here: " + (", ".join(rendered.workloads) or "nothing rendered has one"),
    ]
    for statefulset in rendered.claim_templates:
        lines += [
            f"#   StatefulSet/{statefulset} claims volumes: they bind only where the cluster has a",
            "#   storage provisioner (kind, k3d); on kwok, turn the chart's persistence off.",
        ]
    if rendered.test_hooks:
        lines += [
            "# - helmTest: `helm test` passes, running the chart's test hooks: "
            + ", ".join(rendered.test_hooks),
        ]
    for check in rendered.http:
        lines += [
            f"# - http: GET {check.path} on Service {check.service} port {check.port}"
            f"{f' ({check.port_name})' if check.port_name else ''} answers 200, through a",
            "#   port-forward to a ready pod behind it. Point `path` at a health endpoint, add",
            "#   `body: TEXT` under `expect` (on kwok clusters, where nothing serves, it skips).",
        ]
    lines += [
        "#",
        "# More: values/valuesFiles/set, timeout, runbook, upgrade: {from: ...}, and the checks",
        "# wait, logs, noRestarts, events, metrics, rbac, security, python (see the README).",
        "# Run it with: pytest THIS_FILE   (or helm-harness run THIS_FILE)",
        "apiVersion: helm-harness/v1",
        "kind: Suite",
        "apps:",
        f"  - name: {app}",
        f"    chart: {_scalar(chart)}",
    ]
    if repo:
        lines.append(f"    repo: {_scalar(repo)}")
    if version:
        lines.append(f"    version: {json.dumps(version)}")
    lines += [
        "    # values: {}        # inline values over the chart's defaults; or valuesFiles: [...]",
        "    checks:",
        "      - ready: {}",
    ]
    if rendered.test_hooks:
        lines.append("      - helmTest: {}")
    paths = [check.path for check in rendered.http]
    for check in rendered.http:
        spec = (
            f"{{service: {_scalar(check.service)}, port: {check.port}, path: {check.path}, "
            "expect: {status: 200}}"
        )
        if paths.count(check.path) > 1:  # ids must be unique: name them apart
            name = f"http[{check.service}:{check.port}{check.path}]"
            lines += [f"      - http: {spec}", f"        name: {_scalar(name)}"]
        else:
            lines.append(f"      - http: {spec}")
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when it reads back as itself, else double-quoted."""
    plain = re.fullmatch(r"[A-Za-z0-9_./~][A-Za-z0-9_./:@+~\[\]-]*", text) is not None
    try:
        same = plain and yaml.safe_load(text) == text
    except yaml.YAMLError:
        same = False
    return text if same else json.dumps(text)


@dataclass(frozen=True)
class InitResult:
    path: Path | None  # None: written to stdout
    text: str
    app: str
    items: list[str]


def init(
    helm: Path,
    chart: str,
    *,
    output: str | None = None,
    repo: str | None = None,
    version: str | None = None,
    name: str | None = None,
    force: bool = False,
) -> InitResult:
    """Render ``chart`` and write its starter suite to ``output`` (default
    ``<app>.suite.yaml`` here; ``-`` for stdout only). Raises :class:`UsageError` when the
    chart cannot be rendered or ``output`` exists (unless ``force``)."""
    local = repo is None and not chart.startswith("oci://")
    if version is not None and local:
        raise UsageError("--version applies to charts from a repo (--repo) or oci://")
    if local and not Path(chart).exists():
        raise UsageError(f"chart not found: {chart} (a chart folder or .tgz; or give --repo)")
    app = app_name(name, chart, local=local)
    target = None if output == "-" else Path(output or f"{app}.suite.yaml")
    if target is not None and target.exists() and not force:
        raise UsageError(f"{target} exists; give another -o FILE, or --force to replace it")
    rendered = inspect(render(helm, chart, release=app, repo=repo, version=version))
    folder = Path.cwd() if target is None else target.absolute().parent
    written = chart  # oci:// and repo charts, and absolute paths, as given
    if local and not Path(chart).is_absolute():  # relative to the suite file, as suites read it
        written = os.path.relpath(Path(chart).resolve(), folder)
    text = suite_text(
        app=app, chart=written, chart_shown=chart, repo=repo, version=version, rendered=rendered
    )
    folder.mkdir(parents=True, exist_ok=True)
    items = _validated(text, folder, target)
    return InitResult(path=target, text=text, app=app, items=items)


def _validated(text: str, folder: Path, target: Path | None) -> list[str]:
    """Check ``text`` as a suite in ``folder`` (which its chart path is relative to); write
    it to ``target`` when valid. Returns the app's item ids."""
    # Beside the target (the chart path is relative to it), named after it: the suite's
    # name defaults to the file name, which must be a valid suite name.
    stem = target.name.split(".", 1)[0] if target is not None else "starter"
    handle, scratch = tempfile.mkstemp(prefix=f"{stem}-init-", suffix=".suite.yaml", dir=folder)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        try:
            suite = load_suite(Path(scratch))
        except SuiteError as exc:  # a bug here, not the user's: say what was made
            raise UsageError(f"the starter suite does not validate: {exc}\n{text}") from exc
    finally:
        os.unlink(scratch)
    if target is not None:
        target.write_text(text)
    app = suite.apps[0]
    return ["install", *(check.id for check in app.checks or ())]
