"""``lint``: an app's chart checked before it is installed, as chart-testing's ``ct lint``
does, and against the real API server as an install would be.

Three steps, each problem one line (:class:`Problem`):

1. ``helm lint`` of a local chart (a folder or ``.tgz``) with the values its install gets;
   its ``[ERROR]`` lines are problems, its ``[WARNING]`` lines notes. Charts from a
   repository or a registry are not linted by Helm (``helm lint`` reads local charts only).
2. The chart rendered as the install renders it (``helm template`` with the release name,
   the app's namespace, its values, ``crds/`` included, the cluster's Kubernetes version),
   and every object sent to the API server as a server-side apply with ``dryRun=All``
   (field manager ``helm-harness``, ``fieldValidation=Strict``): the server validates it
   (schema, unknown fields, admission) and stores nothing. Objects without a namespace go
   to the app's namespace, which the caller creates first (the install needs it anyway).
3. Custom resources whose CRD the cluster does not serve yet but the chart (or an app it
   depends on) brings cannot be sent before the CRD exists: they are validated here
   against that CRD's ``openAPIV3Schema`` (types, enums, bounds, required and unknown
   fields; CEL rules are left to the API server at install) and named in the notes.

The suite's own schema is checked when the suite file is loaded (a load error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from harness.errors import HelmCancelled, HelmConnectionError, HelmError, UsageError
from harness.helm.client import Helm
from harness.kube import manifests
from harness.kube.apply import object_name, send
from harness.kube.client import CLIENT_ERRORS, api_error, server_version, status_body
from harness.kube.resources import Resolver, ResourceType

CRD_KIND = "CustomResourceDefinition"
_HELM_LINE = re.compile(r"^\[(?P<level>ERROR|WARNING)\]\s*(?P<text>.*)$")
_TYPED_PATCH = re.compile(r"^failed to create typed patch object \([^)]*\): (?P<rest>.*)$", re.S)
_FIELD_LINE = re.compile(r"^\.(?P<field>[^\s:][^:]*?): (?P<why>.+)$")
_DOCUMENT_START = re.compile(r"^---[ \t]*$", re.M)
_SOURCE = re.compile(r"^# Source: (?P<file>.+)$", re.M)
_NAMESPACE_MISSING = re.compile(r'namespaces? "(?P<name>[^"]+)" not found')


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (``helm lint``, ``render``, or the object as ``Kind/name``),
    the field when it is known, and the message (Helm's or the API server's words)."""

    where: str
    message: str
    field: str = ""

    def __str__(self) -> str:
        at = f"{self.field}: " if self.field and self.field not in self.message else ""
        return f"{self.where}: {at}{self.message}"


@dataclass
class LintResult:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0  # objects the API server (or a CRD's schema) validated

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"lint passed: {self.checked} object(s) validated"
        return f"lint found {len(self.problems)} problem(s)"


def lint_chart(
    helm: Helm,
    api: ApiClient,
    *,
    release: str,
    chart: str,
    namespace: str,
    chart_values: dict[str, Any],
    dependency_crds: Callable[[], list[dict[str, Any]]] = list,
) -> LintResult:
    """Lint ``chart`` as ``release`` in ``namespace`` (which must exist) with
    ``chart_values`` (:func:`harness.deploy.deployer.chart_values`); ``dependency_crds``
    gives the CRDs the apps this one depends on bring (asked only when needed)."""
    result = LintResult()
    kube_version = server_version(api)
    if Path(chart).exists():
        _helm_lint(helm, chart, namespace, kube_version, chart_values, result)
    else:
        result.notes.append(f"helm lint: skipped ({chart} is not a local chart)")
    flags = ["--include-crds", "--kube-version", kube_version]
    try:
        rendered = helm.template(release, chart, namespace=namespace, flags=flags, **chart_values)
    except (HelmConnectionError, HelmCancelled):
        raise
    except HelmError as exc:  # a template Helm cannot parse or execute, a `fail`
        if result.ok:  # else helm lint has said it, with the file
            result.problems.append(Problem("render", exc.reason.replace("\n", " ")))
        return result
    DryRun(api, namespace, rendered_objects(rendered), dependency_crds).check(result)
    return result


