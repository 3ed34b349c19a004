"""Recipes: YAML files, validated by pydantic, that say everything a run does.

Loading happens in two stages because a recipe may name its own plugins:

1. `load_recipe` reads the YAML, applies ``--set`` overrides and validates the recipe's
   own structure (`Recipe`); each component's ``params`` is still a plain dict.
2. `resolve` looks every component up in the registry the plugins filled, validates
   its params against the model that component registered, filling in every default, and
   checks that every metric key a component names is one the recipe's metrics produce.

YAML is read with `RecipeLoader` (`load_yaml`): PyYAML's safe loader, except that a key
given twice in one mapping is an error rather than the last one silently winning.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ganlab.errors import GanlabError, did_you_mean
from ganlab.fields import StrictNumbers, metric_keys_in
from ganlab.recipe_messages import format_errors
from ganlab.registry import Component, Registry
from ganlab.yamlfile import DuplicateKeyError, dump_yaml, load_yaml

# --- the recipe's own structure -----------------------------------------------------------

#: A run's name is its folder under ``--out``: one path component, never ``.`` or ``..``.
NAME_MAX = 100
NAME_RULE = (
    f"a name holds 1 to {NAME_MAX} letters, digits, '_', '.' or '-' and does not start with '.'"
)
_NAME = re.compile(rf"[A-Za-z0-9_-][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}")


def name_is_safe(name: str) -> bool:
    """Whether ``name`` can be a run folder's name: one component, not hidden, not ``..``."""
    return _NAME.fullmatch(name) is not None


class _Strict(StrictNumbers):
    model_config = ConfigDict(extra="forbid")


