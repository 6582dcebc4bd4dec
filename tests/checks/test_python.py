"""The python check: its call strings and module lookup on their own, and the check calling
functions beside the suite with the app on the session's kwok cluster
(``tests/charts/guarded``)."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.checks import run_check
from harness.checks.python import import_folder, parse_call
from harness.errors import UsageError
from tests.checks.conftest import GUARDED, READY, check, failure

# -- python call strings ------------------------------------------------------------------------


def test_python_call_strings() -> None:
    assert parse_call("tests.checks:web_cart_works") == ("tests.checks", "web_cart_works")
    assert parse_call("checks:Suite.method") == ("checks", "Suite.method")
    for bad in ("tests.checks", "a:b:c", "tests/checks.py:fn", "mod:", ":fn", "mod:1fn", None):
        with pytest.raises(UsageError, match="python.call must read 'package.module:function'"):
            parse_call(bad)


def test_python_modules_are_found_beside_the_suite_or_above_it(tmp_path: Path) -> None:
    top = f"hh_pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / top).mkdir()
    (tmp_path / "suites").mkdir()
    assert import_folder(f"{top}.checks", tmp_path / "suites") == tmp_path
    assert import_folder("json", tmp_path / "suites") is None  # importable as is
    assert import_folder(f"{top}_missing.checks", tmp_path / "suites") is None


# -- the check on the cluster ------------------------------------------------------------------


PY_CHECKS = """
from harness.checks.no_restarts import PODS


def pods_listed(app):
    return app.lister_for(PODS)(namespace=app.namespace)["items"] is not None


def nothing(app):
    return None


def says_no(app):
    return False


def wants_five_pods(app):
    pods = app.lister_for(PODS)(namespace=app.namespace)["items"]
    assert len(pods) == 5, f"want 5 pods in {app.namespace}, found {len(pods)}"


def bare_assert(app):
    assert app.namespace == "elsewhere"


def buggy(app):
    return {}["missing"]


not_a_function = 3
"""


@pytest.mark.cluster
def test_python(install_app: Any, tmp_path: Path) -> None:
    ctx = install_app(GUARDED, name="py")
    run_check(ctx, READY)
    module = f"hh_checks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(PY_CHECKS))  # beside t.suite.yaml

    run_check(ctx, check("python", call=f"{module}:pods_listed"))
    run_check(ctx, check("python", call=f"{module}:nothing"))
    message = failure(ctx, "python", call=f"{module}:says_no")
    assert message == f"expected {module}:says_no to pass; observed it returned False"
    message = failure(ctx, "python", call=f"{module}:wants_five_pods")
    assert f"AssertionError: want 5 pods in {ctx.namespace}, found 1 ({module}.py:" in message
    message = failure(ctx, "python", call=f"{module}:bare_assert")
    assert 'AssertionError: assert app.namespace == "elsewhere"' in message
    with pytest.raises(KeyError, match="missing"):
        run_check(ctx, check("python", call=f"{module}:buggy"))
    (tmp_path / f"{module}_broken.py").write_text("import hh_no_such_dependency\n")
    with pytest.raises(ModuleNotFoundError, match="hh_no_such_dependency"):
        run_check(ctx, check("python", call=f"{module}_broken:fn"))

    with pytest.raises(UsageError, match="has no 'absent'"):
        run_check(ctx, check("python", call=f"{module}:absent"))
    with pytest.raises(UsageError, match="'not_a_function' is not a function"):
        run_check(ctx, check("python", call=f"{module}:not_a_function"))
    with pytest.raises(UsageError, match=f"no module named '{module}_gone'"):
        run_check(ctx, check("python", call=f"{module}_gone:fn"))
    with pytest.raises(UsageError, match="python.call must read"):
        run_check(ctx, check("python", call="no colon"))
    assert str(tmp_path) not in sys.path


@pytest.mark.cluster
def test_python_package_beside_the_suites_folder(install_app: Any, tmp_path: Path) -> None:
    ctx = install_app(GUARDED, name="pkg")
    top = f"hh_pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / top).mkdir()
    (tmp_path / top / "__init__.py").write_text("")
    (tmp_path / top / "checks.py").write_text("def ok(app):\n    return app.release == 'pkg'\n")
    suite = dataclasses.replace(ctx.suite, path=tmp_path / "suites" / "shop.suite.yaml")
    moved = dataclasses.replace(ctx, suite=suite)
    run_check(moved, check("python", call=f"{top}.checks:ok"))
