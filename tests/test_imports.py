"""Dependencies point one way: no module of app/, ingest/ or eval/ imports, at load time or inside a
function, a module that imports it back; ingest/ uses only the lower layer of app/; nothing below
the user interfaces imports them. Read from the source with `ast`, so nothing is executed."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("app", "ingest", "eval")
# What ingest/ may use of app/: the records, the settings, the index and the embedding model.
INGEST_MAY_USE = {
    "app.documents",
    "app.timing",
    "app.settings",
    "app.index",
    "app.lexical",
    "app.embedding",
    "app.embedders",
    "app.onnx_model",
    "app.sentences",
}
USER_INTERFACES = ("app.ui", "app.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module and the project modules it imports anywhere in its source (`from a import b`
    counts as importing `a.b` when that is a module, else `a`)."""
    modules = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                }
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_ingest_uses_only_the_lower_layer_of_app():
    graph = import_graph()
    reached = {
        (module, used)
        for module, imports in graph.items()
        if module.startswith("ingest")
        for used in imports
        if used.startswith("app") and used not in INGEST_MAY_USE
    }
    assert reached == set()


def test_nothing_below_the_user_interfaces_imports_them():
    graph = import_graph()
    reached = {
        (module, used)
        for module, imports in graph.items()
        if not module.startswith(USER_INTERFACES)
        for used in imports
        if used.startswith(USER_INTERFACES)
    }
    assert reached == set()
