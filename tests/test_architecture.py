"""How the core is put together: no import cycle among its modules (type-checking imports
included), and built-in plugins that use only the public `ganlab` API."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

CORE = ROOT / "ganlab"


def type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The nodes under ``if TYPE_CHECKING:``: imports for annotations, never run."""
    return {
        inner
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }


def imports_of(path: Path, package: str, annotations: bool = True) -> set[str]:
    """The modules of ``package`` that the file at ``path`` imports, anywhere in it; without
    ``annotations``, those imported only for type checking are left out."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set() if annotations else type_checking_only(tree)
    for node in ast.walk(tree):
        if node in skipped:
            continue
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


def core_graph(annotations: bool = True) -> dict[str, set[str]]:
    """Every module of the core (``ganlab`` itself left out: it only hands names on) with the
    core modules it imports (without ``annotations``: at run time)."""
    modules = {module_name(p, CORE, "ganlab"): p for p in CORE.rglob("*.py")}
    modules.pop("ganlab")
    return {
        name: imports_of(path, "ganlab", annotations) & set(modules)
        for name, path in modules.items()
    }


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


#: The core's layers, top first: a module imports from its own layer or the ones below it, so
#: arrows point down only (docs/architecture.md). An import for an annotation alone (under
#: ``if TYPE_CHECKING:``) may point up: `RunView.recipe` is a `Recipe`, and the view sits
#: with the contracts that name it; the cycle test above still counts such imports.
LAYERS = (
    ("__main__", "commands"),
    ("api", "export"),
    ("engine",),
    ("data",),
    ("files",),
    ("recipe",),
    ("plugin_manager", "hookspecs"),
    ("contracts", "runview"),
    ("errors",),
)


def layer_of(module: str) -> int:
    """The index in `LAYERS` of a core module (``ganlab.engine.loop`` -> 2)."""
    top = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, bs in graph.items() for b in bs if layer_of(b) < layer_of(a))


def test_the_core_imports_downward_only() -> None:
    graph = core_graph(annotations=False)
    assert {m.split(".")[1] for m in graph} == {n for layer in LAYERS for n in layer}
    assert upward_imports(graph) == []


def test_an_upward_import_is_found() -> None:
    """The test above could not fail if this did not."""
    graph = {"ganlab.contracts": {"ganlab.engine.run"}, "ganlab.engine.run": set()}
    assert upward_imports(graph) == ["ganlab.contracts -> ganlab.engine.run"]


def test_the_cycle_finder_finds_cycles() -> None:
    """The test above could not fail if this did not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def private_uses(path: Path, public: set[str]) -> list[str]:
    """What the file at ``path`` uses of ganlab beyond ``public`` (``ganlab.__all__``): a
    module of the core imported (``import ganlab.engine.run``, ``from ganlab.engine import
    run``, ``from ganlab import engine``), or a name that is not public, imported or reached
    as an attribute (``ganlab.engine.run.Run``, ``ganlab.Run``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("ganlab.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("ganlab."):
                found.append(node.module)
            elif node.module == "ganlab":
                found += [f"ganlab.{a.name}" for a in node.names if a.name not in public]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ganlab"
            and node.attr not in public
        ):
            found.append(f"ganlab.{node.attr}")
    return sorted(set(found))


def test_built_in_plugins_use_only_the_public_api() -> None:
    """plugins/ (every subpackage) uses `ganlab`'s public names and its own modules, nothing
    of the core's insides: the same API a third-party plugin has."""
    import ganlab

    public = set(ganlab.__all__)
    paths = sorted((ROOT / "plugins").rglob("*.py"))
    assert any(p.parent != ROOT / "plugins" for p in paths)  # subpackages are walked
    for path in paths:
        private = private_uses(path, public)
        assert not private, f"{path.relative_to(ROOT)} uses {private}: use ganlab's public API"


def test_private_uses_finds_every_way_in(tmp_path: Path) -> None:
    """The test above could not fail if this did not."""
    path = tmp_path / "plugin.py"
    path.write_text(
        "import ganlab\nimport ganlab.engine.run\nfrom ganlab.files import images\n"
        "from ganlab import engine, hookimpl\n"
        "x = ganlab.engine.view\ny: ganlab.Run\nz = ganlab.hookimpl\n",
        encoding="utf-8",
    )
    assert private_uses(path, {"hookimpl"}) == [
        "ganlab.Run",
        "ganlab.engine",
        "ganlab.engine.run",
        "ganlab.files",
    ]


def test_no_module_is_over_400_lines() -> None:
    """A module that long does more than one job: split it along its seams."""
    long = {
        str(path.relative_to(ROOT)): count
        for folder in (CORE, ROOT / "plugins")
        for path in folder.rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, long
