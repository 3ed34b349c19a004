"""docs/architecture.md, the page a newcomer reads first, stays true as code moves: every
name and path it (or any other page) gives exists, it covers every package and every hook,
and the README points to it and shows a Python API that matches the real signatures.

Written against the repository as it is at each run, not a list of today's modules: a
package added, a module moved or a function renamed fails here until the docs follow.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import typing
from pathlib import Path
from typing import Any

import pytest

import ganlab
from ganlab import hookspecs
from tests.conftest import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: A dotted name of ganlab's or the built-ins' code: ``ganlab.engine.step.Step.scores``.
#: Not when it is the tail of a longer word or path (``/home/me/ganlab/...``, ``my_ganlab.x``).
DOTTED = re.compile(r"(?<![\w/.-])(?:ganlab|ganlab_plugins)(?:\.[A-Za-z_]\w*)+")
#: A path in the repository: ``ganlab/engine/step.py``, ``plugins/wandb/``, ``recipes/x.yaml``,
#: ``tests/test_runs.py::test_name``.
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:ganlab|plugins|tests|benchmarks|recipes|docs)/[\w./-]*)(?:::(\w+))?"
)


def resolve_dotted(name: str) -> object:
    """The object ``name`` names: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)  # AttributeError: the name does not exist
        return found
    raise ModuleNotFoundError(name)


def test_resolve_dotted_finds_what_exists_and_only_that() -> None:
    """The two tests below could not fail if this did not."""
    assert resolve_dotted("ganlab.engine.step.Step.scores") is not None
    assert resolve_dotted("ganlab.hookimpl") is ganlab.hookimpl
    for missing in ("ganlab.engine.step.Nothing", "ganlab.nowhere.thing", "ganlab.Run.nope"):
        with pytest.raises((AttributeError, ModuleNotFoundError)):
            resolve_dotted(missing)
    assert DOTTED.findall("see `ganlab.engine.loop.Loop`. or /home/me/ganlab/runs/x.y") == [
        "ganlab.engine.loop.Loop"
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_dotted_name_in_the_docs_exists(page: Path) -> None:
    missing = []
    for name in sorted(set(DOTTED.findall(page.read_text(encoding="utf-8")))):
        try:
            resolve_dotted(name)
        except (AttributeError, ModuleNotFoundError) as exc:
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    assert missing == [], f"{page.name} names code that does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_in_the_docs_exists(page: Path) -> None:
    missing = []
    for path, test_name in sorted(set(REPO_PATH.findall(page.read_text(encoding="utf-8")))):
        path = path.rstrip(".,")
        target = ROOT / path
        if not (target.is_dir() if path.endswith("/") else target.exists()):
            missing.append(path)
        elif test_name and not re.search(
            rf"^def {test_name}\(", target.read_text(encoding="utf-8"), re.M
        ):
            missing.append(f"{path}::{test_name}")
    assert missing == [], f"{page.name} names paths that do not exist"


def test_the_architecture_page_names_every_package_and_top_level_module() -> None:
    """Each subpackage of ``ganlab/`` and ``plugins/`` (as ``ganlab/engine/``), and each module
    at the top of ``ganlab/``: a package the page leaves out is one nobody is told about."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    wanted = [
        f"{root}/{p.parent.name}/"
        for root in ("ganlab", "plugins")
        for p in (ROOT / root).glob("*/__init__.py")
    ]
    wanted += [
        f"ganlab/{p.name}"
        for p in (ROOT / "ganlab").glob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    ] + ["ganlab/__init__.py"]
    assert len(wanted) > 15
    assert [name for name in wanted if f"`{name}`" not in text] == []


def test_the_architecture_page_says_where_every_hook_joins_in() -> None:
    """Every hook of hookspecs.py appears on the page (by name, or by the link to its section
    in plugins.md), so a new hook fails here until the page says at which stage it fires."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    hooks = [name for name in dir(hookspecs) if name.startswith("ganlab_")]
    assert len(hooks) > 15
    assert [hook for hook in hooks if hook not in text] == []


def test_the_readme_lists_every_docs_page_and_the_architecture_page_first() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    index = text.split("## Documentation\n", 1)[1]
    listed = re.findall(r"^\| \[[\w.]+\]\(docs/([\w.]+\.md)\)", index, re.M)
    assert listed[0] == "architecture.md"
    assert sorted(listed) == sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    # And the pointer beside the Python API, where a newcomer starts reading.
    before_tutorial = text.split("## The tutorial recipe", 1)[0]
    assert "[docs/architecture.md](docs/architecture.md)" in before_tutorial


def _readme_python() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python API example beside the two commands"
    return blocks[0]


def test_the_readme_python_example_calls_the_api_as_it_is() -> None:
    """Every ``ganlab.f(...)`` of the README's Python example is public and takes those
    arguments, and every attribute read from what ``f`` returns exists (the example trains
    for minutes, so docs/python.md's examples are the ones run; this keeps the README's in
    step with them)."""
    tree = ast.parse(_readme_python())
    returns: dict[str, Any] = {}  # variable -> the type of what the call assigned to it returned
    calls = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                hint = typing.get_type_hints(getattr(ganlab, func.attr)).get("return")
                returns.update({t.id: hint for t in node.targets if isinstance(t, ast.Name)})
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "ganlab":
                assert node.func.attr in ganlab.__all__, node.func.attr
                signature = inspect.signature(getattr(ganlab, node.func.attr))
                signature.bind(*node.args, **{k.arg: k.value for k in node.keywords if k.arg})
                calls += 1
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            kind = returns.get(node.value.id)
            if kind is not None and inspect.isclass(kind):
                fields = set(getattr(kind, "__dataclass_fields__", {})) | set(dir(kind))
                assert node.attr in fields, f"{node.value.id}.{node.attr}: {kind.__name__} has none"
    assert calls >= 3
