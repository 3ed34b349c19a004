"""docs/architecture.md, the page a newcomer reads first, stays true as code moves: every
name and path it (or any other page) gives exists, and it covers every package and every
hook.

Written against the repository as it is at each run, not a list of today's modules: a
package added, a module moved or a function renamed fails here until the docs follow.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

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
