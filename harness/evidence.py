"""Failure bundles: what a person needs to see why an app failed, written to
``<report dir>/bundles/<suite>/<app>/`` when one of its items fails.

Files: ``failure.txt`` (the item, what was expected and observed), ``events.yaml``,
``resources.yaml`` (the release's objects as the cluster has them now), ``pods.yaml``,
``logs/<pod>.<container>.log`` (and ``.previous.log``), ``helm-status.json``,
``helm-history.json``. Each part is best effort: a part that cannot be read says why in
its file, and never hides the failure itself. Secret objects are listed without data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from harness.helm import Helm

MAX_LOG_BYTES = 256 * 1024


def bundle_dir(report_dir: Path, suite: str, app: str) -> Path:
    return report_dir / "bundles" / _safe(suite) / _safe(app)


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
) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / "failure.txt").open("a") as handle:
        handle.write(failure.rstrip() + "\n\n")
    core = client.CoreV1Api(api)
    _part(dest / "events.yaml", lambda: _events(core, namespace))
    _part(dest / "resources.yaml", lambda: _resources(api, manifest, namespace))
    _part(dest / "pods.yaml", lambda: _pods(core, namespace))
    _part(
        dest / "helm-status.json",
        lambda: json.dumps(helm.status(release, namespace=namespace), indent=2),
    )
    _part(
        dest / "helm-history.json",
        lambda: json.dumps(helm.history(release, namespace=namespace), indent=2),
    )
    _logs(core, namespace, dest / "logs")
    return dest


def _part(path: Path, produce: Any) -> None:
    try:
        text = produce()
    except Exception as exc:  # a part we cannot read must not hide the failure
        text = f"# could not collect: {type(exc).__name__}: {exc}\n"
    path.write_text(text)


def _events(core: client.CoreV1Api, namespace: str) -> str:
    items = core.list_namespaced_event(namespace).items
    items.sort(key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp))
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
    from harness.resources import Resolver, lister

    resolver = Resolver(api)
    docs = []
    for obj in manifest:
        meta = obj.get("metadata") or {}
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
        if live.get("kind") == "Secret":
            live.pop("data", None)
            live.pop("stringData", None)
        meta_live = live.get("metadata")
        if isinstance(meta_live, dict):
            meta_live.pop("managedFields", None)
        docs.append(live)
    return yaml.safe_dump_all(docs, sort_keys=False)


def _pods(core: client.CoreV1Api, namespace: str) -> str:
    response: Any = core.list_namespaced_pod(namespace, _preload_content=False)
    body = json.loads(response.data)
    for pod in body.get("items", []):
        (pod.get("metadata") or {}).pop("managedFields", None)
    return yaml.safe_dump_all(body.get("items", []), sort_keys=False)


def _logs(core: client.CoreV1Api, namespace: str, folder: Path) -> None:
    try:
        pods = core.list_namespaced_pod(namespace).items
    except Exception as exc:
        folder.mkdir(exist_ok=True)
        (folder / "README.txt").write_text(f"could not list pods: {exc}\n")
        return
    folder.mkdir(exist_ok=True)
    for pod in pods:
        spec: Any = pod.spec
        pod_name = str(pod.metadata.name) if pod.metadata else ""
        containers = [c.name for c in (spec.init_containers or []) + (spec.containers or [])]
        for container in containers:
            for previous in (False, True):
                suffix = ".previous.log" if previous else ".log"
                path = folder / f"{pod_name}.{container}{suffix}"
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
                    if previous:
                        continue  # most containers have no previous instance
                    text = f"# no logs: {_reason(exc)}\n"
                path.write_text(text or "")


def _reason(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            return str(body)
    return str(exc)
