"""The documentation stays true: every hook and recipe field documented, README examples run,
and the error examples of docs/recipes.md are the real messages.

``python -m tests.test_docs`` rewrites those examples' outputs from the real messages.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganlab import hookspecs
from ganlab.errors import GanlabError, InternalError, PluginError, RunInterrupted
from ganlab.plugins import load_plugins
from ganlab.recipe import Optimizers, OptimizerSpec, Recipe, TrainSpec
from ganlab.registry import Register
from tests.conftest import ROOT, invoke, only_run_dir, tiny_recipe, write_jpegs, write_recipe

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("ganlab_"))


def test_every_hook_has_a_section_in_docs_plugins() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("#")]
    missing = [h for h in HOOKS if not any(f"`{h}(" in line for line in headings)]
    assert HOOKS and not missing, f"hooks without a section in docs/plugins.md: {missing}"


def _section(text: str, heading: str) -> str:
    """The text under the first ### heading that starts with ``heading``."""
    start = text.index(f"\n### {heading}")
    end = text.find("\n##", start + 1)
    return text[start : end if end != -1 else None]


def test_every_recipe_field_is_in_docs_recipes() -> None:
    text = (ROOT / "docs" / "recipes.md").read_text()
    tables = {
        "Top level": Recipe,
        "`train`": TrainSpec,
        "`optimizers.generator`": OptimizerSpec,
    }
    missing = [
        f"{heading}: {field}"
        for heading, model in tables.items()
        for field in model.model_fields
        if f"| `{field}` |" not in _section(text, heading)
    ]
    assert "optimizers.discriminator" in text and set(Optimizers.model_fields) == {
        "generator",
        "discriminator",
    }
    assert not missing, f"recipe fields missing from docs/recipes.md: {missing}"


def test_readme_has_the_two_commands_and_they_name_real_files() -> None:
    text = (ROOT / "README.md").read_text()
    assert "python3 -m pip install -e . && ganlab run recipes/quickstart.yaml" in text
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pytest" in ci  # CI runs the README's test command
    for recipe in re.findall(r"recipes/\w+\.yaml", text):
        assert (ROOT / recipe).is_file(), recipe


