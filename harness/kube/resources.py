"""Resource types by the names users write (``deployment``, ``deploy``, ``deployments.apps``,
``widget``), found through the API server's discovery, and one list function per type that
``harness.kube.wait.wait_for`` and the client's ``Watch`` can drive, for built-in kinds and
custom resources alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from harness.errors import UsageError


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


class Resolver:
    """Finds resource types through discovery; refreshes once when a name is unknown (a CRD
    installed a moment ago)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api
        self._dynamic: DynamicClient | None = None
        self._cache: dict[tuple[str, str | None], ResourceType] = {}

    def _client(self) -> DynamicClient:
        if self._dynamic is None:
            self._dynamic = DynamicClient(self._api)
        return self._dynamic

    def by_kind(self, kind: str, api_version: str | None = None) -> ResourceType:
        """The type of an object as it appears in a manifest (``kind``, ``apiVersion``)."""
        return self._resolve(("kind", kind), api_version, kind)

    def by_name(self, name: str) -> ResourceType:
        """A kubectl-style name: kind, plural, singular or short name, optionally ``.group``."""
        base, _, group = name.partition(".")
        lowered = base.lower()
        for field in ("kind", "name", "singular_name", "short_names"):
            try:
                return self._resolve((field, lowered), None, name, group=group or None)
            except UsageError:
                continue
        raise UsageError(f"unknown resource type {name!r} (not served by this cluster)")

    def _resolve(
        self, query: tuple[str, str], api_version: str | None, shown: str, group: str | None = None
    ) -> ResourceType:
        key = (f"{query[0]}={query[1]}@{group}", api_version)
        if key in self._cache:
            return self._cache[key]
        for refresh in (False, True):
            found = self._search(query, api_version, group, refresh)
            if found is not None:
                self._cache[key] = found
                return found
        raise UsageError(f"unknown resource type {shown!r} (not served by this cluster)")

    def _search(
        self, query: tuple[str, str], api_version: str | None, group: str | None, refresh: bool
    ) -> ResourceType | None:
        dynamic = self._client()
        if refresh:
            dynamic.resources.invalidate_cache()
        field, value = query
        kwargs: dict[str, Any] = {}
        if api_version:
            kwargs["api_version"] = api_version
        if group is not None:
            kwargs["group"] = group
        try:
            candidates = list(dynamic.resources.search(**kwargs))
        except ResourceNotFoundError:
            return None
        matches = [
            r
            for r in candidates
            if getattr(r, "kind", None)
            and "/" not in (getattr(r, "name", "") or "/")
            and _matches(r, field, value)
        ]
        if not matches:
            return None
        # Like kubectl: the core group first (pods are v1 pods, not metrics.k8s.io pods),
        # then a group's preferred version.
        best = sorted(
            matches,
            key=lambda r: (bool(r.group), not getattr(r, "preferred", False), r.group_version),
        )[0]
        return ResourceType(
            group=best.group or "",
            version=best.api_version,
            kind=best.kind,
            plural=best.name,
            namespaced=bool(best.namespaced),
        )


def _matches(resource: Any, field: str, value: str) -> bool:
    if field == "kind":
        return str(resource.kind).lower() == value.lower()
    if field == "short_names":
        return value in (resource.short_names or [])
    return str(getattr(resource, field, "") or "").lower() == value


def lister(api: ApiClient, rtype: ResourceType) -> Any:
    """A list function for ``rtype`` shaped like the typed client's ``list_*`` methods, so
    that ``wait_for`` and ``kubernetes.watch.Watch`` can drive it. Objects come back as the
    API server's JSON (no model classes)."""

    def list_objects(
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch: bool = False,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_watch_bookmarks: bool | None = None,
        _preload_content: bool = True,
        _request_timeout: float | None = None,
    ) -> Any:
        query: list[tuple[str, Any]] = []
        for name, value in (
            ("labelSelector", label_selector),
            ("fieldSelector", field_selector),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", timeout_seconds),
            ("allowWatchBookmarks", allow_watch_bookmarks),
        ):
            if value is not None:
                query.append((name, value))
        if watch:
            query.append(("watch", True))
        request = api.param_serialize(
            method="GET",
            resource_path=rtype.path(namespace),
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        # Public client calls only: the raw urllib3 response when not preloading (watch,
        # wait_for: an error status is raised first, as the typed methods do), else JSON.
        response = api.call_api(*request, _request_timeout=_request_timeout)
        if not _preload_content:
            if not 200 <= response.status <= 299:
                response.read()
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            return response.response
        response.read()
        return api.response_deserialize(response, {"200": "object"}).data

    list_objects.__name__ = f"list_{rtype.plural}"
    return list_objects
