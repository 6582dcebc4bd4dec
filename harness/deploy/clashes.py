"""Apps of one run that render the same cluster-scoped object (a ClusterRole, a webhook
configuration, a CRD in templates/, ...) cannot be installed at the same time: Helm lets
one release own it and refuses the second ("invalid ownership metadata"). That is found
before anything is installed, by rendering each app with ``helm template``; such apps
then run one after another (:mod:`harness.plugin.preflight`), unless dependsOn joins them.
CRDs in a chart's ``crds/`` folder are not a clash: Helm skips those that already exist."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import yaml

from harness.errors import HarnessError, HelmError
from harness.helm.client import Helm
from harness.kube import manifests
from harness.suite.graph import dependency_groups
from harness.suite.model import App, Suite

RENDER_AT_ONCE = 4  # helm template processes at a time
CLUSTER_SCOPED_KINDS = {
    "APIService",
    "CSIDriver",
    "ClusterIssuer",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
}


def rendered_cluster_objects(helm: Helm, app: App) -> set[str]:
    """``Kind/name`` of each cluster-scoped object the app renders (templates only).

    Raises :class:`~harness.errors.HelmError` when Helm cannot render the app (the caller
    reports it: an app whose objects are unknown is never taken as having none)."""
    text = helm.template(
        app.release,
        app.source.chart,
        namespace="h-render",
        values=app.values,
        values_files=app.values_files,
        set_values=app.set_values,
        version=app.source.version,
        repo=app.source.repo,
    )
    try:
        documents = manifests.load_all(text)
    except yaml.YAMLError as exc:
        raise HarnessError(
            f"helm template of {app.name!r} gave YAML that cannot be read: {exc}"
        ) from exc
    found = set()
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") in CLUSTER_SCOPED_KINDS:
            found.add(f"{doc['kind']}/{(doc.get('metadata') or {}).get('name')}")
    return found


@dataclass(frozen=True)
class Clash:
    """Two apps rendering the same cluster-scoped object (``Kind/name``)."""

    first: tuple[Suite, App]
    second: tuple[Suite, App]
    obj: str

    @property
    def labels(self) -> tuple[str, str]:
        return label(*self.first), label(*self.second)

    def same_group(self) -> bool:
        """Whether the two are joined by dependsOn (one needs the other installed), so
        that they cannot run one after another."""
        (suite_a, app_a), (suite_b, app_b) = self.first, self.second
        if suite_a.path != suite_b.path:
            return False
        groups = dependency_groups(suite_a)
        return groups[app_a.name] == groups[app_b.name]

    def describe(self) -> str:
        first, second = self.labels
        return f"{first} and {second} both render the cluster-scoped {self.obj}"


def label(suite: Suite, app: App) -> str:
    return f"{suite.path.name}::{app.name}"


@dataclass
class ClashReport:
    """What the clash check found: pairs of apps rendering one cluster-scoped object, and
    apps it could not render (their install says why; their objects are unknown)."""

    clashes: list[Clash] = field(default_factory=list)
    unrendered: list[str] = field(default_factory=list)


def find_clashes(helm: Helm, apps: Iterable[tuple[Suite, App]]) -> ClashReport:
    """Render every app once, up to :data:`RENDER_AT_ONCE` at a time (each is a ``helm
    template`` process, and the run's first install waits for them all); one
    :class:`Clash` per pair rendering the same cluster-scoped object (the first app
    rendering it, and each later one, in the order given)."""
    apps = list(apps)
    with ThreadPoolExecutor(max_workers=RENDER_AT_ONCE, thread_name_prefix="hh-render") as pool:
        renders = [pool.submit(rendered_cluster_objects, helm, app) for _, app in apps]
    owners: dict[str, tuple[Suite, App]] = {}
    report = ClashReport()
    for (suite, app), render in zip(apps, renders, strict=True):
        name = label(suite, app)
        try:
            objects = render.result()
        except HelmError as exc:
            report.unrendered.append(
                f"{name}: not checked for clashes, helm template failed: {exc.reason}"
            )
            continue
        except HarnessError:
            raise
        except Exception as exc:  # never an INTERNALERROR: name the app
            raise HarnessError(f"{name}: rendering it for the clash check failed: {exc}") from exc
        for obj in sorted(objects):
            owner = owners.setdefault(obj, (suite, app))
            if owner != (suite, app):
                report.clashes.append(Clash(owner, (suite, app), obj))
    return report
