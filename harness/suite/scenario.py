"""What the suite loader checks of ``apply``, ``assert`` and ``error`` checks beyond the
schema, so that a mistake is a load error (file, line, key) and not a failure on the
cluster: template expressions (:mod:`harness.suite.templating`), an ``apply`` file (read
now: the check applies what was read), its YAML and objects, and ``{JSONPath}`` keys of a
partial object (:mod:`harness.kube.match`). Imports nothing heavy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.kube import manifests
from harness.kube.match import expression_problems
from harness.suite import templating

Loc = tuple[str | int, ...]
KINDS = ("apply", "assert", "error")


class Problem(Exception):
    """A problem at ``loc``, relative to the check kind's mapping."""

    def __init__(self, loc: Loc, message: str) -> None:
        self.loc = loc
        self.message = message
        super().__init__(message)


def prepare(kind: str, spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``spec`` checked; an ``apply`` file's text is put under ``manifest`` (``file`` is
    kept: it names the item). Raises :class:`Problem`."""
    if kind == "apply":
        return prepare_apply(spec, folder)
    for loc, problem in templating.problems(spec):
        raise Problem(loc, problem)
    for loc, problem in expression_problems(spec.get("object"), ("object",)):
        raise Problem(loc, problem)
    return spec


def prepare_apply(spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """An apply-shaped mapping (``manifest`` or ``file``) checked, with the text read."""
    if "file" in spec:
        path = folder / str(spec["file"])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError as exc:
            raise Problem(
                ("file",), f"file not found: {path} (a file is relative to the suite file)"
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise Problem(("file",), f"cannot read {path}: {exc}") from exc
        where: Loc = ("file",)
        shown = str(path)
    else:
        text = str(spec["manifest"])
        where = ("manifest",)
        shown = "the manifest"
    problem = templating.check(text)
    if problem:
        raise Problem(where, f"{shown}: {problem}")
    rendered = templating.render(text, "release", templating.PLACEHOLDER_NAMESPACE)
    try:
        documents = manifests.load_all(rendered)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1} of it" if mark else ""
        raise Problem(where, f"{shown} is not valid YAML{at}: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise Problem(where, f"{shown} is not valid YAML: {exc}") from exc
    objects = [doc for doc in documents if doc is not None]
    if not objects:
        raise Problem(where, f"{shown} holds no objects")
    for number, obj in enumerate(objects, 1):
        missing = _missing(obj)
        if missing:
            raise Problem(where, f"{shown}: object {number} {missing}")
    return {**spec, "manifest": text}


def _missing(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return "is not a mapping (a Kubernetes object has apiVersion, kind and metadata)"
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            return f"has no {key}"
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return f"({obj['kind']}) has no metadata.name"
    return None


__all__ = ["KINDS", "Problem", "prepare", "prepare_apply"]
