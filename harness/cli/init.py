"""``helm-harness init``: a starter suite for a chart, from what ``helm template`` renders.

The chart is rendered with its default values for the Kubernetes version the harness's own
clusters run (:data:`harness.tools.K8S_VERSION`), hooks included. The suite gets one app
whose checks are ``ready`` (covering every workload rendered), ``helmTest`` when the chart
has test hooks, and an ``http`` check on each Service port that serves plain HTTP: the
port leads (through the Service's ``targetPort`` and the container's named ports) to an
``httpGet`` probe of the pods behind it, readiness first, then liveness, then startup,
whose path the check asks for; a port no probe covers is taken when its name, protocol or
number looks like HTTP.

What the chart's defaults will not do on a test cluster (claims without a provisioner,
ephemeral-storage, host networking and ports, webhooks and aggregated APIs nothing serves
on kwok, hook Jobs) become warnings, each naming the object, what goes wrong and, when
the chart's values have an obvious switch for it, the values to change; the CLI prints
them and the suite's header repeats them. The file is validated with
:func:`harness.suite.model.load_suite` before it is written, and an existing file is never
overwritten unless asked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tarfile
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyhelm3.errors
import yaml

from harness.checks.helm_test import TEST_HOOKS
from harness.checks.security import POD_SPEC_PATHS
from harness.errors import HelmError, UsageError
from harness.helm.client import Helm
from harness.helm.command import chart_flags
from harness.kube import manifests
from harness.kube.readiness import PREDICATES, service_needs_endpoints
from harness.suite import matrix
from harness.suite.model import App, ChartRef, SuiteError, load_suite
from harness.tools import K8S_VERSION

Obj = dict[str, Any]

APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
HTTP_PORT_NUMBERS = {80, 3000, 5000, 8000, 8080, 8888}
TLS_PORT_NUMBERS = {443, 8443}
TLS_WORDS = ("https", "tls", "ssl", "grpc")
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")  # the order a path is taken in
MAX_LISTED = 4  # objects, or value keys, named in one warning
COMMENT_WIDTH = 90


@dataclass(frozen=True)
class HttpCheck:
    """A Service port that serves plain HTTP, and the path worth asking for."""

    service: str
    port: int
    port_name: str
    path: str
    probe: str = ""  # where the path is from: "the readinessProbe of Deployment/web"; "" guessed


@dataclass(frozen=True)
class PodTemplate:
    """A pod spec the chart renders, with its labels (what a Service selects)."""

    owner: str  # "Deployment/web-web"
    labels: Mapping[str, Any]
    spec: Obj
    hook: str  # its owner's helm.sh/hook annotation; "" for the release's own objects


@dataclass
class Rendered:
    """What the chart renders that a starter suite cares about."""

    workloads: list[str] = field(
        default_factory=list
    )  # "Deployment/web-web", what `ready` waits on
    test_hooks: list[str] = field(default_factory=list)
    http: list[HttpCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "Kind/name: what goes wrong..."


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


def default_values(
    helm: Path, chart: str, *, repo: str | None = None, version: str | None = None
) -> Obj:
    """The chart's own values (``helm show values``), or ``{}`` when Helm cannot show
    them: they only name the keys a warning suggests changing."""
    argv = ["show", "values", chart, *chart_flags(chart, version=version, repo=repo)]
    try:
        values = manifests.load(asyncio.run(Helm(helm).command.run(argv)).decode())
    except (pyhelm3.errors.Error, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return values if isinstance(values, dict) else {}


def inspect(text: str, values: Obj | None = None, *, release: str = "") -> Rendered:
    """Sort the rendered objects into what ``ready``, ``helmTest`` and ``http`` will see,
    and what will not work on a test cluster (``values``: the chart's defaults, for the
    keys to change; ``release``: the release name the objects were rendered with)."""
    found = Rendered()
    objects: list[tuple[Obj, str]] = []  # (object, its helm.sh/hook annotation)
    for obj in manifests.load_all(text):
        if not isinstance(obj, dict) or not obj.get("kind"):
            continue
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        objects.append((obj, str(annotations.get("helm.sh/hook", ""))))
    pods = [t for obj, hook in objects if (t := _pod_template(obj, hook)) is not None]
    for obj, hook in objects:
        kind, name = str(obj["kind"]), _name(obj)
        if hook:
            if TEST_HOOKS & _hook_events(hook):
                found.test_hooks.append(f"{kind}/{name}")
            continue  # other hooks are not part of the release `ready` looks at
        if kind in PREDICATES or (kind == "Service" and service_needs_endpoints(obj)):
            found.workloads.append(f"{kind}/{name}")
        if kind == "Service" and service_needs_endpoints(obj):
            spec = obj["spec"]
            behind = [p for p in pods if not p.hook and _selects(spec["selector"], p.labels)]
            found.http += _http_ports(name, spec.get("ports") or [], behind)
    found.warnings = _warnings(objects, pods, values or {}, release)
    return found


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _hook_events(hook: str) -> set[str]:
    return {part.strip() for part in hook.split(",")}


def _pod_template(obj: Obj, hook: str) -> PodTemplate | None:
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    if path is None:
        return None
    template: Any = obj
    for step in path[:-1]:  # the pod template: its metadata beside its spec
        template = (template or {}).get(step)
    template = template if isinstance(template, dict) else {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    return PodTemplate(f"{obj['kind']}/{_name(obj)}", labels, template.get("spec") or {}, hook)


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return all(key in labels and str(labels[key]) == str(value) for key, value in selector.items())


def _containers(spec: Obj) -> list[Obj]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _container_port(container: Obj, port: Any) -> int | None:
    """``port`` (a number, or the name of one of the container's ports) as a number."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports") or []:
        if port is not None and declared.get("name") == port:
            number = declared.get("containerPort")
            return number if isinstance(number, int) else None
    return None


@dataclass(frozen=True)
class _Probe:
    kind: str  # "http", "https" or "grpc"
    path: str
    where: str  # "the readinessProbe of Deployment/web"


def _probe_on(target: Any, pods: Iterable[PodTemplate]) -> _Probe | None:
    """The first probe of ``pods`` on the container port ``target`` (a Service's
    ``targetPort``) that tells its protocol: readiness, else liveness, else startup."""
    candidates = []
    for pod in pods:
        for container in pod.spec.get("containers") or []:
            number = _container_port(container, target)
            if number is None:
                continue
            for rank, key in enumerate(PROBES):
                probe = container.get(key) or {}
                where = f"the {key} of {pod.owner}"
                get = probe.get("httpGet")
                if isinstance(get, dict) and _container_port(container, get.get("port")) == number:
                    scheme = str(get.get("scheme") or "HTTP").lower()
                    candidates.append((rank, _Probe(scheme, str(get.get("path") or "/"), where)))
                grpc = probe.get("grpc")
                if isinstance(grpc, dict) and grpc.get("port") == number:
                    candidates.append((rank, _Probe("grpc", "", where)))
    return min(candidates, key=lambda pair: pair[0])[1] if candidates else None


def _http_ports(
    service: str, ports: Iterable[dict[str, Any]], pods: Iterable[PodTemplate] = ()
) -> list[HttpCheck]:
    pods = list(pods)
    checks = []
    for port in ports:
        number = port.get("port")
        if not isinstance(number, int) or str(port.get("protocol", "TCP")).upper() != "TCP":
            continue
        name = str(port.get("name", "")).lower()
        protocol = str(port.get("appProtocol", "")).lower()
        if number in TLS_PORT_NUMBERS or any(word in f"{name} {protocol}" for word in TLS_WORDS):
            continue  # TLS: a plain GET would not get far
        probe = _probe_on(port.get("targetPort", number), pods)
        if probe is not None:
            if probe.kind == "http":  # HTTPS and gRPC probes: not plain HTTP either
                checks.append(HttpCheck(service, number, name, probe.path, probe.where))
            continue
        looks_http = "http" in name or "http" in protocol or name in ("web", "metrics")
        if looks_http or number in HTTP_PORT_NUMBERS:
            path = "/metrics" if "metrics" in name else "/"
            checks.append(HttpCheck(service, number, name, path))
    return checks


# Warnings: what the chart's defaults will not do on a test cluster. The cluster is chosen
# when the suite runs (--cluster auto: kind where Docker answers, else k3d, else kwok), so
# a warning says "on kwok" when only kwok is concerned.

Hint = Callable[[tuple[str, ...], Any], str | None]  # a value's key, value -> the new value


def _warnings(
    objects: list[tuple[Obj, str]], pods: list[PodTemplate], values: Obj, release: str
) -> list[str]:
    mounted = {
        str(claim["claimName"])
        for pod in pods
        for volume in pod.spec.get("volumes") or []
        if (claim := volume.get("persistentVolumeClaim") or {}).get("claimName")
    }
    found: list[str] = []
    for obj, hook in objects:
        kind, name = str(obj["kind"]), _name(obj)
        spec = obj.get("spec") or {}
        if kind == "StatefulSet" and spec.get("volumeClaimTemplates"):
            found.append(_claim_templates(name, spec["volumeClaimTemplates"], values))
        elif kind == "PersistentVolumeClaim" and not hook:
            found.append(_claim(name, spec, name in mounted, values))
        elif kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            found += _webhooks(kind, name, obj.get("webhooks") or [], values)
        elif kind == "APIService" and spec.get("service"):
            found.append(_api_service(name, spec, values))
        if kind == "Job" and hook and not TEST_HOOKS & _hook_events(hook):
            found.append(_hook_job(name, hook, values, release))
    for pod in pods:
        found += _host_network(pod, values)
    found += _ephemeral_storage(pods, values)
    return list(dict.fromkeys(found))


def _claim_templates(statefulset: str, templates: list[Obj], values: Obj) -> str:
    names = ", ".join(str((t.get("metadata") or {}).get("name")) for t in templates)
    classes = "".join(dict.fromkeys(_storage_class(t.get("spec") or {}) for t in templates))
    return (
        f"StatefulSet/{statefulset} claims volumes ({names}): on kwok, which has no "
        "StorageClass, the claims stay Pending and its pods are never scheduled, so `ready` "
        "times out (kind and k3d bind them through their local-path provisioner)"
        + classes
        + _values_to_change(values, _storage_switch)
    )


def _claim(name: str, spec: Obj, mounted: bool, values: Obj) -> str:
    if mounted:
        elsewhere = (
            ", and so do the pods that mount it (kind and k3d bind it through their "
            "local-path provisioner)"
        )
    else:
        elsewhere = (
            "; no pod the chart renders mounts it, so kind's and k3d's local-path "
            "provisioner, which binds a claim when a pod first uses it, leaves it Pending too"
        )
    return (
        f"PersistentVolumeClaim/{name}: on kwok, which has no StorageClass, it stays Pending "
        f"and `ready` times out{elsewhere}"
        + _storage_class(spec)
        + _values_to_change(values, _storage_switch)
    )


def _storage_class(spec: Obj) -> str:
    wanted = spec.get("storageClassName")
    if wanted == "":
        return (
            '; storageClassName "" binds only a PersistentVolume made beforehand, which '
            "test clusters do not have"
        )
    if wanted:
        return (
            f"; it asks for StorageClass {wanted}: `ready` fails at once where the cluster "
            "has none of that name (kind has standard, k3d local-path)"
        )
    return ""


def _webhooks(kind: str, name: str, webhooks: list[Obj], values: Obj) -> list[str]:
    served = [hook for hook in webhooks if (hook.get("clientConfig") or {}).get("service")]
    if not served:
        return []  # webhooks at a URL: not the cluster's to serve
    failing = any(hook.get("failurePolicy", "Fail") == "Fail" for hook in served)
    outcome = (
        "so requests it covers are refused (failurePolicy Fail), this release's own objects "
        "and the pods controllers create for it included"
        if failing
        else "so requests it covers go through unchecked once the call fails or times out "
        "(failurePolicy Ignore)"
    )
    services = dict.fromkeys(str(hook["clientConfig"]["service"].get("name")) for hook in served)
    return [
        f"{kind}/{name}: on kwok nothing answers behind its Service {', '.join(services)} (no "
        f"container runs): the API server's calls to the webhook fail, {outcome}; run this app "
        "on kind" + _values_to_change(values, _switch(lambda word: "webhook" in word))
    ]


def _api_service(name: str, spec: Obj, values: Obj) -> str:
    api = f"{spec.get('group')}/{spec.get('version')}"
    return (
        f"APIService/{name}: on kwok nothing answers behind its Service "
        f"{spec['service'].get('name')} (no container runs), so {api} stays unavailable: "
        "requests to it fail ('the server is currently unable to handle the request'), API "
        "discovery reports the group as failed (Helm and kubectl warn), and namespaces stay "
        "Terminating while it is registered; run this app on kind"
        + _values_to_change(values, _switch(lambda word: "apiservice" in word))
    )


def _hook_job(name: str, hook: str, values: Obj, release: str) -> str:
    words = [_word(word) for word in name.removeprefix(f"{release}-").split("-")]
    whole = "".join(words)

    def names_it(key: str) -> bool:  # migrate.enabled for Job/shop-migrate, and the like
        return key == whole or any(
            key == word or (len(word) >= 5 and key.startswith(word)) for word in words
        )

    return (
        f"Job/{name} runs as a Helm hook ({hook}): Helm waits for it, and its failure fails "
        "the install; on kwok it completes without running (what it does, a migration say, "
        "is not done), on kind it runs for real and needs its image and whatever it talks to"
        + _values_to_change(values, _switch(names_it))
    )


def _ephemeral_storage(pods: list[PodTemplate], values: Obj) -> list[str]:
    """One warning for every pod spec asking for ephemeral-storage (a request, or a limit,
    which is the request when none is given)."""
    asking = []
    for pod in pods:
        amounts = []
        for container in _containers(pod.spec):
            resources = container.get("resources") or {}
            asked = [
                (resources.get(what) or {}).get("ephemeral-storage")
                for what in ("requests", "limits")
            ]
            amount = asked[0] if asked[0] is not None else asked[1]
            if amount is not None:
                amounts.append(f"{container.get('name')} {amount}")
        if amounts:
            asking.append(f"{pod.owner} ({'hook: ' if pod.hook else ''}{', '.join(amounts)})")
    if not asking:
        return []
    return [
        f"{_listed(asking)} ask{'s' if len(asking) == 1 else ''} for ephemeral-storage: such "
        "pods schedule only on nodes that advertise it; kind's, k3d's and the harness's kwok "
        "nodes do, but on kwok nodes made without it (a kwok cluster used with --cluster "
        "existing) they stay Pending (Insufficient ephemeral-storage)"
        + _values_to_change(values, _ephemeral_switch)
    ]


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _host_network(pod: PodTemplate, values: Obj) -> list[str]:
    host_ports = sorted(
        {
            port["hostPort"]
            for container in _containers(pod.spec)
            for port in container.get("ports") or []
            if isinstance(port.get("hostPort"), int)
        }
    )
    if pod.spec.get("hostNetwork"):
        what, switch = "uses the node's network (hostNetwork)", _host_network_switch
        kwok = (
            "; on kwok, Services get no endpoints for its pods unless the nodes have the "
            "harness's 198.18.0.x address (root puts it on lo once: see providers.md)"
        )
    elif host_ports:
        what = f"asks for host port{'s' if len(host_ports) > 1 else ''} " + ", ".join(
            map(str, host_ports)
        )
        kwok, switch = "", _host_port_switch
    else:
        return []
    return [
        f"{pod.owner}{' (hook)' if pod.hook else ''} {what}: pods that need the same host "
        "port cannot share a node, and the harness's clusters have one by default (kwok: "
        "--cluster-nodes N), so a second one (another replica, or another app's pod on that "
        f"port) stays Pending{kwok}" + _values_to_change(values, switch)
    ]


def _word(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _switch(matches: Callable[[str], bool]) -> Hint:
    """``X.enabled`` or ``X.create`` set to true, for an ``X`` that ``matches`` (compared
    lower-case, letters and digits only): ``false``."""

    def hint(key: tuple[str, ...], value: Any) -> str | None:
        on = value is True and len(key) > 1 and key[-1] in ("enabled", "create")
        return "false" if on and matches(_word(key[-2])) else None

    return hint


_storage_switch = _switch(
    lambda word: word in ("persistence", "persistentvolume", "persistentvolumeclaim", "pvc")
)


def _ephemeral_switch(key: tuple[str, ...], value: Any) -> str | None:
    if key[-1] == "ephemeral-storage" and "resources" in key and value is not None:
        return "null"  # null removes a default key
    if key[-1] == "resourcesPreset" and value not in (None, "", "none"):
        return "none"  # presets that include ephemeral-storage (a common chart library's)
    return None


def _host_network_switch(key: tuple[str, ...], value: Any) -> str | None:
    return "false" if value is True and key[-1] == "hostNetwork" else None


def _host_port_switch(key: tuple[str, ...], value: Any) -> str | None:
    if value is True and key[-2:] == ("hostPort", "enabled"):
        return "false"
    if key[-1] == "hostPort" and isinstance(value, int) and not isinstance(value, bool):
        return "null"  # null removes a default key
    return None


def _values_to_change(values: Obj, hint: Hint) -> str:
    """``; values to change: a.b=false, ...`` for the chart's values ``hint`` suggests."""
    changes = [
        f"{_dotted(key)}={new}"
        for key, value in _leaves(values)
        if (new := hint(key, value)) is not None
    ]
    return f"; values to change: {_listed(changes)}" if changes else ""


def _dotted(key: tuple[str, ...]) -> str:
    """A key path as ``--set`` and a suite's ``set`` write it (dots in a key escaped)."""
    return ".".join(part.replace(".", "\\.") for part in key)


def _leaves(values: Any, key: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every value under a mapping's keys, with its key path (lists are leaves)."""
    if isinstance(values, dict):
        for name, value in values.items():
            yield from _leaves(value, (*key, str(name)))
    elif key:
        yield key, values


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
    variants: Sequence[str] = (),
) -> str:
    """The starter suite: a comment header that explains each check, then the suite;
    ``variants``: the stems of the chart's ``ci/*-values.yaml`` files, if any."""
    lines = [f"# A starter suite for the chart {chart_shown}, written by `helm-harness init`."]
    if rendered.warnings:
        lines += [
            "#",
            "# Warnings: what the chart's defaults will not do on a test cluster. The cluster is",
            "# chosen when the suite runs (--cluster auto: kind where Docker answers, else k3d,",
            '# else kwok): a warning that says "on kwok" holds there only. Values to change go',
            "# under the app's `set: {KEY: VALUE}`; KEY=null under `values` (nested), where",
            "# null removes the chart's default.",
        ]
        for warning in rendered.warnings:
            lines += _item(warning)
    lines += [
        "#",
        f"# It was read off `helm template` (default values, Kubernetes {K8S_VERSION}): edit it",
        "# to say what healthy means for this chart. Its checks:",
        "#",
    ]
    lines += _item(
        "ready: every object of the release that has a readiness becomes ready within the "
        "app's timeout. Here: " + (", ".join(rendered.workloads) or "nothing rendered has one")
    )
    if rendered.test_hooks:
        lines += [
            "# - helmTest: `helm test` passes, running the chart's test hooks: "
            + ", ".join(rendered.test_hooks),
        ]
    for check in rendered.http:
        named = f" ({check.port_name})" if check.port_name else ""
        source = (
            f"path from {check.probe}"
            if check.probe
            else "no probe names a path: point `path` at a health endpoint"
        )
        lines += _item(
            f"http: GET {check.path} on Service {check.service} port {check.port}{named} "
            f"answers 200, through a port-forward to a ready pod behind it ({source}); add "
            "`body: TEXT` under `expect` (on kwok clusters, where nothing serves, it skips)."
        )
    lines += [
        "#",
        "# More: values/valuesFiles/set, timeout, runbook, upgrade: {from: ...}, and the checks",
        "# wait, logs, noRestarts, events, metrics, rbac, security, podSecurity, disrupt,",
        "# python (see docs/checks.md).",
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
    if variants:
        shown = ", ".join(matrix.variant_name(app, stem) for stem in variants)
        indent = "    # "
        lines += [
            f"    # one app per file of the chart's {matrix.CHART_TESTING_GLOB} (chart-testing's",
            "    # convention), that file its last values file, each in its own namespace:",
            *textwrap.wrap(shown, COMMENT_WIDTH, initial_indent=indent, subsequent_indent=indent),
            f"    valuesMatrix: {matrix.CHART_TESTING_GLOB}",
        ]
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
            f"{{service: {_scalar(check.service)}, port: {check.port}, "
            f"path: {_scalar(check.path)}, expect: {{status: 200}}}}"
        )
        if paths.count(check.path) > 1:  # ids must be unique: name them apart
            name = f"http[{check.service}:{check.port}{check.path}]"
            lines += [f"      - http: {spec}", f"        name: {_scalar(name)}"]
        else:
            lines.append(f"      - http: {spec}")
    return "\n".join(lines) + "\n"


def _item(text: str) -> list[str]:
    """``text`` as a list item of comment lines, wrapped at spaces (never inside a key or
    a name)."""
    return textwrap.wrap(
        text,
        COMMENT_WIDTH,
        initial_indent="# - ",
        subsequent_indent="#   ",
        break_long_words=False,
        break_on_hyphens=False,
    )


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
    warnings: list[str]  # what will not work on a test cluster, also in the file's header
    variants: list[str] = field(default_factory=list)  # the valuesMatrix apps, if any


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
    manifest = render(helm, chart, release=app, repo=repo, version=version)
    values = default_values(helm, chart, repo=repo, version=version)
    rendered = inspect(manifest, values, release=app)
    folder = Path.cwd() if target is None else target.absolute().parent
    written = chart  # oci:// and repo charts, and absolute paths, as given
    if local and not Path(chart).is_absolute():  # relative to the suite file, as suites read it
        written = os.path.relpath(Path(chart).resolve(), folder)
    variants = _ci_values_stems(app, Path(chart)) if local else []
    text = suite_text(
        app=app,
        chart=written,
        chart_shown=chart,
        repo=repo,
        version=version,
        rendered=rendered,
        variants=variants,
    )
    folder.mkdir(parents=True, exist_ok=True)
    items = _validated(text, folder, target)
    return InitResult(
        path=target,
        text=text,
        app=app,
        items=items,
        warnings=rendered.warnings,
        variants=[matrix.variant_name(app, stem) for stem in variants],
    )


def _ci_values_stems(app: str, chart: Path) -> list[str]:
    """The variant names a chart folder's ``ci/*-values.yaml`` files make; none when it has
    none (or is a .tgz), or when they cannot make apps (names that clash, say)."""
    source = ChartRef(str(chart))
    try:
        files = matrix.matrix_files(app, source, matrix.CHART_TESTING_GLOB)
        matrix.expand([App(name=app, source=source, release=app, namespace=None)], {app: files})
    except matrix.MatrixError:
        return []
    return [matrix.stem(path) for path in files]


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
