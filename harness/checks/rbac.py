"""``rbac``: what a ServiceAccount may and may not do, asked of the API server's own
authorizer with SubjectAccessReviews (``authorization.k8s.io/v1``).

Each entry of ``can`` and ``cannot`` reads ``VERB RESOURCE [in NAMESPACE]``:

- ``VERB``: a Kubernetes verb (``get``, ``list``, ``create``, ``deletecollection``,
  ``impersonate``...) or ``*``;
- ``RESOURCE``: a plural, singular, short name or kind (``secrets``, ``deploy``), optionally
  with its group (``deployments.apps``) and a subresource (``pods/log``,
  ``deployments.apps/scale``); ``*`` (any resource, of any group unless one is given); or a
  non-resource URL starting with ``/`` (``get /metrics``). Names without a group are looked
  up in the core group first, then in every group the cluster serves;
- ``in NAMESPACE``: where to ask; default the app's namespace. Cluster-scoped resources
  (``nodes``, ``namespaces``) and URLs take no namespace.

The subject is ``system:serviceaccount:<namespace>:<serviceAccount>`` in the groups a
ServiceAccount token carries (``system:serviceaccounts``,
``system:serviceaccounts:<namespace>``, ``system:authenticated``), the ServiceAccount being
in the app's namespace. Without ``serviceAccount``, every ServiceAccount the release
renders is checked. A named ServiceAccount must exist."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness.checks.context import AppContext
from harness.errors import CheckFailed, NotFound, UsageError
from harness.kube.client import call
from harness.suite.model import Check

VERB = re.compile(r"^(\*|[a-z][a-zA-Z]*)$")
RESOURCE = re.compile(
    r"^(?P<name>\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"(\.(?P<group>[a-z0-9]([-a-z0-9.]*[a-z0-9])?))?"
    r"(/(?P<sub>[a-z][a-z0-9]*))?$"
)
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
GRAMMAR = "write 'VERB RESOURCE' or 'VERB RESOURCE in NAMESPACE', e.g. 'create secrets'"


@dataclass(frozen=True)
class Access:
    """One ``can``/``cannot`` entry, parsed but not yet resolved against the cluster."""

    text: str
    verb: str
    resource: str  # as written, without group or subresource ("deploy"); or a URL ("/metrics")
    group: str | None = None  # None: not given
    subresource: str = ""
    namespace: str | None = None  # None: the app's (for namespaced resources)

    @property
    def is_url(self) -> bool:
        return self.resource.startswith("/")


def parse_access(text: Any) -> Access:
    """``"create secrets"``, ``"get deployments.apps/scale in kube-system"``, ``"get /healthz"``
    as an :class:`Access`; anything else is a UsageError naming the entry."""
    if not isinstance(text, str):
        raise UsageError(f"rbac entry {text!r} is not a string: {GRAMMAR}")
    words = text.split()
    namespace = None
    if len(words) == 4 and words[2] == "in":
        namespace = words[3]
        if not NAMESPACE.match(namespace):
            raise UsageError(f"rbac entry {text!r}: {namespace!r} is not a namespace name")
    elif len(words) != 2:
        raise UsageError(f"rbac entry {text!r}: {GRAMMAR}")
    verb, resource = words[0], words[1]
    if not resource.startswith("/"):
        resource = resource.lower()  # kinds are accepted too: "get Deployment"
    if not VERB.match(verb):
        raise UsageError(f"rbac entry {text!r}: {verb!r} is not a verb")
    if resource.startswith("/"):
        if namespace is not None:
            raise UsageError(f"rbac entry {text!r}: a URL has no namespace; drop 'in {namespace}'")
        return Access(text, verb, resource)
    found = RESOURCE.match(resource)
    if not found:
        raise UsageError(
            f"rbac entry {text!r}: {resource!r} is not a resource "
            "(write e.g. secrets, deployments.apps, pods/log)"
        )
    return Access(
        text,
        verb,
        found["name"],
        group=found["group"],
        subresource=found["sub"] or "",
        namespace=namespace,
    )


@dataclass(frozen=True)
class RbacSpec:
    service_account: str | None
    can: tuple[Access, ...]
    cannot: tuple[Access, ...]


def parse_spec(spec: dict[str, Any]) -> RbacSpec:
    unknown = set(spec) - {"serviceAccount", "can", "cannot"}
    if unknown:
        raise UsageError(
            f"rbac: unknown key(s) {', '.join(sorted(unknown))} "
            "(allowed: serviceAccount, can, cannot)"
        )
    account = spec.get("serviceAccount")
    if account is not None and (not isinstance(account, str) or not NAMESPACE.match(account)):
        raise UsageError(f"rbac.serviceAccount must be a ServiceAccount name, not {account!r}")
    lists = {}
    for key in ("can", "cannot"):
        entries = spec.get(key) or []
        if not isinstance(entries, list):
            raise UsageError(
                f"rbac.{key} must be a list of 'VERB RESOURCE' entries, not {entries!r}"
            )
        lists[key] = tuple(parse_access(entry) for entry in entries)
    if not lists["can"] and not lists["cannot"]:
        raise UsageError("rbac needs 'can' or 'cannot' entries (e.g. cannot: ['create secrets'])")
    return RbacSpec(account, can=lists["can"], cannot=lists["cannot"])


def run(ctx: AppContext, check: Check) -> None:
    spec = parse_spec(check.spec)
    accounts = _accounts(ctx, spec.service_account)
    resolve = _Resolution(ctx)
    questions = [(access, resolve(access), True) for access in spec.can] + [
        (access, resolve(access), False) for access in spec.cannot
    ]
    authz = client.AuthorizationV1Api(ctx.api)
    wrongly_allowed: list[str] = []
    wrongly_denied: list[str] = []
    for namespace, name in accounts:
        for access, attributes, should_allow in questions:
            status = _review(authz, namespace, name, attributes)
            if bool(status.allowed) != should_allow:
                line = f"{namespace}/{name}: {_described(access, attributes, status)}"
                (wrongly_denied if should_allow else wrongly_allowed).append(line)
    if wrongly_allowed or wrongly_denied:
        raise _failure(_expected(accounts, spec), wrongly_allowed, wrongly_denied)


def _described(access: Access, attributes: Any, status: Any) -> str:
    """``create secrets in ns — RBAC: allowed by RoleBinding ...``: what was asked, and the
    authorizer's reason."""
    reason = status.reason or ("" if status.allowed else "no rule allows it")
    if status.evaluation_error:
        reason += f" (evaluation error: {status.evaluation_error})"
    asked = f"{access.verb} {_shown(access)}{_where(attributes)}"
    return f"{asked} — {reason.strip()}" if reason.strip() else asked


