"""The part of kubectl's JSONPath that ``wait --for=jsonpath=...`` expressions use:
``{.a.b}``, ``[N]``, ``[*]``, and filters ``[?(@.type=="Ready")]`` (== and !=)."""

from __future__ import annotations

import re
from typing import Any

from harness.errors import UsageError

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-]+|'[^']*'|"[^"]*")
      |\[(?P<index>-?\d+)\]
      |\[(?P<star>\*)\]
      |\[\?\(@\.(?P<fkey>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*(?P<fval>"[^"]*"|'[^']*'|[^)\s]+)\)\]
      |\[(?P<quoted>'[^']*'|"[^"]*")\]""",
    re.X,
)


def parse(expression: str) -> list[tuple[str, Any]]:
    """Steps of a path like ``{.status.conditions[?(@.type=="Ready")].status}``."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise UsageError(f"unsupported JSONPath {expression!r} at {text[pos:]!r}")
        if match.group("field") is not None:
            steps.append(("field", match.group("field").strip("'\"")))
        elif match.group("quoted") is not None:
            steps.append(("field", match.group("quoted")[1:-1]))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("star") is not None:
            steps.append(("all", None))
        else:
            value = match.group("fval").strip("'\"")
            steps.append(("filter", (match.group("fkey"), match.group("op"), value)))
        pos = match.end()
    if not steps:
        raise UsageError(f"empty JSONPath {expression!r}")
    return steps


def evaluate(steps: list[tuple[str, Any]], obj: Any) -> list[Any]:
    """Every value the path reaches in ``obj`` (empty when it reaches nothing)."""
    current = [obj]
    for kind, arg in steps:
        following: list[Any] = []
        for value in current:
            if kind == "field" and isinstance(value, dict) and arg in value:
                following.append(value[arg])
            elif kind == "index" and isinstance(value, list) and -len(value) <= arg < len(value):
                following.append(value[arg])
            elif kind == "all" and isinstance(value, list):
                following.extend(value)
            elif kind == "all" and isinstance(value, dict):
                following.extend(value.values())
            elif kind == "filter" and isinstance(value, list):
                key, op, wanted = arg
                for item in value:
                    found = _dig(item, key.split("."))
                    same = found is not None and text_of(found) == wanted
                    if (op == "==" and same) or (op == "!=" and not same):
                        following.append(item)
        current = following
    return current


def _dig(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def text_of(value: Any) -> str:
    """A value as kubectl prints it in jsonpath output."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
