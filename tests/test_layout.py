"""The package's shape: no import circle, a plugin that stays light, one public API."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import harness

PACKAGE = Path(harness.__file__).parent


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph() -> dict[str, set[str]]:
    """Module -> the harness modules it imports, at module level or inside functions (an
    import deferred into a function still makes a circle at run time); imports only for
    type checkers do not count."""
    modules = _module_names()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def imported(node: ast.AST, found: set[str]) -> set[str]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                imported(child, found)
            return found
        if isinstance(node, ast.Import):
            found.update(filter(None, (owner(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                target = full if full in modules else owner(node.module)
                if target:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            imported(child, found)
        return found

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = imported(ast.parse(path.read_text(encoding="utf-8")), set())
        graph[name] = {m for m in found if m.startswith("harness") and m != name}
    return graph


def test_the_import_graph_is_walked() -> None:
    graph = import_graph()
    assert "harness.plugin.state" in graph["harness.plugin"]
    assert "harness.errors" in graph["harness.kube.wait"]


def test_no_import_circle() -> None:
    sorter = graphlib.TopologicalSorter(import_graph())
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None


def test_a_circle_is_found_when_there_is_one(tmp_path: Path) -> None:
    """The check above can fail: the same walk sees a circle through a function import."""
    graph = import_graph()
    graph["harness.errors"] = {"harness.kube.wait"}  # as if errors imported wait in a function
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return
    raise AssertionError("the circle errors -> kube.wait -> errors was not found")


def test_the_plugin_imports_no_heavy_library() -> None:
    """Every pytest run in the environment imports the plugin: it must not load the
    Kubernetes client, pyhelm3, jinja2 or jsonschema until a suite needs them."""
    code = (
        "import sys, harness.plugin\n"
        "heavy = ('kubernetes', 'pyhelm3', 'jinja2', 'jsonschema', 'jsonpath', 'psutil')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_plugin_module_imports_only_pytest_its_options_and_state() -> None:
    tree = ast.parse((PACKAGE / "plugin" / "__init__.py").read_text(encoding="utf-8"))
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.startswith("harness")}
    assert ours <= {"harness.plugin.options", "harness.plugin.state", "harness.plugin.fixtures"}
    assert "pytest" in imported


def test_public_api_is_all_and_resolves() -> None:
    assert harness.__all__ == sorted(harness.__all__)
    assert set(harness.__all__) == {*harness._EXPORTS, "__version__"}
    for name in harness.__all__:
        assert getattr(harness, name) is not None
    public_errors = {n for n in harness.__all__ if n.endswith(("Error", "Timeout"))}
    assert all(issubclass(getattr(harness, n), Exception) for n in public_errors)


def test_check_registry_equals_the_schemas_kinds() -> None:
    """One registry of check kinds: the schema's check properties, the loader's kinds and
    the modules implementing them agree."""
    from harness.checks import CHECK_KINDS, KINDS, check_function
    from harness.suite.model import suite_schema

    check = suite_schema()["$defs"]["check"]
    beside = {"name", "timeout", "runbook", "xfail", "catch", "finally"}  # not check kinds
    schema_kinds = set(check["properties"]) - beside
    assert schema_kinds == set(CHECK_KINDS)
    assert {tuple(one["required"]) for one in check["oneOf"]} == {(k,) for k in CHECK_KINDS}
    for kind in KINDS.values():
        assert (PACKAGE / "checks" / f"{kind.module}.py").is_file(), kind
        assert callable(check_function(kind.name))


def test_docs_list_every_option_and_provider_of_the_registries() -> None:
    """One home per fact: the option table and the provider registry are what the docs
    list, and what the ``helm-harness`` command offers."""
    import re

    from harness.cli.main import build_parser
    from harness.clusters.registry import PROVIDER_CHOICES, PROVIDERS
    from harness.plugin.options import OPTIONS, VALUE_OPTIONS

    docs = PACKAGE.parent / "docs"
    options_page = (docs / "options.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(--[a-z0-9-]+)", options_page, re.M))
    documented |= set(re.findall(r"`(--[a-z0-9-]+)[ =`]", options_page))
    assert {option.flag for option in OPTIONS} <= documented
    ini_keys = set(re.findall(r"^\| `--.*?\| (`helm_harness_.*?) \|", options_page, re.M))
    documented_keys = {key for cell in ini_keys for key in re.findall(r"`(\w+)`", cell)}
    assert documented_keys == {option.ini for option in OPTIONS}
    assert {"--metrics-wait", "--kind-image"} <= VALUE_OPTIONS
    assert "--upgrade" not in VALUE_OPTIONS

    providers_page = (docs / "providers.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `([a-z0-9]+)` \|", providers_page, re.M)) == set(PROVIDERS)
    parser = build_parser()
    for name in PROVIDER_CHOICES:
        assert parser.parse_args(["cluster", "up", "--cluster", name]).cluster == name
    with pytest.raises(SystemExit):
        parser.parse_args(["cluster", "up", "--cluster", "minikube"])
