"""The sandbox's modules import one way: state → core → api areas → control → server.

Every import counts, also those inside functions and under TYPE_CHECKING, because a lazy
import is still a circle a reader has to untangle."""

from __future__ import annotations

import ast
from pathlib import Path

import sandbox

ROOT = Path(sandbox.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sandbox_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "sandbox" or name.startswith("sandbox.")}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    # A package's __init__ only re-exports; importing sandbox.x does not need it.
    return {
        name: {m for m in sandbox_imports(path) if m in modules and m != "sandbox"}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> list[str] | None:
        if node in trail:
            return [*trail[trail.index(node) :], node]
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            cycle = visit(dep, [*trail, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_no_import_cycles_in_the_sandbox() -> None:
    assert find_cycle(import_graph()) is None


def test_control_and_the_areas_never_import_the_http_server() -> None:
    graph = import_graph()
    for name, deps in graph.items():
        if name == "sandbox.control" or name.startswith(("sandbox.api", "sandbox.core")):
            assert "sandbox.server" not in deps, name


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
