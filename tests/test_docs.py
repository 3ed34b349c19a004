"""The documentation stays true: every hook and recipe field documented, README examples run."""

from __future__ import annotations

import re
from pathlib import Path

from ganlab import hookspecs
from ganlab.plugins import load_plugins
from ganlab.recipe import Optimizers, OptimizerSpec, Recipe, TrainSpec
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
