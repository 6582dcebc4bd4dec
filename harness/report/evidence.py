"""Failure bundles: what a person needs to see why an app failed, written to
``<report dir>/bundles/<suite>/<app>/`` when one of its items fails.

Files: ``index.txt`` (what each file holds, and the containers that logged nothing),
``failure.txt`` (the item, what was expected and observed), ``events.yaml``,
``resources.yaml`` (the release's objects as the cluster has them now), ``pods.yaml``,
``logs/<pod>.<container>.log`` (and ``.previous.log``; none for a container without
output), ``helm-status.json``, ``helm-history.json``. Each part is best effort: a part
that cannot be read says why in its file (a log in the index), and never hides the
failure itself.

Secrets stay out of every file: Secret objects are listed without ``data``/``stringData``;
env values, and values of flag-style args, whose names look secret
(:data:`harness.helm.client.SECRET_KEY`) are masked in pods and workloads; ``helm-status.json``
keeps the release's status but not its values, manifest or chart files; and every text
written is scrubbed of the secret strings the release is known to hold (the data of its
Secrets, its secret-looking env values, the user-supplied values under secret-looking
keys), also in base64, as they would show in logs or events."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from harness.helm.client import Helm
from harness.redact import (
    MASK,
    Scrubber,
    looks_secret,
    redact_args,
    secret_flag_values,
    secret_values,
)

MAX_LOG_BYTES = 256 * 1024
PARTS = {
    "failure.txt": "the failed items: what was expected and what was observed",
    "events.yaml": "the namespace's events, oldest first",
    "resources.yaml": "the release's objects as the cluster has them now",
    "pods.yaml": "the namespace's pods",
    "helm-status.json": "helm status (without values, manifest or chart files)",
    "helm-history.json": "helm history",
}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def bundle_dir(report_dir: Path, suite: str, app: str) -> Path:
    return report_dir / "bundles" / _safe(suite) / _safe(app)


def safe_name(name: str) -> str:
    """``name`` fit for a file or folder name."""
    return _safe(name)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "_"


def write_bundle(
    dest: Path,
    *,
    api: ApiClient,
    helm: Helm,
    namespace: str,
    release: str,
    manifest: list[dict[str, Any]],
    failure: str,
    extra: Sequence[tuple[str, str, str]] = (),
) -> Path:
    """``extra``: more files (path in the bundle, what it holds, text), e.g. what a check's
    catch steps collected."""
    dest.mkdir(parents=True, exist_ok=True)
    status: dict[str, Any] | Exception
    try:
        status = helm.status(release, namespace=namespace)
    except Exception as exc:
        status = exc
    known = secrets_in_objects(manifest)
    if isinstance(status, dict):
        known |= secret_values(status.get("config"))
    scrub = Scrubber(known)
    with (dest / "failure.txt").open("a") as handle:
        handle.write(scrub(failure.rstrip()) + "\n\n")
    core = client.CoreV1Api(api)
    _part(dest / "events.yaml", scrub, lambda: _events(core, namespace))
    _part(dest / "resources.yaml", scrub, lambda: _resources(api, manifest, namespace))
    _part(dest / "pods.yaml", scrub, lambda: _pods(core, namespace))
    _part(dest / "helm-status.json", scrub, lambda: json.dumps(status_view(status), indent=2))
    _part(
        dest / "helm-history.json",
        scrub,
        lambda: json.dumps(helm.history(release, namespace=namespace), indent=2),
    )
    logs = _logs(core, namespace, dest / "logs", scrub)
    for relative, _, text in extra:
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        (dest / relative).write_text(scrub(text))
    added = [(relative, what) for relative, what, _ in extra]
    entries = [*PARTS.items(), *logs, *_earlier_extra(dest, {name for name, _ in added}), *added]
    width = max(len(name) for name, _ in entries) + 2
    lines = [f"evidence of release {release} in namespace {namespace}", ""]
    lines += [f"{name:<{width}}{what}" for name, what in entries]
    (dest / "index.txt").write_text(scrub("\n".join(lines) + "\n"))
    return dest


def _earlier_extra(dest: Path, replaced: set[str]) -> list[tuple[str, str]]:
    """The extra files an earlier failure of the app put in its bundle (another check's
    catch evidence), as that failure's index listed them, when they are there still."""
    try:
        lines = (dest / "index.txt").read_text().splitlines()[2:]
    except OSError:
        return []
    found = []
    for line in lines:
        name, _, what = line.partition(" ")
        if name in PARTS or name.startswith("logs/") or name in replaced:
            continue
        if (dest / name).is_file():
            found.append((name, what.strip()))
    return found


