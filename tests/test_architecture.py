"""How the core is put together: no import cycle among its modules (type-checking imports
included), and built-in plugins that use only the public `ganlab` API."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

CORE = ROOT / "ganlab"


def imports_of(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that the file at ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(f"{package}.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(f"{package}."):
                found.add(node.module)
            elif node.module == package:  # from ganlab import hookspecs
                found |= {f"{package}.{a.name}" for a in node.names}
    return found


def module_name(path: Path, root: Path, package: str) -> str:
    """``ganlab/engine/loop.py`` -> ``ganlab.engine.loop``; a package's ``__init__.py`` is the
    package itself."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join((package, *parts[: -1 if parts[-1] == "__init__" else None]))


def core_graph() -> dict[str, set[str]]:
    """Every module of the core (``ganlab`` itself left out: it only hands names on) with the
    core modules it imports."""
    modules = {module_name(p, CORE, "ganlab"): p for p in CORE.rglob("*.py")}
    modules.pop("ganlab")
    return {name: imports_of(path, "ganlab") & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_core_has_no_import_cycle() -> None:
    graph = core_graph()
    assert len(graph) > 20 and "ganlab.engine.run" in graph["ganlab.engine.loop"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    """The test above could not fail if this did not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_built_in_plugins_use_only_the_public_api() -> None:
    """plugins/ imports `ganlab` (the public API) and its own modules, nothing of the core's
    insides: the same API a third-party plugin has."""
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        private = sorted(imports_of(path, "ganlab"))
        assert not private, f"{path.name} imports {private}; use `import ganlab` instead"


def test_only_the_command_line_imports_commands() -> None:
    """Arrows point down: the API, the engine and everything under them never import
    ``ganlab.commands`` (code they need lives below it). ``ganlab`` hands on the helpers a
    plugin's own command uses, and ``python -m ganlab`` is the command line."""
    graph = core_graph()
    upward = {
        (name, imported)
        for name, imports in graph.items()
        if not name.startswith(("ganlab.commands", "ganlab.__main__"))
        for imported in imports
        if imported.startswith("ganlab.commands")
    }
    assert not upward, sorted(upward)
    assert "ganlab.commands.common" in graph["ganlab.commands.run"]  # the graph is read right
