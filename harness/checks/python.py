"""``python``: the escape hatch. ``call: "package.module:function"`` imports the module and
calls the function with the app's :class:`~harness.checks.context.AppContext`.

The check passes when the function returns None or a truthy value. It fails when the
function returns a falsy value other than None (``False``, ``0``, ``[]``), or raises
AssertionError (the message, else the failing line, is shown). Any other exception is a bug
in the function and propagates with its traceback.

The module is imported as is when Python finds its top-level package; otherwise from the
nearest of the suite file's folder and its parents that holds that package (so
``tests.checks:fn`` works from ``suites/shop.suite.yaml`` with ``tests/`` beside
``suites/``). That folder is on ``sys.path`` only while the module is imported and the
function runs. The function may be an attribute path (``module:Class.method``)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.checks.context import AppContext
from harness.errors import CheckFailed, UsageError
from harness.suite.model import Check

DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
SHOWN_REPR = 200  # characters of a falsy return value shown in the failure


def parse_call(call: Any) -> tuple[str, str]:
    """``"pkg.mod:fn"`` as ``("pkg.mod", "fn")``; anything else is a UsageError."""
    if not isinstance(call, str) or call.count(":") != 1:
        raise UsageError(f"python.call must read 'package.module:function', not {call!r}")
    module, function = (part.strip() for part in call.split(":"))
    if not DOTTED.match(module) or not DOTTED.match(function):
        raise UsageError(f"python.call must read 'package.module:function', not {call!r}")
    return module, function


def run(ctx: AppContext, check: Check) -> None:
    unknown = set(check.spec) - {"call"}
    if unknown:
        raise UsageError(f"python: unknown key(s) {', '.join(sorted(unknown))} (allowed: call)")
    call = check.spec.get("call")
    module_name, attribute = parse_call(call)
    folder = import_folder(module_name, ctx.suite.path.parent)
    with _on_sys_path(folder):
        function = load(str(call), module_name, attribute, folder)
        try:
            result = function(ctx)
        except AssertionError as exc:
            raise CheckFailed(f"{call} to pass", _assertion_text(exc)) from exc
    if result is not None and not result:
        shown = repr(result)
        if len(shown) > SHOWN_REPR:
            shown = shown[:SHOWN_REPR] + "..."
        raise CheckFailed(f"{call} to pass", f"it returned {shown}")


def import_folder(module_name: str, suite_dir: Path) -> Path | None:
    """None when Python finds the module's top-level package as is; else the nearest of
    ``suite_dir`` and its parents holding it (None if none does)."""
    top = module_name.partition(".")[0]
    try:
        if importlib.util.find_spec(top) is not None:
            return None
    except ValueError:  # in sys.modules without a spec (__main__): importable as is
        return None
    for folder in (suite_dir, *suite_dir.parents):
        if (folder / top).is_dir() or (folder / f"{top}.py").is_file():
            return folder
    return None


def load(call: str, module_name: str, attribute: str, folder: Path | None) -> Callable[..., Any]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the module itself (or a package above it) missing is the suite's mistake; a
        # module it imports being missing is the module's own bug.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            where = f" nor in {folder}" if folder else ""
            raise UsageError(
                f"python.call {call!r}: no module named {module_name!r} on sys.path{where} "
                "(modules are found on sys.path, else beside the suite file or in a folder "
                "above it)"
            ) from exc
        raise
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise UsageError(
                f"python.call {call!r}: {module_name} ({module.__file__}) has no {attribute!r}"
            ) from exc
    if not callable(target):
        raise UsageError(f"python.call {call!r}: {attribute!r} is not a function")
    function: Callable[..., Any] = target
    return function


@contextmanager
def _on_sys_path(folder: Path | None) -> Iterator[None]:
    entry = str(folder) if folder is not None else None
    if entry is None or entry in sys.path:
        yield
        return
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def _assertion_text(exc: AssertionError) -> str:
    """The assertion's message, else the line that failed, with where it is."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    text = str(exc).strip() or (last.line.strip() if last and last.line else "") or "assert"
    where = f" ({Path(last.filename).name}:{last.lineno})" if last else ""
    return f"AssertionError: {text}{where}"