def _part(path: Path, scrub: Callable[[str], str], produce: Callable[[], str]) -> None:
    try:
        text = produce()
    except Exception as exc:  # a part we cannot read must not hide the failure
        text = f"# could not collect: {type(exc).__name__}: {exc}\n"
    path.write_text(scrub(text))


def secrets_in_objects(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Secret strings that Kubernetes objects carry: their Secrets' data (decoded) and
    stringData, and the env values and flag values with secret-looking names."""
    found: set[str] = set()
    for obj in objects:
        if obj.get("kind") == "Secret":
            for encoded in (obj.get("data") or {}).values():
                try:
                    found.add(base64.b64decode(str(encoded), validate=True).decode())
                except (binascii.Error, UnicodeDecodeError):
                    found.add(str(encoded))
            found |= {str(v) for v in (obj.get("stringData") or {}).values()}
        if obj.get("kind") == "ConfigMap":  # a secret kept where it should not be
            data = obj.get("data") or {}
            found |= {str(v) for k, v in data.items() if looks_secret(str(k)) and v}
        for container in _containers(obj):
            for env in container.get("env") or []:
                if isinstance(env, dict) and looks_secret(str(env.get("name", ""))):
                    if env.get("value") is not None:
                        found.add(str(env["value"]))
            for args in (container.get("args"), container.get("command")):
                found |= secret_flag_values([str(a) for a in args or []])
    return found


def redact_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Kubernetes object fit for a bundle: no Secret data, no last-applied
    annotation, no managedFields, and secret-looking env and flag values masked."""
    obj = json.loads(json.dumps(obj, default=str))
    if obj.get("kind") == "Secret":
        obj.pop("data", None)
        obj.pop("stringData", None)
    if obj.get("kind") == "ConfigMap" and isinstance(obj.get("data"), dict):
        obj["data"] = {k: MASK if looks_secret(k) else v for k, v in obj["data"].items()}
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        if isinstance(meta.get("annotations"), dict):
            meta["annotations"].pop(LAST_APPLIED, None)
    for container in _containers(obj):
        for env in container.get("env") or []:
            if isinstance(env, dict) and looks_secret(str(env.get("name", ""))):
                if "value" in env:
                    env["value"] = MASK
        for key in ("args", "command"):
            if isinstance(container.get(key), list):
                container[key] = redact_args([str(a) for a in container[key]])
    return obj


def _containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Pod or of the pod template of a workload (CronJob included)."""
    spec = obj.get("spec")
    for path in (("jobTemplate", "spec", "template", "spec"), ("template", "spec"), ()):
        node: Any = spec
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get("containers"), list):
            break
    else:
        return []
    found = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        found += [c for c in node.get(key) or [] if isinstance(c, dict)]
    return found


def status_view(status: Mapping[str, Any] | Exception) -> dict[str, Any]:
    """``helm status`` without what may hold secrets: the user's values (``config``), the
    rendered manifest and the chart's files and default values."""
    if isinstance(status, Exception):
        raise status
    view = {key: status.get(key) for key in ("name", "namespace", "version", "info")}
    chart = status.get("chart")
    if isinstance(chart, dict):  # Helm 4 and some Helm 3 builds include the chart
        view["chart"] = {"metadata": chart.get("metadata")}
    return {
        **view,
        "hooks": [
            {key: hook.get(key) for key in ("name", "kind", "path", "events", "last_run")}
            for hook in status.get("hooks") or []
            if isinstance(hook, dict)
        ],
    }


def _events(core: client.CoreV1Api, namespace: str) -> str:
    return event_rows(core.list_namespaced_event(namespace).items)


def event_rows(items: list[Any]) -> str:
    """Events (the typed client's) as YAML rows, oldest first."""
    items = sorted(
        items, key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
    )
    rows = [
        {
            "time": str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp),
            "type": e.type,
            "reason": e.reason,
            "object": f"{e.involved_object.kind}/{e.involved_object.name}",
            "message": e.message,
            "count": e.count,
        }
        for e in items
    ]
    return yaml.safe_dump(rows, sort_keys=False)


