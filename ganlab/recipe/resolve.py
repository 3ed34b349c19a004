"""From a recipe file to a resolved recipe: read, overridden, validated, components found.

Loading happens in two stages because a recipe may name its own plugins:

1. `load_recipe` reads the YAML (`ganlab.recipe.yamlfile`: a key given twice is an error), applies
   ``--set`` overrides and validates the recipe's own structure (`ganlab.recipe.models.Recipe`);
   each component's ``params`` is still a plain dict.
2. `resolve` looks every component up in the registry the plugins filled, validates its
   params against the model that component registered, filling in every default, and checks
   that every metric key a component names is one the recipe's metrics produce.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ganlab.errors import GanlabError
from ganlab.plugin_manager.loading import is_plugin_file
from ganlab.plugin_manager.registry import Component, Registry
from ganlab.recipe.base import RecipeSources, place_of, read_recipe
from ganlab.recipe.messages import format_errors, non_finite_values
from ganlab.recipe.metric_keys import metric_key_problems
from ganlab.recipe.models import LISTS, NAME_MAX, NAME_RULE, SINGLE, ComponentSpec, Recipe, Resolved
from ganlab.recipe.yamlfile import DELETE, DuplicateKeyError, load_yaml

# --- stage 1: YAML, overrides, structure --------------------------------------------------


def load_recipe(
    path: str | Path, overrides: Sequence[str] = (), extra_plugins: Sequence[str] = ()
) -> Recipe:
    """Read a recipe file (merged onto its ``base:``, `ganlab.recipe.base`), apply
    ``key.path=value`` overrides, validate its structure.

    ``extra_plugins`` (from ``-p``) join the recipe's ``plugins:`` list, so that the resolved
    recipe names every plugin the run needs and can be run again as it is.
    """
    return load_recipe_sourced(path, overrides, extra_plugins)[0]


def load_recipe_sourced(
    path: str | Path, overrides: Sequence[str] = (), extra_plugins: Sequence[str] = ()
) -> tuple[Recipe, RecipeSources]:
    """`load_recipe`, and where each key was set, for `resolve`'s errors to name the file."""
    path = Path(path)
    if path.is_dir():
        raise GanlabError(_folder_given(path))
    if not path.is_file():
        raise GanlabError(
            f"Recipe {str(path)!r} not found. Give the path to a .yaml file, "
            "for example recipes/quickstart.yaml."
        )
    raw, sources = read_recipe(path)
    # Plugin files are relative to the file that lists them: lists are replaced whole, so
    # one file set the whole ``plugins:`` list.
    folder = Path(sources.file_of(("plugins",))).parent
    recipe = parse_recipe(
        raw, sources, overrides, extra_plugins, base=folder, default_name=path.stem
    )
    return recipe, sources


def _folder_given(path: Path) -> str:
    """The message for a folder given where a recipe file goes, with the command meant."""
    inside = path / "recipe.yaml"
    if (path / "run.json").is_file() and inside.is_file():
        hint = (
            f"It is a run folder: continue the run with `ganlab run --resume {path}`, or start "
            f"a new run of its recipe with `ganlab run {inside}`."
        )
    elif inside.is_file():
        hint = f"It holds a recipe: give the file, `{inside}`."
    else:
        yamls = sorted(p.name for p in path.glob("*.yaml"))[:5]
        found = f" (it holds {', '.join(yamls)})" if yamls else ""
        hint = f"Give the path to a .yaml file in it{found}, for example recipes/quickstart.yaml."
    return f"Recipe {str(path)!r} is a folder, not a recipe file. {hint}"


