"""kubectl's JSONPath, as ``wait --for=jsonpath=...`` expressions use it, over the
``python-jsonpath`` library: ``{.a.b}``, ``[N]``, ``[*]``, ``['dotted.key']`` and filters
such as ``[?(@.type=="Ready")]``.

kubectl's spelling is translated to the library's: the outer ``{}`` is dropped, the
leading ``.`` gets its ``$``, ``.'key'`` becomes ``['key']`` and an unquoted filter value
(``@.type==Ready``) is quoted. As in kubectl's output, ``==`` and ``!=`` compare a
number or boolean with a string by its printed text (``@.ready=="true"`` holds for
``true``). Recursive descent (``..``) and templates (``{range}``/``{end}``) are refused."""

from __future__ import annotations

import re
from typing import Any

from jsonpath import CompoundJSONPath, JSONPath, JSONPathEnvironment, JSONPathError

from harness.errors import UsageError

Path = JSONPath | CompoundJSONPath

_HINT = 'write e.g. {.status.phase} or {.status.conditions[?(@.type=="Ready")].status}'
_STRING = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
_BARE = r"""[^\s'"()\[\]@$&|!=<>,]"""
# What has to change between kubectl's spelling and the library's; string literals are
# matched whole so that nothing inside them is touched.
_PIECE = re.compile(
    rf"""(?P<descent>\.\.)
      |\.(?P<dotted>{_STRING})
      |(?P<string>{_STRING})
      |(?P<op>==|!=)\s*(?P<bare>{_BARE}+)(?!{_BARE}|\()""",
    re.X,
)


class _KubectlEnvironment(JSONPathEnvironment):
    def compare(self, left: object, operator: str, right: object) -> bool:
        if operator in ("==", "!=") and _mixed(left, right):
            same = text_of(left) == text_of(right)
            return same if operator == "==" else not same
        return super().compare(left, operator, right)


def _mixed(left: object, right: object) -> bool:
    """A string against a number or boolean (compared as kubectl prints them)."""
    scalar = (bool, int, float)
    return (isinstance(left, str) and isinstance(right, scalar)) or (
        isinstance(right, str) and isinstance(left, scalar)
    )


_ENV = _KubectlEnvironment()


def parse(expression: str) -> Path:
    """The compiled form of a path like ``{.status.conditions[?(@.type=="Ready")].status}``."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if not text:
        raise UsageError(f"empty JSONPath {expression!r} ({_HINT})")
    if text.startswith("{") or text.endswith("}"):
        raise UsageError(f"unsupported JSONPath {expression!r}: unbalanced braces; {_HINT}")
    if not text.startswith((".", "[")):
        raise UsageError(
            f"unsupported JSONPath {expression!r}: a path starts with '.' or '[' "
            f"(kubectl templates such as range/end are not supported); {_HINT}"
        )

    def translate(match: re.Match[str]) -> str:
        if match.group("descent"):
            raise UsageError(
                f"unsupported JSONPath {expression!r}: recursive descent '..' is not "
                f"supported; name each field, {_HINT}"
            )
        if match.group("dotted"):
            return f"[{match.group('dotted')}]"
        if match.group("string"):
            return match.group("string")
        return f"{match.group('op')}{_quoted(match.group('bare'))}"

    path = "$" + _PIECE.sub(translate, text)
    try:
        return _ENV.compile(path)
    except JSONPathError as exc:
        raise UsageError(f"unsupported JSONPath {expression!r}: {exc.message}; {_HINT}") from exc


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def evaluate(path: Path, obj: Any) -> list[Any]:
    """Every value the path reaches in ``obj`` (empty when it reaches nothing)."""
    try:
        return path.findall(obj)
    except JSONPathError as exc:
        raise UsageError(f"JSONPath {path}: {exc.message}") from exc


def text_of(value: Any) -> str:
    """A value as kubectl prints it in jsonpath output."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
