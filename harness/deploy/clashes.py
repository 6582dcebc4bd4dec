"""Apps of one run that render the same cluster-scoped object (a ClusterRole, a webhook
configuration, a CRD in templates/, ...) cannot be installed at the same time: Helm
refuses the second ("invalid ownership metadata"), or not, depending on which app ran
first. That is found before anything is installed, by rendering each app with
``helm template``, and reported naming both apps. CRDs in a chart's ``crds/`` folder are
not a clash: Helm skips those that already exist."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

from harness.errors import HarnessError
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


def rendered_cluster_objects(helm: Path, app: App) -> set[str]:
    """``Kind/name`` of each cluster-scoped object the app renders (templates only)."""
    argv = [str(helm), "template", app.release, app.source.chart, "--namespace", "h-render"]
    for path in app.values_files:
        argv += ["--values", str(path)]
    argv += ["--values", "-"]
    for key, value in app.set_values.items():
        argv += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    if app.source.version:
        argv += ["--version", app.source.version]
    if app.source.repo:
        argv += ["--repo", app.source.repo]
    proc = subprocess.run(
        argv, input=json.dumps(app.values), capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        return set()  # the install item reports Helm's reason; nothing to compare here
    found = set()
    try:
        documents = manifests.load_all(proc.stdout)
    except yaml.YAMLError as exc:
        raise HarnessError(
            f"helm template of {app.name!r} gave YAML that cannot be read: {exc}"
        ) from exc
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") in CLUSTER_SCOPED_KINDS:
            found.add(f"{doc['kind']}/{(doc.get('metadata') or {}).get('name')}")
    return found


def find_clashes(helm: Path, apps: Iterable[tuple[Suite, App]]) -> list[str]:
    """One line per pair of apps rendering the same cluster-scoped object."""
    owners: dict[str, str] = {}
    clashes = []
    for suite, app in apps:
        label = f"{suite.path.name}::{app.name}"
        try:
            objects = rendered_cluster_objects(helm, app)
        except HarnessError:
            raise
        except Exception as exc:  # never an INTERNALERROR: name the app
            raise HarnessError(f"{label}: rendering it for the clash check failed: {exc}") from exc
        for obj in sorted(objects):
            if obj in owners and owners[obj] != label:
                clashes.append(
                    f"{owners[obj]} and {label} both render the cluster-scoped {obj}: they "
                    "cannot be installed in one cluster at the same time (Helm lets one "
                    "release own it); run them in separate runs, or give one of them "
                    "values that rename it"
                )
            owners.setdefault(obj, label)
    return clashes