def parse_recipe(
    raw: dict[str, Any],
    source: str | RecipeSources,
    overrides: Sequence[str] = (),
    extra_plugins: Sequence[str] = (),
    base: Path | None = None,
    default_name: str | None = None,
) -> Recipe:
    """Apply ``--set`` overrides to a recipe's raw mapping and validate its structure.

    Plugin files in it are relative to ``base`` (the recipe's folder), those of
    ``extra_plugins`` to the current folder. ``default_name`` (the file's name without
    ``.yaml``) is the name of a recipe that sets none, neither in the file nor by ``--set``.
    """
    raw = copy.deepcopy(raw)
    for override in overrides:
        key = _apply_override(raw, override)
        if isinstance(source, RecipeSources):
            source.overridden(key)
    leftover = _deletes_left(raw)  # a file's are used or refused when bases merge
    if leftover:
        raise GanlabError(
            f"--set {'.'.join(leftover)}=!delete: !delete works only in a recipe file, on a "
            f"key that its base sets. Give the key a value instead, or write a recipe with "
            f"`base:` and `{leftover[-1]}: !delete`."
        )
    explain: dict[str, str] = {}
    if default_name is not None and "name" not in raw:
        raw["name"] = default_name
        explain["name"] = _name_from_file(str(source), default_name)
    # Before the models: what a field's type does not say (a component's params, a
    # schedule's arguments) must be finite too.
    not_finite = non_finite_values(raw, source)
    if not_finite:
        raise GanlabError("\n".join(not_finite))
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise GanlabError(format_errors(exc, source, Recipe, explain=explain)) from None
    # The resolved recipe must still find plugin files when it is run from the run folder.
    plugins = [_absolute_plugin(p, base or Path.cwd()) for p in recipe.plugins]
    plugins += [_absolute_plugin(p, Path.cwd()) for p in extra_plugins]
    recipe.plugins = list(dict.fromkeys(plugins))
    return recipe


def component_names(recipe: Mapping[str, Any]) -> dict[str, str]:
    """Each component section of a recipe (resolved, or as its file holds it) and the name(s)
    it gives: ``{"loss": "bce", "callbacks": "console, samples", ...}``."""
    names: dict[str, str] = {}
    for section in SINGLE:
        spec = recipe.get(section)
        names[section] = str(spec.get("name")) if isinstance(spec, Mapping) else ""
    for section in LISTS:
        specs = recipe.get(section)
        listed = specs if isinstance(specs, list) else []
        names[section] = ", ".join(str(s.get("name")) for s in listed if isinstance(s, Mapping))
    return names


def changed_components(saved: Mapping[str, Any], recipe: Recipe, run_dir: Path) -> str | None:
    """The message that refuses to resume ``run_dir`` (whose recipe was ``saved``) with a
    recipe that names other components, or None when they are the same.

    Said before the new components' params are checked: the params the run's recipe holds
    belong to its own components, so the message must be about the change, not about them.
    """
    before, after = component_names(saved), component_names(recipe.model_dump(mode="json"))
    changed = [s for s in before if before[s] != after[s]]
    if not changed:
        return None
    what = "; ".join(
        f"its {s} {'is' if s in SINGLE else 'are'} {before[s] or '(none)'!r}, the recipe now "
        f"names {after[s] or '(none)'!r}"
        for s in changed
    )
    fresh = " ".join(
        f"--set {s}.name={after[s]} --set {s}.params={{}}" for s in changed if s in SINGLE
    )
    new_run = f"ganlab run {run_dir / 'recipe.yaml'} {fresh}" if fresh else "a new run"
    return (
        f"Cannot resume {run_dir}: {what}. A resumed run keeps the components it was trained "
        f"with ({', '.join(changed)} cannot change; only train.steps and train.epochs may). "
        f"To train with others, start a new run, e.g. {new_run}."
    )