class ComponentSpec(_Strict):
    """A component by registered name, with its own params."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class OptimizerSpec(_Strict):
    """Adam (the tutorial's) or AdamW for one network."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(default=2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _betas_in_range(self) -> OptimizerSpec:
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must each be in [0, 1), got {list(self.betas)}")
        return self


class Optimizers(_Strict):
    """One optimizer per network."""

    generator: OptimizerSpec = Field(default_factory=OptimizerSpec)
    discriminator: OptimizerSpec = Field(default_factory=OptimizerSpec)


class TrainSpec(_Strict):
    """How long and how the runner trains."""

    epochs: int | None = Field(default=None, gt=0)
    steps: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=128, gt=0)
    #: D updates per G update, each on its own real batch (WGAN-GP uses 5); a step is
    #: one G update, so an epoch has about 1/d_steps as many steps.
    d_steps: int = Field(default=1, gt=0)
    #: decay of an exponential moving average of G's weights, used by the metrics and by
    #: `ganlab sample` / `ganlab eval` when set (0.999 is usual); None keeps no average.
    ema: float | None = Field(default=None, gt=0, lt=1)
    workers: int = Field(default=0, ge=0)
    data_cache: bool = True
    log_every: int = Field(default=50, gt=0)
    eval_every: int | None = Field(default=None, gt=0)
    checkpoint_every: int | None = Field(default=1000, gt=0)
    keep_checkpoints: int = Field(default=3, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False

    @model_validator(mode="after")
    def _has_length(self) -> TrainSpec:
        if self.epochs is None and self.steps is None:
            raise ValueError("set train.epochs or train.steps (or both: the first reached ends)")
        return self


class Recipe(_Strict):
    """A whole experiment. See docs/recipes.md for every field."""

    name: str = ""
    seed: int = Field(default=0, ge=0, lt=2**63)
    device: str = "auto"
    plugins: list[str] = Field(default_factory=list)
    data: ComponentSpec
    generator: ComponentSpec
    discriminator: ComponentSpec
    loss: ComponentSpec
    optimizers: Optimizers = Field(default_factory=Optimizers)
    train: TrainSpec
    callbacks: list[ComponentSpec] = Field(default_factory=list)
    metrics: list[ComponentSpec] = Field(default_factory=list)
    loggers: list[ComponentSpec] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_is_one_folder(cls, name: str) -> str:
        if not name_is_safe(name):
            raise ValueError(f"not a safe name for the run's folder; {NAME_RULE}")
        return name

    @field_validator("device")
    @classmethod
    def _device_known(cls, device: str) -> str:
        kind, _, index = device.partition(":")
        if kind not in ("auto", "cpu", "cuda", "mps") or (index and not index.isdigit()):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return device


#: Recipe section -> registry kind, for the single components and the lists.
SINGLE = {
    "data": "datasets",
    "generator": "generators",
    "discriminator": "discriminators",
    "loss": "losses",
}
LISTS = {"callbacks": "callbacks", "metrics": "metrics", "loggers": "loggers"}


@dataclass(frozen=True)
class Resolved:
    """A recipe whose components were found and whose params were validated."""

    recipe: Recipe
    #: dotted place in the recipe ("generator", "callbacks.0") -> (component, params)
    components: dict[str, tuple[Component, BaseModel]]

    def get(self, place: str) -> tuple[Component, BaseModel]:
        return self.components[place]

    def listed(self, section: str) -> list[tuple[Component, BaseModel]]:
        """The components of a list section (callbacks, metrics, loggers), in order."""
        n = len(getattr(self.recipe, section))
        return [self.components[f"{section}.{i}"] for i in range(n)]

    def to_yaml(self) -> str:
        return dump_yaml(self.recipe.model_dump(mode="json"))


# --- stage 1: YAML, overrides, structure --------------------------------------------------


def load_recipe(
    path: str | Path, overrides: Sequence[str] = (), extra_plugins: Sequence[str] = ()
) -> Recipe:
    """Read a recipe file, apply ``key.path=value`` overrides, validate its structure.

    ``extra_plugins`` (from ``-p``) join the recipe's ``plugins:`` list, so that the resolved
    recipe names every plugin the run needs and can be run again as it is.
    """
    path = Path(path)
    if not path.is_file():
        raise GanlabError(
            f"Recipe {str(path)!r} not found. Give the path to a .yaml file, "
            "for example recipes/quickstart.yaml."
        )
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise GanlabError(f"{path}:{exc.second.line + 1}: {exc.message()}.") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise GanlabError(
            f"{where}: this is not valid YAML ({exc.problem}). Fix the file at that line."
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GanlabError(f"{path}: cannot read this recipe: {exc}.") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise GanlabError(f"{path}: a recipe must be a mapping of keys, got {type(raw).__name__}.")
    return parse_recipe(
        raw, str(path), overrides, extra_plugins, base=path.parent, default_name=path.stem
    )


def parse_recipe(
    raw: dict[str, Any],
    source: str,
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
        _apply_override(raw, override)
    explain: dict[str, str] = {}
    if default_name is not None and "name" not in raw:
        raw["name"] = default_name
        explain["name"] = _name_from_file(source, default_name)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise GanlabError(format_errors(exc, source, Recipe, explain=explain)) from None
    # The resolved recipe must still find plugin files when it is run from the run folder.
    plugins = [_absolute_plugin(p, base or Path.cwd()) for p in recipe.plugins]
    plugins += [_absolute_plugin(p, Path.cwd()) for p in extra_plugins]
    recipe.plugins = list(dict.fromkeys(plugins))
    return recipe


def _name_from_file(source: str, stem: str) -> str:
    """The message for a recipe without ``name:`` whose file name cannot name a folder."""
    fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).lstrip(".")[:NAME_MAX] or "my_recipe"
    return (
        f"{source}: name: not set, so it comes from the file name, {stem!r}, which is not "
        f"a safe name for the run's folder ({NAME_RULE}). Rename the file (e.g. {fixed}.yaml) "
        f"or set a name in it (e.g. name: {fixed})."
    )


def is_plugin_file(spec: str) -> bool:
    """Whether a plugin spec names a ``.py`` file rather than an importable module."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _absolute_plugin(spec: str, base: Path) -> str:
    if is_plugin_file(spec):
        return str((base / Path(spec).expanduser()).resolve())
    return spec


def _apply_override(raw: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in the raw recipe; the value is read as YAML (3, true, [1, 2])."""
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


def _list_index(node: list[Any], part: str, where: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        valid = f"an index from 0 to {len(node) - 1}" if node else "no index: the list is empty"
        raise GanlabError(f"--set {override!r}: {where} takes {valid}.")
    return int(part)


# --- stage 2: components ------------------------------------------------------------------


def resolve(
    recipe: Recipe, registry: Registry, source: str = "recipe", *, check_metric_keys: bool = True
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
            component = registry.get(kind, spec.name, f"{source}: {place}.name")
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
        problems += metric_key_problems(recipe, components, registry, source)
    if problems:
        raise GanlabError("\n".join(problems))
    return Resolved(recipe, components)


def metric_key_problems(
    recipe: Recipe,
    components: Mapping[str, tuple[Component, BaseModel]],
    registry: Registry,
    source: str,
) -> list[str]:
    """One message per `MetricKey` param that names a key no metric of the recipe produces.

    A component waiting for such a key would wait in vain: ``best`` with ``metric: stat_12``
    would run to the end and never write ``best.pt``. Metrics declare their keys when they
    register (``results=``, where ``*`` stands for any text); when one of the recipe's
    metrics declares nothing, or could not be resolved, any key may come and nothing is
    refused.
    """
    produced: dict[str, None] = {}  # the metrics' key patterns, in recipe order
    for i in range(len(recipe.metrics)):
        if f"metrics.{i}" not in components:
            return []
        component, params = components[f"metrics.{i}"]
        keys = component.result_keys(params)
        if keys is None:
            return []
        produced.update(dict.fromkeys(keys))
    exact = [p for p in produced if not _is_pattern(p)]
    problems = []
    for place, (_component, params) in components.items():
        for inner, key in metric_keys_in(params):
            if key in exact or (
                # "swd_*" in a recipe is no key at all: only produced keys match patterns
                not _is_pattern(key) and any(fnmatchcase(key, p) for p in produced)
            ):
                continue
            where = f"{source}: {'.'.join((place, 'params', *inner))}"
            providers = _metrics_producing(key, registry)
            add = f"add {providers or 'a metric that produces it'} to `metrics:`"
            if not produced:
                problems.append(
                    f"{where}: names the metric key {key!r}, but the recipe has no metrics, "
                    f"so it would never get a value. {add[0].upper()}{add[1:]}, or remove "
                    f"{place} from the recipe."
                )
                continue
            problems.append(
                f"{where}: no metric of the recipe produces the key {key!r}, so it would never "
                f"get a value.{did_you_mean(key, exact)} The recipe's metrics produce: "
                f"{', '.join(produced)}. Name one of these, or {add}."
            )
    return problems


def _is_pattern(key: str) -> bool:
    return any(c in key for c in "*?[")


def _metrics_producing(key: str, registry: Registry) -> str:
    """'the metric {name: swd}' for the registered metrics that declare ``key`` (among those
    whose keys do not depend on their params), or ''."""
    names = [
        c.name
        for c in registry.components("metrics")
        if isinstance(c.results, tuple)
        and not _is_pattern(key)
        and any(fnmatchcase(key, p) for p in c.results)
    ]
    if not names:
        return ""
    return "the metric " + " or ".join(f"{{name: {n}}}" for n in names)
