"""What differs between recipes: their leaves as dotted keys, and the keys whose values differ.

``ganlab compare`` shows only the keys that differ between runs, ``ganlab recipe diff`` those
that differ between two resolved recipes, and ``--resume`` refuses a recipe that differs from
the run's in more than its length.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from ganlab.recipe.yamlfile import load_yaml


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


def diff_lines(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """``key: <a's value> -> <b's value>`` for each leaf that differs between two recipes
    (``ganlab recipe diff``), values as YAML writes them, ``(not set)`` for a leaf one lacks."""
    flat_a, flat_b = flatten(a), flatten(b)
    return [
        f"{key}: {_shown(flat_a.get(key, Absent))} -> {_shown(flat_b.get(key, Absent))}"
        for key in differing_keys([flat_a, flat_b])
    ]


def _shown(value: Any) -> str:
    if value is Absent:
        return "(not set)"
    # JSON is YAML's flow style: null, true, 0.0002, "text" (quoted, so "1" is not 1).
    return json.dumps(value) if not isinstance(value, str) or _ambiguous(value) else value


def _ambiguous(text: str) -> bool:
    """Whether a string would read as another value (or nothing) if shown without quotes."""
    try:
        return text.strip() != text or load_yaml(text) != text
    except yaml.YAMLError:  # not YAML on its own (e.g. "a: b: c"): quote it
        return True
