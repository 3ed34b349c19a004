"""What differs between recipes: their leaves as dotted keys, and the keys whose values differ.

``ganlab compare`` shows only the keys that differ between runs, and ``--resume`` refuses a
recipe that differs from the run's in more than its length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


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