def rendered_objects(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The objects of ``helm template`` output, each with the chart file it came from
    (Helm's ``# Source:`` comment: ``chart/templates/x.yaml``, ``chart/crds/y.yaml``)."""
    found = []
    for chunk in _DOCUMENT_START.split(text):
        source = _SOURCE.search(chunk)
        for doc in manifests.load_all(chunk):
            if isinstance(doc, dict) and doc.get("kind"):
                found.append((source.group("file").strip() if source else "", doc))
    return found


def _helm_lint(
    helm: Helm,
    chart: str,
    namespace: str,
    kube_version: str,
    chart_values: dict[str, Any],
    result: LintResult,
) -> None:
    values = {k: v for k, v in chart_values.items() if k not in ("version", "repo")}
    passed, report = helm.lint(
        chart, namespace=namespace, flags=["--kube-version", kube_version], **values
    )
    for line in report.splitlines():
        match = _HELM_LINE.match(line.strip())
        if match is None:
            continue
        if match.group("level") == "ERROR":
            result.problems.append(Problem("helm lint", match.group("text")))
        else:
            result.notes.append(f"helm lint: {match.group('text')}")
    if not passed and result.ok:
        result.problems.append(Problem("helm lint", "failed (see its report)"))


class DryRun:
    """The rendered ``objects`` (with the chart file of each) validated one by one (see
    the module's docstring)."""

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        sourced: list[tuple[str, dict[str, Any]]],
        dependency_crds: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.sourced = sourced
        objects = [obj for _, obj in sourced]
        self.resolver = Resolver(api)
        self.chart_crds = [o for o in objects if _is_crd(o)]
        # CRDs Helm applies with the release (templates/), not before it (crds/)
        self.templated_crds = [o for source, o in sourced if _is_crd(o) and "/crds/" not in source]
        self.chart_namespaces = {
            str((o.get("metadata") or {}).get("name"))
            for o in objects
            if o.get("kind") == "Namespace" and o.get("apiVersion") == "v1"
        }
        self._dependency_crds = dependency_crds
        self._more_crds: list[dict[str, Any]] | None = None
        self._types: dict[tuple[str, str], ResourceType | None] = {}

    def check(self, result: LintResult) -> None:
        for source, obj in self.sourced:
            problems = self._check(obj, result)
            if source:
                problems = [replace(p, where=f"{p.where} ({source})") for p in problems]
            result.problems.extend(problems)

    def _check(self, obj: dict[str, Any], result: LintResult) -> list[Problem]:
        rtype = self._type_of(obj)
        if rtype is not None:
            result.checked += 1
            return self._apply(obj, rtype)
        crd = self._crd_for(obj)
        where = object_name(obj)
        if crd is None:
            return [
                Problem(
                    where,
                    f"the cluster serves no kind {obj.get('kind')} in {obj.get('apiVersion')}, "
                    "and no CRD of the chart or of the apps it depends on defines it",
                )
            ]
        if any(crd is templated for templated in self.templated_crds):
            return [
                Problem(
                    where,
                    f"its CRD {crd['metadata']['name']} is in the chart's templates, which Helm "
                    "applies with the release: the install fails (Helm cannot map this object "
                    "before the CRD exists: 'ensure CRDs are installed first'); put the CRD in "
                    "crds/, or in a chart an app this one dependsOn installs",
                )
            ]
        result.checked += 1
        result.notes.append(
            f"{where}: validated against its CRD's schema ({crd['metadata']['name']}, not in "
            "the cluster yet); the API server checks it at install"
        )
        return validate_against_crd(obj, crd)

    def _type_of(self, obj: dict[str, Any]) -> ResourceType | None:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        if key not in self._types:
            try:
                self._types[key] = self.resolver.by_kind(key[1], key[0])
            except UsageError:
                self._types[key] = None
        return self._types[key]

    def _crd_for(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        found = _matching_crd(obj, self.chart_crds)
        if found is None:
            if self._more_crds is None:
                self._more_crds = self._dependency_crds()
            found = _matching_crd(obj, self._more_crds)
        return found

    def _apply(self, obj: dict[str, Any], rtype: ResourceType) -> list[Problem]:
        namespace = None
        if rtype.namespaced:
            namespace = (obj.get("metadata") or {}).get("namespace") or self.namespace
        try:
            send(self.api, rtype, obj, namespace, dry_run=True)
        except ApiException as exc:
            missing = _NAMESPACE_MISSING.search(str(status_body(exc).get("message") or ""))
            if missing and missing.group("name") in self.chart_namespaces:
                # a namespace the chart itself makes: the object checked in the app's
                body = {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}
                return self._apply(body, rtype)
            return refusal(obj, exc)
        except CLIENT_ERRORS as exc:
            raise api_error(exc, f"dry-run of {object_name(obj)}") from exc
        return []


def refusal(obj: dict[str, Any], exc: ApiException) -> list[Problem]:
    """The API server's refusal of ``obj`` as problems: one per cause it names (with its
    field), else its message."""
    body = status_body(exc)
    message = str(body.get("message") or exc.reason or f"HTTP {exc.status}")
    causes = (body.get("details") or {}).get("causes") or []
    where = object_name(obj)
    problems = [
        Problem(where, str(c.get("message") or message), str(c.get("field") or ""))
        for c in causes
        if isinstance(c, dict) and (c.get("message") or c.get("field"))
    ]
    return (
        problems
        or typed_patch_errors(where, message)
        or [Problem(where, " ".join(message.split()))]
    )


def typed_patch_errors(where: str, message: str) -> list[Problem]:
    """Server-side apply's own refusals (a wrong type, a field no schema declares) come as
    one message, ``failed to create typed patch object (...): errors:`` then a line per
    field (or ``: .field: why`` for one): a problem each."""
    match = _TYPED_PATCH.match(message)
    if match is None:
        return []
    listed = match.group("rest").removeprefix("errors:")
    problems = []
    for line in listed.splitlines() or [listed]:
        found = _FIELD_LINE.match(line.strip())
        if found is not None:
            problems.append(Problem(where, found.group("why"), found.group("field")))
    return problems


def _is_crd(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == CRD_KIND and str(obj.get("apiVersion", "")).startswith(
        "apiextensions.k8s.io/"
    )


def crds_in(objects: Iterable[Any]) -> list[dict[str, Any]]:
    return [o for o in objects if isinstance(o, dict) and _is_crd(o)]


def _matching_crd(obj: dict[str, Any], crds: list[dict[str, Any]]) -> dict[str, Any] | None:
    group, _, _version = str(obj.get("apiVersion", "")).rpartition("/")
    for crd in crds:
        spec = crd.get("spec") or {}
        if spec.get("group") == group and (spec.get("names") or {}).get("kind") == obj.get("kind"):
            return crd
    return None


def validate_against_crd(obj: dict[str, Any], crd: dict[str, Any]) -> list[Problem]:
    """``obj`` checked against the ``openAPIV3Schema`` of its version in ``crd``, as the
    API server with strict field validation would (unknown fields refused unless the
    schema keeps them); ``apiVersion``, ``kind`` and ``metadata`` are the server's."""
    where = object_name(obj)
    version = str(obj.get("apiVersion", "")).rpartition("/")[2]
    versions = {v.get("name"): v for v in (crd.get("spec") or {}).get("versions") or []}
    served = versions.get(version)
    if served is None or not served.get("served", True):
        names = ", ".join(str(name) for name, v in versions.items() if v.get("served", True))
        return [Problem(where, f"its CRD {crd['metadata']['name']} serves {names}, not {version}")]
    schema = ((served.get("schema") or {}).get("openAPIV3Schema")) or {}
    if not schema:
        return []
    converted = json_schema(schema)
    for key in ("apiVersion", "kind", "metadata"):
        (converted.get("properties") or {}).pop(key, None)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.Draft7Validator(converted)
    problems = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(part) for part in error.absolute_path)
        problems.append(Problem(where, error.message, path))
    return problems


def json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A CRD's structural OpenAPI v3 schema as JSON Schema (draft 7): ``nullable``,
    ``x-kubernetes-int-or-string`` and ``x-kubernetes-preserve-unknown-fields`` made
    explicit, objects closed to unknown fields, formats and other extensions dropped."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [json_schema(child) for child in value if isinstance(child, dict)]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format", "description"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    if node.get("x-kubernetes-embedded-resource") and isinstance(out.get("properties"), dict):
        for key in ("apiVersion", "kind", "metadata"):
            out["properties"].setdefault(key, {})
    closed = node.get("type") == "object" and "additionalProperties" not in node
    if closed and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


__all__ = [
    "DryRun",
    "LintResult",
    "Problem",
    "crds_in",
    "json_schema",
    "lint_chart",
    "refusal",
    "validate_against_crd",
]
