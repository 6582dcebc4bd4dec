"""Helm-style templating of scenario text: ``{{ .Release.Name }}`` and
``{{ .Release.Namespace }}`` (with or without the spaces) become the app's release name and
namespace. Nothing else is a template: any other ``{{ ... }}`` is a load error
(:func:`check`), so that a typo does not reach the cluster as literal text.

Used by the ``apply``, ``assert`` and ``error`` checks and by ``catch``/``finally`` steps;
it imports nothing heavy, so the suite loader checks texts with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_EXPRESSION = re.compile(r"\{\{(?P<body>.*?)\}\}", re.S)
_KNOWN = (".Release.Name", ".Release.Namespace")
# Rendered at load time, when the namespace of a fresh app is not known yet.
PLACEHOLDER_NAMESPACE = "h-namespace"


def check(text: str) -> str | None:
    """The problem with the first template expression of ``text`` that is not one of the
    two known ones, or None."""
    for match in _EXPRESSION.finditer(text):
        body = match.group("body").strip()
        if body not in _KNOWN:
            return (
                f"unsupported template {match.group(0)!r}: only {{{{ .Release.Name }}}} and "
                "{{ .Release.Namespace }} are expanded"
            )
    if "{{" in _EXPRESSION.sub("", text):
        return "a template expression opened with '{{' is not closed with '}}'"
    return None


def render(text: str, release: str, namespace: str) -> str:
    """``text`` with the release name and namespace put in (after :func:`check` passed)."""
    values = {".Release.Name": release, ".Release.Namespace": namespace}
    return _EXPRESSION.sub(lambda m: values.get(m.group("body").strip(), m.group(0)), text)


def render_data(data: Any, release: str, namespace: str) -> Any:
    """A copy of parsed YAML with every text in it (mapping keys included) rendered."""
    if isinstance(data, str):
        return render(data, release, namespace)
    if isinstance(data, dict):
        return {
            render_data(key, release, namespace): render_data(value, release, namespace)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [render_data(item, release, namespace) for item in data]
    return data


Loc = tuple[str | int, ...]


def problems(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Where parsed YAML holds a text :func:`check` refuses (a key or a value), and why."""
    if isinstance(data, str):
        problem = check(data)
        if problem:
            yield loc, problem
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and (problem := check(key)):
                yield (*loc, key), problem
            yield from problems(value, (*loc, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from problems(item, (*loc, index))


__all__ = ["PLACEHOLDER_NAMESPACE", "check", "problems", "render", "render_data"]
