"""The package's shape: no import cycles between its modules (the layer contracts live in
pyproject.toml and run as ``lint-imports`` in ``make lint``)."""

from __future__ import annotations

import grimp


def _cycle(graph: grimp.ImportGraph, modules: set[str]) -> list[str] | None:
    """One import cycle among ``modules`` (module names in order), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & modules):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(modules):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("tfs_async")
    # A package's __init__ re-exports its children by design; cycles through it are not layering.
    modules = {
        m
        for m in graph.modules
        if not m.startswith("tfs_async._proto") and not graph.find_children(m)
    }
    assert _cycle(graph, modules) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.z")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycle(graph, {"a.x", "a.y", "a.z"}) == ["a.x", "a.y", "a.z", "a.x"]