def _resources(api: ApiClient, manifest: list[dict[str, Any]], namespace: str) -> str:
    from harness.kube.resources import Resolver, lister

    resolver = Resolver(api)
    docs = []
    for obj in manifest:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Secret":  # never read from the cluster: its data is the secret
            docs.append({**redact_object(obj), "note": "as rendered; Secrets are not read"})
            continue
        try:
            rtype = resolver.by_kind(obj["kind"], obj.get("apiVersion"))
            ns = meta.get("namespace") or namespace
            listed = lister(api, rtype)(
                namespace=ns if rtype.namespaced else None,
                field_selector=f"metadata.name={meta.get('name')}",
            )["items"]
            live = listed[0] if listed else {"missing": f"{obj['kind']}/{meta.get('name')}"}
        except Exception as exc:
            live = {"error": f"{obj.get('kind')}/{meta.get('name')}: {exc}"}
        live = dict(live)
        live.setdefault("kind", obj.get("kind"))
        docs.append(redact_object(live))
    return yaml.safe_dump_all(docs, sort_keys=False)


def _pods(core: client.CoreV1Api, namespace: str) -> str:
    response: Any = core.list_namespaced_pod(namespace, _preload_content=False)
    body = json.loads(response.data)
    pods = [redact_object({"kind": "Pod", **pod}) for pod in body.get("items", [])]
    return yaml.safe_dump_all(pods, sort_keys=False)


def _logs(
    core: client.CoreV1Api, namespace: str, folder: Path, scrub: Scrubber
) -> list[tuple[str, str]]:
    """Write each container's log (and its previous instance's) that has output; say
    for every one what it is or why there is none, as lines of the bundle's index."""
    try:
        pods = core.list_namespaced_pod(namespace).items
    except Exception as exc:
        return [("logs/", f"could not list pods: {exc}")]
    index: list[tuple[str, str]] = []
    for pod in pods:
        spec: Any = pod.spec
        pod_name = str(pod.metadata.name) if pod.metadata else ""
        containers = [c.name for c in (spec.init_containers or []) + (spec.containers or [])]
        for container in containers:
            for previous in (False, True):
                suffix = ".previous.log" if previous else ".log"
                path = folder / f"{pod_name}.{container}{suffix}"
                name = f"logs/{path.name}"
                try:
                    text = core.read_namespaced_pod_log(
                        pod_name,
                        namespace,
                        container=container,
                        previous=previous,
                        limit_bytes=MAX_LOG_BYTES,
                        _request_timeout=10,
                    )
                except Exception as exc:
                    if not previous:  # most containers have no previous instance
                        index.append((name, f"no logs: {_reason(exc)}"))
                    path.unlink(missing_ok=True)  # of an earlier failure of the app
                    continue
                if not text:
                    index.append((name, "no output"))
                    path.unlink(missing_ok=True)
                    continue
                folder.mkdir(exist_ok=True)
                path.write_text(scrub(text))
                what = "the previous instance's log" if previous else "log"
                index.append((name, f"{what} of container {container} of pod {pod_name}"))
    return index


def _reason(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            return str(body)
    return str(exc)