def test_readme_plugin_example_works(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## A plugin in 20 lines", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 25
    (tmp_path / "lsgan.py").write_text(code)
    write_jpegs(tmp_path / "images", 8, (20, 20))
    recipe = tiny_recipe(tmp_path / "images", plugins=["lsgan.py"])
    recipe["loss"] = {"name": "my_lsgan", "params": {"target": 1.0}}
    result = invoke("run", str(write_recipe(tmp_path / "r.yaml", recipe)), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (only_run_dir(tmp_path) / "checkpoints" / "final.pt").is_file()


def test_every_plugin_example_in_docs_plugins_loads(tmp_path: Path) -> None:
    """Each example file of docs/plugins.md (a python block that starts with `# name.py`)
    loads as a plugin beside the built-ins: it imports, and its names clash with none."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n# (\w+\.py)\n(.*?)```", text, re.S)
    assert len(blocks) >= 10
    for name, code in blocks:
        path = tmp_path / name
        path.write_text(code)
        registry = load_plugins([str(path)]).registry
        assert registry is not None, name


def test_the_register_callback_is_documented_with_every_argument() -> None:
    """docs/plugins.md shows `register(...)` with every argument the callback takes."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    names = [p for p in inspect.signature(Register.__call__).parameters if p != "self"]
    shown = re.search(r"`register\(([^`]*)\)` adds one component", text)
    assert shown, "docs/plugins.md lost its `register(...)` line"
    missing = [n for n in names if not re.search(rf"\b{n}\b", shown.group(1))]
    assert not missing, f"register arguments missing from docs/plugins.md: {missing}"
    assert "ganlab.MetricKey" in text and "results=" in text


# --- error examples in the docs are the real output ----------------------------------------

#: Docs whose examples section is checked: the file and the heading of the section.
EXAMPLES = {
    ROOT / "docs" / "recipes.md": "## Errors",
    ROOT / "docs" / "errors.md": "## Examples",
}


def _section_span(text: str, heading: str) -> tuple[int, int]:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return start, end if end != -1 else len(text)


def doc_files(section: str) -> dict[str, str]:
    """The files the examples use: each ```yaml or ```python block whose first line is
    ``# <name>.yaml`` or ``# <name>.py``."""
    return dict(re.findall(r"```(?:yaml|python)\n# ([^\n]+\.(?:yaml|py))\n(.*?)```", section, re.S))


def doc_commands(section: str) -> Iterator[tuple[str, str]]:
    """(command, its output as written) for every ``$ ganlab ...`` line of a console block."""
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        parts = re.split(r"^\$ (ganlab .*)\n", block, flags=re.M)
        assert not parts[0].strip(), f"text before the first command: {parts[0]!r}"
        for command, output in zip(parts[1::2], parts[2::2], strict=True):
            yield command, output.rstrip("\n")


def real_output(command: str, folder: Path) -> tuple[int, str]:
    """Run ``ganlab ...`` in-process in ``folder``, as a shell there would; the folder's own
    path is left out of the output (plugin files are named by absolute path), and an exit
    code other than 2 is shown on a last line, ``(exit N)``."""
    args = shlex.split(command)[1:]
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        result = invoke(*args)
    finally:
        os.chdir(cwd)
    output = result.output.rstrip("\n")
    for prefix in {f"{folder.resolve()}/", f"{folder}/"}:
        output = output.replace(prefix, "")
    if result.exit_code != 2:
        output += f"\n(exit {result.exit_code})"
    return result.exit_code, output


def _example_folder(folder: Path, section: str) -> Path:
    """A user's folder: the doc's files and a copy of recipes/, so that paths are relative."""
    shutil.copytree(ROOT / "recipes", folder / "recipes")
    for name, content in doc_files(section).items():
        (folder / name).write_text(f"# {name}\n{content}", encoding="utf-8")
    return folder


@pytest.mark.parametrize("doc", EXAMPLES, ids=lambda doc: doc.name)
def test_the_error_examples_in_the_docs_are_the_real_output(tmp_path: Path, doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    start, end = _section_span(text, EXAMPLES[doc])
    section = text[start:end]
    folder = _example_folder(tmp_path, section)
    commands = list(doc_commands(section))
    assert len(commands) >= 5 and len(doc_files(section)) >= 2
    for command, written in commands:
        before = sorted(p for p in folder.rglob("*"))
        code, output = real_output(command, folder)
        assert code in (1, 2), f"{command}\n{output}"
        assert output == written, f"{doc.name} is stale for: {command}"
        assert output.count("ganlab: error: ") == 1 and "Traceback" not in output
        assert sorted(p for p in folder.rglob("*")) == before, f"{command} created files"


def test_the_exit_codes_in_docs_errors_are_the_real_ones() -> None:
    """docs/errors.md's table of exit codes says what the error classes exit with."""
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| ([\d, ]+) \| ([^|]+) \|", text, re.M))
    assert GanlabError("").exit_code == 2 and "mistake in what you gave" in rows["2"]
    assert PluginError("").exit_code == 1 and "plugin's code failed" in rows["1"]
    assert InternalError("").exit_code == 1 and "inside ganlab itself" in text
    stopped = [RunInterrupted("", s).exit_code for s in (signal.SIGINT, signal.SIGTERM)]
    assert ", ".join(map(str, stopped)) in rows and "0" in rows


def update_examples() -> None:
    """Rewrite the outputs of the docs' error examples from the real messages."""
    for doc, heading in EXAMPLES.items():
        text = doc.read_text(encoding="utf-8")
        start, end = _section_span(text, heading)
        section = text[start:end]
        with tempfile.TemporaryDirectory() as tmp:
            folder = _example_folder(Path(tmp), section)

            def block(match: re.Match[str], folder: Path = folder) -> str:
                commands = [c for c, _ in doc_commands(f"```console\n{match.group(1)}```")]
                runs = [f"$ {c}\n{real_output(c, folder)[1]}\n" for c in commands]
                return "```console\n" + "".join(runs) + "```"

            section = re.sub(r"```console\n(.*?)```", block, section, flags=re.S)
        doc.write_text(text[:start] + section + text[end:], encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    update_examples()
    sys.exit(0)
