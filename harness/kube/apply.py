"""Server-side apply and deletion of plain objects (dicts as manifests write them), any
kind the cluster serves, with the harness as field manager.

The API server validates what it is sent (``fieldValidation=Strict``: an unknown or
duplicate field is refused, as ``kubectl apply --server-side`` refuses it) and answers
with the object as stored. ``dry_run`` asks it to validate and admit without storing."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client import ApiClient

from harness.errors import KubeApiError, NotFound
from harness.kube.client import api_errors
from harness.kube.resources import Resolver, ResourceType

FIELD_MANAGER = "helm-harness"


class ApplyRefused(KubeApiError):
    """The API server refused an object: names it, with the server's reason and message."""


def object_name(obj: dict[str, Any]) -> str:
    """``Kind/name`` of a manifest object (its ``generateName`` when it has no name), for
    messages."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{meta.get('name') or meta.get('generateName') or '?'}"


def _call(
    api: ApiClient,
    method: str,
    path: str,
    query: list[tuple[str, Any]],
    body: str | None,
    content_type: str = "application/apply-patch+yaml",  # JSON is YAML
) -> dict[str, Any]:
    """One request; an error status is raised as the typed client raises it."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    request = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=30)
    response.read()
    answer = api.response_deserialize(response, {"200": "object", "201": "object", "202": "object"})
    return answer.data if isinstance(answer.data, dict) else {}


def send(
    api: ApiClient,
    rtype: ResourceType,
    body: dict[str, Any],
    namespace: str | None,
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """One server-side apply of ``body`` into ``namespace`` (field manager
    ``helm-harness``, forced, strict field validation), or, for an object with only a
    ``generateName``, a create (only a create can name it); ``dry_run``: validated and
    admitted, not stored. Returns the object as the server has it; a refusal is raised as
    the client's ApiException."""
    query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
    if dry_run:
        query.append(("dryRun", "All"))
    name = (body.get("metadata") or {}).get("name")
    if not name:
        return _call(
            api, "POST", rtype.path(namespace), query, json.dumps(body), "application/json"
        )
    query.append(("force", True))
    return _call(api, "PATCH", f"{rtype.path(namespace)}/{name}", query, json.dumps(body))


def apply(
    api: ApiClient,
    resolver: Resolver,
    obj: dict[str, Any],
    namespace: str,
    *,
    dry_run: bool = False,
) -> tuple[ResourceType, dict[str, Any]]:
    """Server-side apply ``obj``; a namespaced object without ``metadata.namespace`` goes
    into ``namespace``. Returns its type and the object as the server stored it; raises
    :class:`ApplyRefused` when the server refuses it, UsageError for a kind it does not
    serve."""
    rtype = resolver.by_kind(str(obj.get("kind", "")), obj.get("apiVersion"))
    body = json.loads(json.dumps(obj))  # a copy, and JSON-clean
    meta = body.setdefault("metadata", {})
    target = str(meta.get("namespace") or namespace) if rtype.namespaced else None
    if target:
        meta["namespace"] = target
    try:
        with api_errors(f"apply {object_name(obj)}"):
            stored = send(api, rtype, body, target, dry_run=dry_run)
    except KubeApiError as exc:
        if exc.status == 0:  # no answer (429 and 503 were retried by the client)
            raise
        # Anything the server answered is its refusal: for an unknown field, server-side
        # apply answers 500 ("failed to create typed patch object ... not declared in schema").
        where = f" in namespace {target}" if target else ""
        raise ApplyRefused(
            exc.status, exc.reason, exc.message, f"the API server refused {object_name(obj)}{where}"
        ) from exc
    return rtype, stored


def delete(api: ApiClient, rtype: ResourceType, name: str, namespace: str | None) -> bool:
    """Delete an object (its dependents in the background); False when it was gone."""
    path = f"{rtype.path(namespace if rtype.namespaced else None)}/{name}"
    try:
        with api_errors(f"delete {rtype.kind}/{name}"):
            _call(api, "DELETE", path, [("propagationPolicy", "Background")], None)
    except NotFound:
        return False
    return True


__all__ = ["FIELD_MANAGER", "ApplyRefused", "apply", "delete", "object_name", "send"]
