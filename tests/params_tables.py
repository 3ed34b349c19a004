"""The params tables of docs/recipes.md, generated from the pydantic models.

Each generated block sits between two markers, and only the text between them is rewritten:

    <!-- params: KEY -->
    ...generated...
    <!-- /params -->

KEY is one of the recipe's own models by class name (``Recipe``, ``TrainSpec``, ...), a
built-in component as ``kind/name`` (``datasets/cartoon_faces``), or ``components`` (the
index of every built-in). `tests/test_docs.py` fails when the file differs from what
`rewrite` makes of it; ``python -m tests.test_docs`` writes it.

A table has one row per field: its key, its type as a recipe writes it, its default as YAML,
its constraints (``> 0``) and its meaning, the field's ``Field(description=...)``.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

from ganlab.plugin_manager.loading import load_plugins
from ganlab.plugin_manager.params import metric_keys_in
from ganlab.plugin_manager.registry import KINDS, Component, NoParams, singular
from ganlab.recipe.models import LISTS, SINGLE, ComponentSpec, Recipe
from ganlab.recipe.yamlfile import load_yaml

MARKER = re.compile(r"(<!-- params: (?P<key>[\w./-]+) -->\n)(?P<body>.*?)(<!-- /params -->)", re.S)
BUILTIN_PREFIX = "ganlab_plugins."


#: How a recipe names a type.
_NAMES = {int: "int", float: "float", bool: "bool", str: "string", Path: "path"}
#: A model used as a field's type, by what a reader calls it; any other model is a mapping.
_MODEL_NAMES = {ComponentSpec: "component"}


# --- what exists --------------------------------------------------------------------------


def recipe_models() -> dict[str, type[BaseModel]]:
    """The recipe's own models, by class name: `Recipe` and every model its fields use."""
    found: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = [Recipe]
    while todo:
        model = todo.pop(0)
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for field in model.model_fields.values():
            todo += [t for t in _types_in(field.annotation) if _is_model(t)]
    return found


def builtin_components() -> dict[str, Component]:
    """Every built-in component (from `ganlab_plugins`), as ``kind/name``, in the order
    `ganlab plugins` lists them. Installed third-party plugins are left out."""
    registry = load_plugins().registry
    return {
        f"{kind}/{c.name}": c
        for kind in KINDS
        for c in registry.components(kind)
        if c.plugin.startswith(BUILTIN_PREFIX)
    }


def expected_keys(components: dict[str, Component]) -> list[str]:
    """Every marker key docs/recipes.md must have."""
    return ["components", *recipe_models(), *components]


# --- rendering ----------------------------------------------------------------------------


def render(key: str, components: dict[str, Component]) -> str:
    """The generated text for one marker key (without the markers)."""
    if key == "components":
        return _index(components)
    models = recipe_models()
    if key in models:
        return params_table(models[key])
    if key in components:
        component = components[key]
        parts = [
            f"#### `{component.name}` ({singular(component.kind)})",
            _text(component.description),
            "No params." if component.params is NoParams else params_table(component.params),
        ]
        if isinstance(component.results, tuple):
            keys = ", ".join(f"`{k}`" for k in component.results)
            anything = " (`*`: any text)" if any("*" in k for k in component.results) else ""
            parts.append(f"Result keys: {keys}{anything}.")
        return "\n\n".join(parts)
    known = ", ".join(expected_keys(components))
    raise KeyError(f"<!-- params: {key} --> names nothing ganlab has; known keys: {known}")


def rewrite(text: str, components: dict[str, Component]) -> str:
    """``text`` with every marked block replaced by what it should say."""

    def block(match: re.Match[str]) -> str:
        body = render(match.group("key"), components)
        # Blank lines around the body, so that a table ends before the closing marker.
        return f"{match.group(1)}\n{body}\n\n{match.group(4)}"

    return MARKER.sub(block, text)


def marked_keys(text: str) -> list[str]:
    """The keys of the marked blocks in ``text``, in order."""
    return [m.group("key") for m in MARKER.finditer(text)]


def heading_anchor(component: Component) -> str:
    """The anchor of a component's heading, ``#### `name` (kind)``, as GitHub makes it."""
    return f"{component.name}-{singular(component.kind)}".replace(" ", "-")


def _index(components: dict[str, Component]) -> str:
    rows = [
        f"| {c.kind} | [`{c.name}`](#{heading_anchor(c)}) | {_cell(c.description)} |"
        for c in components.values()
    ]
    return "\n".join(["| Kind | Name | What it is |", "|---|---|---|", *rows])


