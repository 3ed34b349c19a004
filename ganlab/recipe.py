"""Recipes: YAML files, validated by pydantic, that say everything a run does.

Loading happens in two stages because a recipe may name its own plugins:

1. `load_recipe` reads the YAML, applies ``--set`` overrides and validates the recipe's
   own structure (`Recipe`); each component's ``params`` is still a plain dict.
2. `resolve` looks every component up in the registry the plugins filled, and validates
   its params against the model that component registered, filling in every default.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
from ganlab.plugins import is_plugin_file
from ganlab.registry import Component, Registry


class _Strict(BaseModel):
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

    name: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]+$")
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
        return yaml.safe_dump(self.recipe.model_dump(mode="json"), sort_keys=False)


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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    raw.setdefault("name", path.stem)
    return parse_recipe(raw, str(path), overrides, extra_plugins, base=path.parent)


def parse_recipe(
    raw: dict[str, Any],
    source: str,
    overrides: Sequence[str] = (),
    extra_plugins: Sequence[str] = (),
    base: Path | None = None,
) -> Recipe:
    """Apply ``--set`` overrides to a recipe's raw mapping and validate its structure.

    Plugin files in it are relative to ``base`` (the recipe's folder), those of
    ``extra_plugins`` to the current folder.
    """
    raw = copy.deepcopy(raw)
    for override in overrides:
        _apply_override(raw, override)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise GanlabError(format_errors(exc, source, Recipe)) from None
    # The resolved recipe must still find plugin files when it is run from the run folder.
    plugins = [_absolute_plugin(p, base or Path.cwd()) for p in recipe.plugins]
    plugins += [_absolute_plugin(p, Path.cwd()) for p in extra_plugins]
    recipe.plugins = list(dict.fromkeys(plugins))
    return recipe


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
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text  # not YAML (e.g. an unbalanced bracket in a path): keep the string
    parts = key.strip().split(".")
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


def resolve(recipe: Recipe, registry: Registry, source: str = "recipe") -> Resolved:
    """Find every component and validate its params; the result has every default filled."""
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
    if problems:
        raise GanlabError("\n".join(problems))
    return Resolved(recipe, components)


# --- error messages -----------------------------------------------------------------------


def format_errors(
    exc: ValidationError, source: str, model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> str:
    """Turn pydantic's errors into one line each: where, what, and what to do."""
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        path = ".".join(prefix + loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            known = _field_names(model, loc[:-1])
            hint = did_you_mean(loc[-1], known)
            allowed = f" Allowed keys here: {', '.join(known)}." if known else ""
            lines.append(f"{source}: {path}: unknown key.{hint}{allowed}")
        elif err["type"] == "missing":
            lines.append(f"{source}: {path}: missing; add it (see docs/recipes.md).")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            given = err.get("input")
            got = "" if isinstance(given, (dict, list)) else f" (got {given!r})"
            lines.append(f"{source}: {path}: {msg}{got}.")
    return "\n".join(lines)


def _field_names(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The field names of the (nested) model found at ``loc``, or [] if it is not a model."""
    current: Any = model
    for part in loc:
        if part.isdigit():
            continue  # list index: the element type was already unwrapped
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X``, ``X | None`` or ``list[X]``, else the annotation."""
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys for every leaf of a nested recipe; list items go by index.

    ``{"callbacks": [{"params": {"every": 5}}]}`` gives ``{"callbacks.0.params.every": 5}``.
    An empty mapping or list has no leaves and gives no key.
    """
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differing_keys(flat_recipes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The dotted keys whose value is not the same in every recipe, or that only some have.

    In the order they first appear (the recipe's own order).
    """
    keys: dict[str, None] = {}
    for flat in flat_recipes:
        keys.update(dict.fromkeys(flat))
    differ = []
    for key in keys:
        values = [flat.get(key, Absent) for flat in flat_recipes]
        first = values[0]
        if any(v is Absent for v in values) or any(not _same(first, v) for v in values[1:]):
            differ.append(key)
    return differ


class Absent:
    """Marks a key a recipe does not have (distinct from any YAML value, null included)."""


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 == True in Python; in a recipe, true and 1 are different settings.
    return (type(a) is type(b) or (is_number(a) and is_number(b))) and a == b


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- metrics ------------------------------------------------------------------------------