def check_components_kept(run_dir: Path, recipe: Recipe) -> None:
    """Refuse to resume ``run_dir`` with a recipe whose components are not the run's own
    (`changed_components`), reading the run's ``recipe.yaml``; a file that cannot be read is
    left to the checks that read the checkpoint."""
    try:
        saved = load_yaml((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    message = changed_components(saved, recipe, run_dir) if isinstance(saved, dict) else None
    if message is not None:
        raise GanlabError(message)


def _name_from_file(source: str, stem: str) -> str:
    """The message for a recipe without ``name:`` whose file name cannot name a folder."""
    fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).lstrip(".")[:NAME_MAX] or "my_recipe"
    return (
        f"{source}: name: not set, so it comes from the file name, {stem!r}, which is not "
        f"a safe name for the run's folder ({NAME_RULE}). Rename the file (e.g. {fixed}.yaml) "
        f"or set a name in it (e.g. name: {fixed})."
    )


def _absolute_plugin(spec: str, base: Path) -> str:
    if spec.startswith(
        "no:"
    ):  # a plugin left out, by name (`ganlab.plugin_manager.loading.load_plugins`)
        return spec
    if is_plugin_file(spec):
        return str((base / Path(spec).expanduser()).resolve())
    return spec


def _deletes_left(raw: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of a ``!delete`` still in a recipe after merging (from ``--set``), or None."""
    if raw is DELETE:
        return path
    items = (
        raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    )
    for key, value in items:
        found = _deletes_left(value, (*path, str(key)))
        if found is not None:
            return found
    return None


def _apply_override(raw: dict[str, Any], override: str) -> tuple[str, ...]:
    """Set ``a.b.c=value`` in the raw recipe; the value is read as YAML (3, true, [1, 2]).
    Returns the key's path."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise GanlabError(
            f"--set {override!r}: expected KEY=VALUE with a dotted key, "
            "e.g. optimizers.generator.lr=1e-4."
        )
    parts = key.strip().split(".")
    try:
        value = load_yaml(text) if text.strip() else ""
    except DuplicateKeyError as exc:
        where = exc.message(tuple(parts), one_line="\n" not in text)
        raise GanlabError(f"--set {override!r}: {where}.") from None
    except yaml.YAMLError:
        value = text  # not YAML (e.g. an unbalanced bracket in a path): keep the string
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, where, override)]
        elif isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise GanlabError(f"--set {override!r}: {where} is a value, not a section.")
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, key, override)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise GanlabError(f"--set {override!r}: {'.'.join(parts[:-1])} is a value, not a section.")
    return tuple(parts)


def _list_index(node: list[Any], part: str, where: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        valid = f"an index from 0 to {len(node) - 1}" if node else "no index: the list is empty"
        raise GanlabError(f"--set {override!r}: {where} takes {valid}.")
    return int(part)


# --- stage 2: components ------------------------------------------------------------------


def resolve(
    recipe: Recipe,
    registry: Registry,
    source: str | RecipeSources = "recipe",
    *,
    check_metric_keys: bool = True,
) -> Resolved:
    """Find every component and validate its params; the result has every default filled.

    With ``check_metric_keys``, a component param that names a metric key (`MetricKey`)
    must name one that the recipe's metrics produce (see `metric_key_problems`). A caller
    that builds only some components (``ganlab eval`` replaces the metrics and builds no
    callbacks) may leave the check out.
    """
    recipe = recipe.model_copy(deep=True)
    places: list[tuple[str, str, ComponentSpec]] = [
        (section, kind, getattr(recipe, section)) for section, kind in SINGLE.items()
    ]
    for section, kind in LISTS.items():
        specs = getattr(recipe, section)
        places += [(f"{section}.{i}", kind, spec) for i, spec in enumerate(specs)]
    components: dict[str, tuple[Component, BaseModel]] = {}
    problems: list[str] = []
    for place, kind, spec in places:
        try:
            where = f"{place_of(source, (*place.split('.'), 'name'))}: {place}.name"
            component = registry.get(kind, spec.name, where)
        except GanlabError as exc:
            problems.append(str(exc))
            continue
        try:
            params = component.parse_params(spec.params)
        except ValidationError as exc:
            problems.append(
                format_errors(exc, source, component.params, prefix=(*place.split("."), "params"))
            )
            continue
        spec.params = params.model_dump(mode="json")
        components[place] = (component, params)
    if check_metric_keys:
        problems += metric_key_problems(len(recipe.metrics), components, registry, source)
    if problems:
        raise GanlabError("\n".join(problems))
    return Resolved(recipe, components)
