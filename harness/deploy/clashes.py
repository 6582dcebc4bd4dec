"""Apps of one run that render the same cluster-scoped object (a ClusterRole, a webhook
configuration, a CRD in templates/, ...) cannot be installed at the same time: Helm
refuses the second ("invalid ownership metadata"), or not, depending on which app ran
first. That is found before anything is installed, by rendering each app with
``helm template``, and reported naming both apps. CRDs in a chart's ``crds/`` folder are
not a clash: Helm skips those that already exist."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import yaml

from harness.errors import HarnessError, HelmError
from harness.helm.client import Helm
from harness.kube import manifests
from harness.suite.model import App, Suite

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


@dataclass
class ClashReport:
    """What the clash check found: pairs of apps that cannot share the cluster, and apps
    it could not render (their install says why; their objects are unknown)."""

    clashes: list[str] = field(default_factory=list)
    unrendered: list[str] = field(default_factory=list)


def find_clashes(helm: Helm, apps: Iterable[tuple[Suite, App]]) -> ClashReport:
    """Render every app once; one line per pair rendering the same cluster-scoped object."""
    owners: dict[str, str] = {}
    report = ClashReport()
    for suite, app in apps:
        label = f"{suite.path.name}::{app.name}"
        try:
            objects = rendered_cluster_objects(helm, app)
        except HelmError as exc:
            report.unrendered.append(
                f"{label}: not checked for clashes, helm template failed: {exc.reason}"
            )
            continue
        except HarnessError:
            raise
        except Exception as exc:  # never an INTERNALERROR: name the app
            raise HarnessError(f"{label}: rendering it for the clash check failed: {exc}") from exc
        for obj in sorted(objects):
            if obj in owners and owners[obj] != label:
                report.clashes.append(
                    f"{owners[obj]} and {label} both render the cluster-scoped {obj}: they "
                    "cannot be installed in one cluster at the same time (Helm lets one "
                    "release own it); run them in separate runs, or give one of them "
                    "values that rename it"
                )
            owners.setdefault(obj, label)
    return report
