"""The documentation stays true: every hook's signature and summary as in hookspecs.py, every
plugin example registers what its recipe line uses, the params tables of docs/recipes.md are
the params models, README examples run, and the error examples are the real messages.

``python -m tests.test_docs`` rewrites the params tables and the error examples' outputs.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
import pytest
from pydantic import BaseModel

from ganlab import hookspecs
from ganlab.errors import GanlabError, InternalError, PluginError, RunInterrupted
from ganlab.files.metrics_log import read_metrics
from ganlab.plugin_manager.loading import load_plugins
from ganlab.plugin_manager.registry import KINDS, Register
from ganlab.recipe.models import LISTS, SINGLE
from ganlab.recipe.resolve import parse_recipe, resolve
from ganlab.recipe.yamlfile import load_yaml
from tests import params_tables
from tests.conftest import ROOT, invoke, only_run_dir, tiny_recipe, write_jpegs, write_recipe

PLUGINS_MD = ROOT / "docs" / "plugins.md"
RECIPES_MD = ROOT / "docs" / "recipes.md"
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("ganlab_"))

# --- hooks: docs/plugins.md has one section per hook, with its signature ------------------

#: A hook's section heading: ``### `ganlab_step_end(run, stats)` ``.
HOOK_HEADING = re.compile(r"^### `(ganlab_\w+)\(([^`]*)\)`$", re.M)


def hook_signature(name: str) -> inspect.Signature:
    return inspect.signature(getattr(hookspecs, name))


def documented_hooks(text: str) -> list[tuple[str, list[str]]]:
    """(hook, argument names) for every hook heading of docs/plugins.md, in order."""
    return [
        (m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()])
        for m in HOOK_HEADING.finditer(text)
    ]


def test_every_hook_has_a_section_that_shows_its_arguments_in_order() -> None:
    """As datasette's test_docs: a hook added, renamed or given other arguments in
    hookspecs.py fails here until docs/plugins.md says the same, and a section of a hook
    that no longer exists fails too."""
    documented = documented_hooks(PLUGINS_MD.read_text(encoding="utf-8"))
    shown = dict(documented)
    problems = []
    for name in HOOKS:
        args = list(hook_signature(name).parameters)
        heading = f"### `{name}({', '.join(args)})`"
        if name not in shown:
            problems.append(f"{name}: no section in docs/plugins.md; add the heading {heading}")
        elif shown[name] != args:
            problems.append(
                f"{name}: docs/plugins.md shows ({', '.join(shown[name])}), "
                f"hookspecs.py has ({', '.join(args)}); the heading should read {heading}"
            )
    names = [name for name, _ in documented]
    problems += [
        f"{name}: docs/plugins.md has a section for it, but hookspecs.py has no such hook"
        for name in sorted(set(names) - set(HOOKS))
    ]
    problems += [
        f"{n}: two sections in docs/plugins.md" for n in sorted(set(names)) if names.count(n) > 1
    ]
    assert HOOKS and not problems, "\n".join(problems)


def _type_name(text: str) -> str:
    """A type as written in either place, without modules: ``ganlab.Run`` -> ``Run``,
    ``dict[str, float \\| int]`` (escaped in a table) -> ``dict[str, float | int]``."""
    return re.sub(r"\b[a-z_][a-z0-9_]*\.", "", text.replace("\\|", "|"))


def hook_argument_types(text: str) -> dict[str, str]:
    """Argument name -> type, from the table of docs/plugins.md headed ``| Argument | Type |``."""
    header = "\n| Argument | Type |"
    assert header in text, "docs/plugins.md lost its table of hook arguments"
    table = text.split(header, 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `((?:[^`\\]|\\.)+)` \|", table, re.M)
    return {arg: _type_name(kind) for arg, kind in rows}


def _annotation(parameter: inspect.Parameter) -> str:
    # hookspecs.py has `from __future__ import annotations`, so these are the source text.
    ann = parameter.annotation
    return _type_name(ann if isinstance(ann, str) else inspect.formatannotation(ann))


def test_every_hook_argument_has_its_type_in_docs_plugins() -> None:
    """The headings show the argument names; one table shows each name's type (the same in
    every hook that takes it), as hookspecs.py annotates it. A type changed in code fails
    here, naming the hook."""
    types = hook_argument_types(PLUGINS_MD.read_text(encoding="utf-8"))
    problems = []
    used = set()
    for name in HOOKS:
        for arg, parameter in hook_signature(name).parameters.items():
            used.add(arg)
            if arg not in types:
                problems.append(f"{name}: argument `{arg}` is not in the table of hook arguments")
            elif types[arg] != _annotation(parameter):
                problems.append(
                    f"{name}: `{arg}` is {_annotation(parameter)} in hookspecs.py, but the "
                    f"table of hook arguments in docs/plugins.md says {types[arg]}"
                )
    problems += [
        f"`{arg}`: in the table of hook arguments, but no hook takes it"
        for arg in sorted(set(types) - used)
    ]
    assert types and not problems, "\n".join(problems)


def _plain(text: str) -> str:
    """rST's ``code`` as markdown's `code`, whitespace collapsed: how the two compare."""
    return " ".join(text.replace("``", "`").split())


def test_every_hook_section_starts_with_the_docstrings_first_line() -> None:
    """The section in docs/plugins.md is a hook's long explanation; its docstring the short
    one. The two say the same thing first: when the hook fires, or what it registers."""
    text = PLUGINS_MD.read_text(encoding="utf-8")
    problems = []
    for name in HOOKS:
        summary = _plain(inspect.getdoc(getattr(hookspecs, name)).splitlines()[0])
        match = re.search(rf"^### `{name}\([^`]*\)`\n\n(.*?)(?:\n\n|\Z)", text, re.M | re.S)
        if match is None:
            continue  # no section: the test of the signatures says so
        first = _plain(match.group(1))
        if not first.startswith(summary):
            problems.append(
                f"{name}: its section should start with the docstring's first line,\n"
                f"  {summary!r}\n  but starts {first[: len(summary) + 20]!r}"
            )
    assert not problems, "\n".join(problems)


# --- the plugin examples of docs/plugins.md -----------------------------------------------

#: A complete example file: a python block whose first line is ``# name.py`` (perhaps with
#: ``: what it is`` after it).
EXAMPLE = re.compile(r"```python\n# (\w+\.py)(?::[^\n]*)?\n(.*?)```", re.S)
#: A recipe that uses an example: a paragraph "Recipe: `key: value` ..." (or "Recipe for
#: the ramps: ..."), every code span in it a YAML mapping of recipe keys (dotted for a key
#: inside a section, as with --set).
RECIPE_LINE = re.compile(r"^Recipe[^:`\n]*: (.*?)(?:\n\n|\Z)", re.M | re.S)
#: The minimal recipe that an example's recipe lines change.
BASE_RECIPE: dict[str, Any] = {
    "data": {"name": "cartoon_faces"},
    "generator": {"name": "dcgan"},
    "discriminator": {"name": "dcgan"},
    "loss": {"name": "bce"},
    "train": {"steps": 1},
}


@dataclass
class Example:
    """One plugin example of docs/plugins.md and what the text around it says of it."""

    file: str
    code: str
    #: the hook whose section it is in (None: before the first hook section)
    hook: str | None
    #: the recipes that use it: each a list of YAML mappings, applied in order to
    #: BASE_RECIPE (kept as text until a test reads them, so that a typo fails that test)
    recipes: list[list[str]] = field(default_factory=list)


def plugin_examples(text: str) -> list[Example]:
    """Every example file, with the recipe lines (or ```yaml blocks) that follow it before the
    next example or heading."""
    matches = list(EXAMPLE.finditer(text))
    examples = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        after = _until_heading(text[match.end() : end])
        sections = HOOK_HEADING.findall(text[: match.start()])
        example = Example(match.group(1), match.group(2), sections[-1][0] if sections else None)
        for paragraph in RECIPE_LINE.findall(after):
            example.recipes.append(re.findall(r"`([^`]+)`", paragraph))
        example.recipes += [[block] for block in re.findall(r"```yaml\n(.*?)```", after, re.S)]
        examples.append(example)
    return examples


def _until_heading(text: str) -> str:
    """``text`` up to its first heading (a ``# `` line outside a fenced block)."""
    fenced = False
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            return "".join(lines[:i])
    return text


EXAMPLES_IN_PLUGINS_MD = plugin_examples(PLUGINS_MD.read_text(encoding="utf-8"))


def _recipe_from(fragments: list[str], where: str) -> dict[str, Any]:
    """BASE_RECIPE with the fragments' keys set (``train.eval_every`` inside ``train``)."""
    raw = {k: dict(v) for k, v in BASE_RECIPE.items()}
    for text in fragments:
        fragment = load_yaml(text)
        assert isinstance(fragment, dict), f"{where}: `{text}` is not a piece of a recipe"
        for key, value in fragment.items():
            *path, last = key.split(".")
            node = raw
            for part in path:
                node = node.setdefault(part, {})
            node[last] = value
    return raw


def train_plugin_example(
    folder: Path, hook: str, file: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train docs/plugins.md's example for ``hook`` (the one named ``file`` where the hook's
    section has several), written to ``folder`` as its file, with its recipe lines, for 3
    steps on 32 faces: the recipe it ran and its metrics rows."""
    [example] = [e for e in EXAMPLES_IN_PLUGINS_MD if e.hook == hook and file in (None, e.file)]
    path = folder / example.file
    path.write_text(example.code, encoding="utf-8")
    [fragments] = example.recipes
    raw = _recipe_from(fragments, "docs/plugins.md")
    raw["plugins"] = [str(path)]
    raw["data"]["params"] = {"count": 32, "image_size": 16}
    raw["train"] = {"steps": 3, "batch_size": 8, "log_every": 1}
    recipe = write_recipe(folder / "example.yaml", raw)
    result = invoke("run", str(recipe), "--out", str(folder / "runs"))
    assert result.exit_code == 0, result.output
    return raw, read_metrics(only_run_dir(folder / "runs") / "metrics.jsonl")


def _named_components(raw: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every component a raw recipe names."""
    named = {(kind, raw[key]["name"]) for key, kind in SINGLE.items()}
    return named | {
        (kind, spec["name"]) for key, kind in LISTS.items() for spec in raw.get(key, [])
    }


def _hooks_implemented(module: Any) -> set[str]:
    """The hooks a plugin module implements, at module level or in its classes, checked by
    pluggy as the runner checks them: a name that is no hook, or an argument the hook does
    not have, raises."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(module)
    for obj in vars(module).values():
        # The classes whose instances a build function returns; a pydantic model has no
        # hooks (and reading all its attributes only wakes deprecation warnings).
        if (
            inspect.isclass(obj)
            and obj.__module__ == module.__name__
            and not issubclass(obj, BaseModel)
        ):
            pm.register(obj)
    pm.check_pending()
    return {
        caller.name for plugin in pm.get_plugins() for caller in pm.get_hookcallers(plugin) or ()
    }


def test_every_hook_has_an_example_in_docs_plugins() -> None:
    """Every hook's section shows an example file (which the next test loads and checks)."""
    shown = {e.hook for e in EXAMPLES_IN_PLUGINS_MD}
    assert not set(HOOKS) - shown, f"hooks without an example: {sorted(set(HOOKS) - shown)}"


@pytest.mark.parametrize("example", EXAMPLES_IN_PLUGINS_MD, ids=lambda e: e.file)
def test_every_plugin_example_in_docs_plugins_registers_what_its_recipe_uses(
    tmp_path: Path, example: Example
) -> None:
    """Each example file of docs/plugins.md loads as a plugin beside the built-ins and
    registers exactly the components (kind and name) that the recipe lines after it use
    and ganlab does not have; those recipes validate with it (names, params, metric keys);
    and its hooks are real hooks, the one of its section among them."""
    path = tmp_path / example.file
    path.write_text(example.code, encoding="utf-8")
    plugins = load_plugins([str(path)])
    builtin = load_plugins().registry
    registered = {(kind, c.name) for kind in KINDS for c in plugins.registry.components(kind)}
    existing = {(kind, c.name) for kind in KINDS for c in builtin.components(kind)}
    used: set[tuple[str, str]] = set()
    for i, fragments in enumerate(example.recipes):
        where = f"docs/plugins.md, the recipe {i + 1} of {example.file}"
        raw = _recipe_from(fragments, where)
        used |= _named_components(raw)
        resolve(parse_recipe(raw, where, base=tmp_path), plugins.registry, where)
    new = registered - existing
    assert new == used - existing, (
        f"{example.file} registers {sorted(new)}, but the recipes after it in docs/plugins.md "
        f"use {sorted(used - existing)}"
    )
    try:
        hooks = _hooks_implemented(plugins.pm.get_plugin(str(path)))
    except pluggy.PluginValidationError as exc:
        pytest.fail(f"{example.file} in docs/plugins.md: {exc}")
    if example.hook is not None:
        assert example.hook in hooks, (
            f"{example.file} is under {example.hook} but implements {hooks}"
        )


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


# --- the params tables of docs/recipes.md are generated -------------------------------------


def test_the_params_tables_in_docs_recipes_are_the_models() -> None:
    """Every table of docs/recipes.md between ``<!-- params: KEY -->`` markers is what
    `tests.params_tables` makes of the models now: a default, type, constraint or
    description changed in code fails here until ``python -m tests.test_docs`` is run."""
    text = RECIPES_MD.read_text(encoding="utf-8")
    components = params_tables.builtin_components()
    marked = params_tables.marked_keys(text)
    expected = params_tables.expected_keys(components)
    missing = [k for k in expected if k not in marked]
    assert not missing, (
        f"docs/recipes.md has no table for {missing}: add `<!-- params: KEY -->` and "
        "`<!-- /params -->` where it belongs, then run `python -m tests.test_docs`"
    )
    unknown = [k for k in marked if k not in expected or marked.count(k) > 1]
    assert not unknown, f"docs/recipes.md: markers that name nothing or repeat: {unknown}"
    generated = params_tables.rewrite(text, components)
    diff = difflib.unified_diff(
        text.splitlines(keepends=True),
        generated.splitlines(keepends=True),
        "docs/recipes.md",
        "generated from the models",
        n=0,
    )
    shown = "".join(diff)
    assert not shown, (
        "docs/recipes.md differs from the params models; run `python -m tests.test_docs`:\n"
        + shown[:3000]
    )


def update_params_tables() -> None:
    """Rewrite the generated tables of docs/recipes.md from the models."""
    text = RECIPES_MD.read_text(encoding="utf-8")
    RECIPES_MD.write_text(
        params_tables.rewrite(text, params_tables.builtin_components()), encoding="utf-8"
    )


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    update_params_tables()
    update_examples()
    sys.exit(0)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_docs_reaches_a_file_and_heading_that_exist() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                if anchor not in {_slug(h) for h in headings}:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


# --- the public surface: every name documented, RunView's tables its members ------------


def test_every_public_name_is_documented() -> None:
    """Each name in ``ganlab.__all__`` appears as ``ganlab.<name>`` in docs/ (plugins.md,
    python.md or another page): a name exported without a word about it is a promise nobody
    was told of."""
    import ganlab

    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    missing = [n for n in ganlab.__all__ if not re.search(rf"ganlab\.{re.escape(n)}\b", text)]
    assert not missing, f"public names that docs/*.md never mention as ganlab.<name>: {missing}"
    assert not re.search(r"ganlab\.Run\b", text), "ganlab.Run is the engine's: say RunView"


def runview_members() -> set[str]:
    """The public members of ``ganlab.RunView``, as the protocol declares them."""
    from ganlab.runview import RunView

    return {name for name in vars(RunView) if not name.startswith("_")}


def documented_runview_members(text: str) -> set[str]:
    """The members named in the first column of the tables of docs/plugins.md's RunView
    section (```name```, ```log(values, ...)``` -> ``log``; several per row)."""
    start, end = _section_span(text, "## `RunView` and `StepStats`")
    section = text[start:end].split("`ganlab_step_end` receives `stats`")[0]
    cells = re.findall(r"^\| (`[^|]*`) \|", section, re.M)
    return {m for cell in cells for m in re.findall(r"`([a-z_]+)[(`]", cell)}


def test_docs_plugins_lists_every_member_of_runview() -> None:
    """What a hook may read and do, in docs/plugins.md, is what `ganlab.RunView` has: a
    member added, renamed or dropped fails here until the tables say so."""
    members = runview_members()
    assert {"step", "log", "score", "generate", "stop"} <= members  # the parse below works
    assert documented_runview_members(PLUGINS_MD.read_text(encoding="utf-8")) == members