def params_table(model: type[BaseModel]) -> str:
    """A markdown table of a model's fields: key, type, default, constraint, meaning."""
    rows = ["| Key | Type | Default | Constraint | Meaning |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        cells = (
            f"`{name}`",
            type_text(field.annotation, tuple(field.metadata)),
            default_text(field),
            constraint_text(name, field, model),
            meaning(model, name, field),
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def meaning(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """The field's description; a field without one is an error, since a user could not tell
    what it does."""
    text = field.description
    if not text:
        raise ValueError(
            f"{model.__name__}.{name} has no description: give it "
            f'Field(description="..."), which docs/recipes.md and `ganlab plugins` show.'
        )
    return text


def type_text(annotation: Any, metadata: tuple[Any, ...] = ()) -> str:
    """A type as a recipe writes it: ``int or null``, ``list of strings``, `` `a` or `b` ``."""
    annotation, metadata = _unwrap(annotation, metadata)
    if _is_metric_key(annotation, metadata):
        return "[metric key](#metric-keys)"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts: list[str] = []
        literals: list[Any] = []
        for arm in typing.get_args(annotation):
            if typing.get_origin(arm) is Literal:
                literals += typing.get_args(arm)
            elif arm is not type(None):
                parts.append(type_text(arm))
        if literals:
            parts.insert(0, ", ".join(_value(v) for v in literals))
        if type(None) in typing.get_args(annotation):
            parts.append("null")
        return _or(parts)
    if typing.get_origin(annotation) is Literal:
        return _or([_value(v) for v in typing.get_args(annotation)])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple) and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
        return f"list of {type_text(args[0])}s"
    if origin is tuple:
        return "[" + ", ".join(type_text(a) for a in args) + "]"
    if origin is dict:
        return "mapping"
    if _is_model(annotation):
        return _MODEL_NAMES.get(annotation, "mapping")
    if annotation in _NAMES:
        return _NAMES[annotation]
    raise ValueError(f"no reader's name for the type {annotation!r}; add one to _NAMES")


def default_text(field: FieldInfo) -> str:
    """The default as YAML (``null``, ``[0.5, 0.999]``), or "—" for a required field."""
    if field.is_required():
        return "—"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "its fields' defaults"
    return _value(value)


def constraint_text(name: str, field: FieldInfo, model: type[BaseModel]) -> str:
    """What the field's metadata allows: ``> 0``, ``0 < ema < 1``, non-empty; and for a
    component of the recipe, its kind."""
    bounds = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    found = {}
    lengths = []
    _, metadata = _unwrap(field.annotation, tuple(field.metadata))
    for item in metadata:
        for attr in bounds:
            if getattr(item, attr, None) is not None:
                found[attr] = getattr(item, attr)
        if getattr(item, "min_length", None):
            lengths.append(item.min_length)
    parts = []
    low = next(((a, found[a]) for a in ("gt", "ge") if a in found), None)
    high = next(((a, found[a]) for a in ("lt", "le") if a in found), None)
    if low and high:
        # written as a reader would: 0 < ema < 1 (the lower bound's sign turned round)
        turned = {"gt": "<", "ge": "<="}[low[0]]
        parts.append(f"`{_number(low[1])} {turned} {name} {bounds[high[0]]} {_number(high[1])}`")
    elif low or high:
        attr, bound = low or high  # type: ignore[misc]
        parts.append(f"`{bounds[attr]} {_number(bound)}`")
    if lengths:
        parts.append("non-empty" if max(lengths) == 1 else f"at least {max(lengths)} long")
    if model is Recipe:
        kind = SINGLE.get(name) or LISTS.get(name)
        if kind:
            parts.append(f"kind `{kind}`")
    return ", ".join(parts)


# --- helpers ------------------------------------------------------------------------------


def _unwrap(annotation: Any, metadata: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[X, m...]`` -> (X, metadata + m...)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *more = typing.get_args(annotation)
        metadata += tuple(more)
    return annotation, metadata


def _is_metric_key(annotation: Any, metadata: tuple[Any, ...]) -> bool:
    """Whether a str field is a `ganlab.MetricKey`, asked the way ganlab itself finds them."""
    if annotation is not str or not metadata:
        return False

    probe = create_model("Probe", key=(typing.Annotated[(str, *metadata)], ...))
    return bool(metric_keys_in(probe(key="x")))


def _types_in(annotation: Any) -> Iterator[Any]:
    annotation, _ = _unwrap(annotation, ())
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _types_in(arg)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _value(value: Any) -> str:
    """A value as a recipe writes it, in a code span: `null`, `true`, `[0.5, 0.999]`."""
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf)
    text = text.strip().removesuffix("...").strip()  # a bare scalar ends with "..."
    if load_yaml(text) != value:
        # A string a recipe would read as something else (`1e5`, a float to ganlab).
        text = json.dumps(value)
    return f"`{text}`"


def _number(value: float) -> str:
    """A bound as a reader writes it: 0, 0.5, 2**63 (not 9223372036854775808)."""
    if isinstance(value, int) and value >= 2**20 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _or(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _cell(text: str) -> str:
    """Text fit for a table cell: one line, and a `|` that does not end the cell."""
    return _text(" ".join(text.split())).replace("|", "\\|")


def _text(text: str) -> str:
    """Plain text (a description) as markdown that shows it as written: outside code spans,
    ``<N>`` would be taken for an HTML tag and vanish, and ``*`` would start emphasis."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(
        part if part.startswith("`") else re.sub(r"([<*])", r"\\\1", part) for part in parts
    )
