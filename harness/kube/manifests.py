"""Reading YAML as Kubernetes reads it: rendered charts (``helm template``, ``helm get
manifest``), live objects, chart metadata and suite files.

PyYAML's safe loader implements YAML 1.1 and gives up on some of its scalars that
Kubernetes (whose YAML library turns everything into JSON) takes as plain strings: a
bare ``=`` (the "value" tag, found in widely used operators' CRDs as an enum entry: the
safe loader raises "could not determine a constructor for the tag
'tag:yaml.org,2002:value'") and timestamps such as ``2026-12-01`` (the safe loader makes
``datetime`` objects, which JSON cannot hold). :class:`KubeLoader` reads both as the
strings Kubernetes sees; everything else is as the safe loader reads it.
"""

from __future__ import annotations

from typing import Any

import yaml


class KubeLoader(yaml.SafeLoader):
    """The safe loader, with YAML 1.1's ``=`` and timestamps read as strings."""


def _as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


KubeLoader.add_constructor("tag:yaml.org,2002:value", _as_string)
KubeLoader.add_constructor("tag:yaml.org,2002:timestamp", _as_string)


def load(text: str) -> Any:
    """The first document of ``text``."""
    return yaml.load(text, Loader=KubeLoader)  # noqa: S506 - KubeLoader is a SafeLoader


def load_all(text: str) -> list[Any]:
    """Every document of ``text`` (empty ones as None)."""
    return list(yaml.load_all(text, Loader=KubeLoader))  # noqa: S506
