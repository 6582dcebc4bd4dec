"""Partial-object matching, as ``assert`` and ``error`` checks (and chainsaw and kuttl
asserts) use it: an expected object matches an observed one when

- a mapping: every key it gives matches the observed value under that key (keys it does not
  give are not looked at);
- a list: every expected item matches a distinct observed item, in any order (a subset);
- anything else: the observed value is equal (``3`` is not ``"3"``, ``true`` not ``"True"``).

Where a literal key cannot say it, a key may be a kubectl JSONPath in braces, evaluated on
the observed value at that level: ``{.conditions[?(@.type=="Ready")].status}: "True"``
under ``status`` matches when some value the path reaches matches the expected one (see
:mod:`harness.kube.jsonpath`). :func:`expression_problems` finds the ones that do not parse,
so that the suite loader refuses them; :func:`first_difference` names where a match fails.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.errors import UsageError
from harness.kube import jsonpath

Loc = tuple[str | int, ...]


def is_expression(key: object) -> bool:
    """Whether a mapping key is a JSONPath expression (``{.a.b}``) instead of a field name."""
    return isinstance(key, str) and key.startswith("{") and key.endswith("}")


@functools.lru_cache(maxsize=512)
def _compiled(expression: str) -> jsonpath.Path:
    return jsonpath.parse(expression)


def expression_problems(expected: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Each JSONPath key of ``expected`` that does not parse: where it is, and why."""
    if isinstance(expected, dict):
        for key, value in expected.items():
            if is_expression(key):
                try:
                    _compiled(key)
                except UsageError as exc:
                    yield (*loc, key), str(exc)
            yield from expression_problems(value, (*loc, key))
    elif isinstance(expected, list):
        for index, item in enumerate(expected):
            yield from expression_problems(item, (*loc, index))


@dataclass(frozen=True)
class Difference:
    """Where an observed object first differs from the expected one, and how."""

    path: str  # status.conditions[1].status
    problem: str  # 'expected "Ready", observed "Pending"', or 'is missing'

    def __str__(self) -> str:
        if self.problem.startswith("is "):
            return f"{self.path or 'the object'} {self.problem}"
        return f"first difference at {self.path or 'the object'}: {self.problem}"


def matches(expected: Any, observed: Any) -> bool:
    return first_difference(expected, observed) is None


def first_difference(expected: Any, observed: Any) -> Difference | None:
    """None when ``observed`` matches ``expected``, else the first field that does not."""
    return _diff(expected, observed, "")


def closest(expected: Any, candidates: list[Any]) -> Any:
    """The candidate that agrees with ``expected`` in the most fields (the first of equals)."""
    return max(candidates, key=lambda candidate: _agreement(expected, candidate))


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if is_expression(key):
        return f"{path}{key}" if path else key
    if key and all(c.isalnum() or c in "_-" for c in key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value)


def _diff(expected: Any, observed: Any, path: str) -> Difference | None:
    if isinstance(expected, dict):
        if not isinstance(observed, dict):
            return Difference(path, f"expected a mapping, observed {_shown(observed)}")
        for key, value in expected.items():
            where = _join(path, key)
            if is_expression(key):
                found = jsonpath.evaluate(_compiled(key), observed)
                if not found:
                    return Difference(where, "is missing (the path reaches nothing)")
                differences = [_diff(value, item, where) for item in found]
                if all(differences):
                    best = max(range(len(found)), key=lambda i: _agreement(value, found[i]))
                    return differences[best]
                continue
            if key not in observed:
                return Difference(where, "is missing")
            difference = _diff(value, observed[key], where)
            if difference:
                return difference
        return None
    if isinstance(expected, list):
        if not isinstance(observed, list):
            return Difference(path, f"expected a list, observed {_shown(observed)}")
        return _diff_list(expected, observed, path)
    if (
        expected == observed
        and type(expected) is type(observed)
        or _same_number(expected, observed)
    ):
        return None
    hint = ""
    if isinstance(observed, str) and not isinstance(expected, str):
        hint = " (the server has text here: quote the expected value)"
    return Difference(path, f"expected {_shown(expected)}, observed {_shown(observed)}{hint}")


def _same_number(expected: Any, observed: Any) -> bool:
    number = (int, float)
    return (
        isinstance(expected, number)
        and isinstance(observed, number)
        and not isinstance(expected, bool)
        and not isinstance(observed, bool)
        and expected == observed
    )


def _diff_list(expected: list[Any], observed: list[Any], path: str) -> Difference | None:
    """Each expected item against a distinct observed item (any order): a search over
    the pairings, small as such lists are."""
    fits = [[j for j, item in enumerate(observed) if matches(want, item)] for want in expected]
    if _assign(fits, 0, set()):
        return None
    if len(observed) < len(expected):
        return Difference(
            path, f"expected at least {len(expected)} items, observed {len(observed)}"
        )
    for index, want in enumerate(expected):
        if fits[index]:
            continue
        if not observed:
            return Difference(_join(path, index), "is missing (the list is empty)")
        best = max(range(len(observed)), key=lambda j: _agreement(want, observed[j]))
        return _diff(want, observed[best], _join(path, best))
    return Difference(
        path, "the expected items match, but not each one an observed item of its own"
    )


def _assign(fits: list[list[int]], index: int, taken: set[int]) -> bool:
    if index == len(fits):
        return True
    return any(_assign(fits, index + 1, taken | {j}) for j in fits[index] if j not in taken)


def _agreement(expected: Any, observed: Any) -> float:
    """How many of the expected scalar fields the observed value has equal; a mapping's
    first key counts a half more (it tends to say which item it is: ``type``, ``name``)."""
    if isinstance(expected, dict):
        if not isinstance(observed, dict):
            return 0
        total = 0.0
        for position, (key, value) in enumerate(expected.items()):
            weight = 1.5 if position == 0 else 1.0
            if is_expression(key):
                found = jsonpath.evaluate(_compiled(key), observed)
                total += weight * max((_agreement(value, item) for item in found), default=0)
            elif key in observed:
                total += weight * _agreement(value, observed[key])
        return total
    if isinstance(expected, list):
        if not isinstance(observed, list):
            return 0
        return sum(
            max((_agreement(item, other) for other in observed), default=0) for item in expected
        )
    return 1 if _diff(expected, observed, "") is None else 0


def trimmed(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as a failure shows it: without managedFields and kubectl's
    last-applied-configuration."""
    shown = dict(obj)
    meta = dict(shown.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if meta:
        shown["metadata"] = meta
    return shown


__all__ = [
    "Difference",
    "closest",
    "expression_problems",
    "first_difference",
    "is_expression",
    "matches",
    "trimmed",
]