def _failure(expected: str, wrongly_allowed: list[str], wrongly_denied: list[str]) -> CheckFailed:
    observed = []
    details = []
    if wrongly_allowed:
        observed.append(f"{len(wrongly_allowed)} allowed that should be denied")
        details += ["allowed but should not be:", *(f"  {x}" for x in wrongly_allowed)]
    if wrongly_denied:
        observed.append(f"{len(wrongly_denied)} denied that should be allowed")
        details += ["denied but should be allowed:", *(f"  {x}" for x in wrongly_denied)]
    return CheckFailed(expected, "; ".join(observed), details="\n".join(details))


def _accounts(ctx: AppContext, name: str | None) -> list[tuple[str, str]]:
    """(namespace, name) of the ServiceAccounts to check."""
    if name is None:
        rendered = sorted(
            {
                (ctx.namespace_of(sa), sa["metadata"]["name"])
                for sa in ctx.objects_of("ServiceAccount")
            }
        )
        if not rendered:
            raise UsageError(
                f"rbac: the release {ctx.release} renders no ServiceAccount; "
                "name the one to check with serviceAccount"
            )
        return rendered
    try:
        call(client.CoreV1Api(ctx.api).read_namespaced_service_account, name, ctx.namespace)
    except NotFound as exc:
        raise CheckFailed(f"ServiceAccount {ctx.namespace}/{name} to exist", "not found") from exc
    return [(ctx.namespace, name)]


class _Resolution:
    """Turns parsed entries into SubjectAccessReview attributes, using discovery."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._core: dict[str, tuple[str, bool]] | None = None  # any name -> (plural, namespaced)

    def __call__(self, access: Access) -> Any:
        if access.is_url:
            return client.V1NonResourceAttributes(verb=access.verb, path=access.resource)
        group, plural, namespaced = self._type(access)
        if not namespaced and access.namespace is not None:
            raise UsageError(
                f"rbac entry {access.text!r}: {plural} are cluster-scoped; "
                f"drop 'in {access.namespace}'"
            )
        return client.V1ResourceAttributes(
            verb=access.verb,
            group=group,
            resource=plural,
            subresource=access.subresource or None,
            namespace=(access.namespace or self._ctx.namespace) if namespaced else None,
        )

    def _type(self, access: Access) -> tuple[str, str, bool]:
        """(group, plural, namespaced) of the entry's resource."""
        if access.resource == "*":
            return (access.group if access.group is not None else "*"), "*", True
        if access.group is None:
            core = self._core_names().get(access.resource)
            if core is not None:
                return "", core[0], core[1]
        name = access.resource + (f".{access.group}" if access.group else "")
        try:
            rtype = self._ctx.resolver.by_name(name)
        except UsageError as exc:
            raise UsageError(f"rbac entry {access.text!r}: {exc}") from exc
        return rtype.group, rtype.plural, rtype.namespaced

    def _core_names(self) -> dict[str, tuple[str, bool]]:
        # The core group first, as kubectl does: "pods" is v1 pods, not metrics.k8s.io pods.
        if self._core is None:
            self._core = {}
            listing = client.CoreV1Api(self._ctx.api).get_api_resources()
            for res in listing.resources:
                if "/" in res.name:
                    continue
                found = (res.name, bool(res.namespaced))
                for alias in [
                    res.name,
                    res.singular_name,
                    res.kind.lower(),
                    *(res.short_names or []),
                ]:
                    if alias:
                        self._core.setdefault(alias, found)
        return self._core


def _review(authz: client.AuthorizationV1Api, namespace: str, name: str, attributes: Any) -> Any:
    key = (
        "non_resource_attributes"
        if isinstance(attributes, client.V1NonResourceAttributes)
        else "resource_attributes"
    )
    spec = client.V1SubjectAccessReviewSpec(
        user=f"system:serviceaccount:{namespace}:{name}",
        groups=[
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        ],
        **{key: attributes},
    )
    review = authz.create_subject_access_review(client.V1SubjectAccessReview(spec=spec))
    return review.status


def _shown(access: Access) -> str:
    resource = access.resource + (f".{access.group}" if access.group else "")
    return resource + (f"/{access.subresource}" if access.subresource else "")


def _where(attributes: Any) -> str:
    if isinstance(attributes, client.V1ResourceAttributes):
        return f" in {attributes.namespace}" if attributes.namespace else " (cluster-wide)"
    return ""


def _expected(accounts: list[tuple[str, str]], spec: RbacSpec) -> str:
    who = ", ".join(f"ServiceAccount {ns}/{name}" for ns, name in accounts)
    parts = []
    if spec.can:
        parts.append(f"can {', '.join(a.text for a in spec.can)}")
    if spec.cannot:
        parts.append(f"cannot {', '.join(a.text for a in spec.cannot)}")
    return f"{who} {'; '.join(parts)}"
