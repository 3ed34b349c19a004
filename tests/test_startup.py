"""Start-up: ``ganlab --help`` and ``ganlab --version`` import no torch, ``import ganlab``
imports nothing heavy, and what ``--help`` lists without importing a command is what each
command says of itself (docs/performance.md, "Start-up")."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import click
import pytest

import ganlab
from ganlab.commands.cli import COMMANDS
from tests.conftest import ROOT

HEAVY = ("torch", "torchvision", "matplotlib", "wandb")


def imported(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules that ``python -X importtime ARGS`` imports (Python's own report of each
    import, on stderr), and the finished process."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,  # this checkout's ganlab
    )
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return names, done


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_import_no_torch(option: str) -> None:
    modules, done = imported("-m", "ganlab", option)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ganlab.commands.cli" in modules  # the report is read right
    assert not top_level(modules) & set(HEAVY), sorted(top_level(modules) & set(HEAVY))
    if option == "--help":  # every command listed, a plugin's too
        for name in (*COMMANDS, "sweep"):
            assert f"\n  {name} " in done.stdout, done.stdout


def test_import_ganlab_is_light_and_its_api_loads_neither_wandb_nor_matplotlib() -> None:
    modules, done = imported("-c", "import ganlab")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ganlab" in modules and not top_level(modules) & set(HEAVY)
    modules, done = imported("-c", "from ganlab import *")  # every public name, torch too
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch" in modules and not top_level(modules) & {"matplotlib", "wandb"}


def test_ganlab_help_lists_what_each_command_says_of_itself() -> None:
    """The table's one-line help, shortened as click shortens a docstring, is the command's
    own at every width; and the table names each command by its own name."""
    for name, entry in COMMANDS.items():
        command = entry.load()
        assert command.name == name
        for limit in (30, 45, 58, 1000):
            said = click.Command(name, help=entry.short_help).get_short_help_str(limit)
            assert said == command.get_short_help_str(limit), (name, limit)


def test_every_public_name_is_found_where_the_imports_say() -> None:
    """``ganlab`` imports its names on first use from `_HOMES`; the type checker reads the
    imports under TYPE_CHECKING: the two must agree, and with ``__all__``."""
    tree = ast.parse((ROOT / "ganlab" / "__init__.py").read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    declared = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert declared == ganlab._HOMES
    assert set(ganlab.__all__) == {*declared, "__version__"}
    for name, home in declared.items():
        assert getattr(ganlab, name) is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        ganlab.Nothing  # noqa: B018
