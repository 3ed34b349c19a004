"""Rules that every recipe model and every component's params share.

* `StrictNumbers`: numbers and bools are not interchangeable. pydantic's lax mode reads
  ``steps: true`` as 1, ``steps: "3"`` as 3 and ``steps: 3.0`` as 3, so a slip in a recipe
  trains something else without a word. Under this base class an int field takes only an
  int, a float field an int or a float, and a bool field only true or false. Everything
  else keeps pydantic's usual conversions (a YAML list for a tuple, a string for a path).
  A float field also refuses what is not finite (``.inf``, ``.nan``): no learning rate, weight
  or penalty can be infinite and train anything but NaN.
* `MetricKey`: the type of a params field that names a key of the metrics' results (the
  ``best`` callback's ``metric``), so that `ganlab.recipe.resolve.resolve` can refuse a key that no
  metric of the recipe produces instead of letting the component wait for it in vain.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from types import UnionType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, StringConstraints
from pydantic_core import CoreSchema

#: The core-schema types made strict: int (bool is not an int), float (bool and strings
#: are not numbers) and bool (1 and "yes" are not bools).
_STRICT_TYPES = frozenset({"int", "float", "bool"})


def _make_strict(schema: Any, owner: type[BaseModel]) -> None:
    """Mark every int, float and bool schema under ``schema`` strict, in place.

    Another model's schema met on the way is left alone (it is that model's own, shared with
    every other user of it), unless that model derives from `StrictNumbers` anyway.
    """
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") in _STRICT_TYPES:
                node["strict"] = True
            if node.get("type") == "float":
                # inf and nan validate as floats, then train NaN from the first step.
                node["allow_inf_nan"] = False
            cls = node.get("cls") if node.get("type") == "model" else None
            if cls is not None and cls is not owner and not _is_strict_model(cls):
                continue
            stack.extend(v for v in node.values() if isinstance(v, dict | list | tuple))
        elif isinstance(node, list | tuple):
            stack.extend(v for v in node if isinstance(v, dict | list | tuple))


def _is_strict_model(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, StrictNumbers)


class StrictNumbers(BaseModel):
    """A pydantic model whose int, float and bool fields refuse each other's values.

    Applies to every field of the model and of its subclasses, at any depth: ``X``,
    ``X | None``, ``tuple[float, float]``, ``list[int]``, ``dict[str, float]``. A float
    field still takes an int (``lr: 1``). Models nested in a field keep their own rules
    unless they derive from this class too. A float refuses ``inf`` and ``nan``.
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = handler(source)
        _make_strict(schema, cls)
        return schema


class RecipeSection(StrictNumbers):
    """A part of the recipe's own structure (`ganlab.recipe.models`, `ganlab.recipe.train`):
    strict numbers, and no key it does not define, so a typo is an error."""

    model_config = ConfigDict(extra="forbid")


class _MetricKeyMark:
    """The marker inside `MetricKey`'s metadata that `metric_keys_in` looks for."""

    def __repr__(self) -> str:
        return "MetricKey"


#: A params field that names a key of the metrics' results, e.g. ``"swd"`` or ``"kid"``:
#: ``metric: ganlab.MetricKey = Field(default="swd")``. Also inside ``X | None``, lists,
#: tuples and dict values. `ganlab.recipe.resolve.resolve` refuses a recipe in which such a field
#: names a key that no metric of the recipe declares (see ``register(..., results=...)``).
MetricKey = Annotated[str, _MetricKeyMark(), StringConstraints(min_length=1)]


def metric_keys_in(params: BaseModel) -> list[tuple[tuple[str, ...], str]]:
    """Every `MetricKey` value in a params instance: (dotted place inside it, key).

    Follows the field annotations, so default values count as much as given ones:
    ``[(("metric",), "swd")]`` for the ``best`` callback's params.
    """
    found: list[tuple[tuple[str, ...], str]] = []
    for name, field in type(params).model_fields.items():
        found += _keys(field.annotation, tuple(field.metadata), getattr(params, name), (name,))
    return found


def _keys(
    annotation: Any, metadata: tuple[Any, ...], value: Any, place: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str]]:
    """The `MetricKey` values in ``value``, whose type is ``annotation`` (plus ``metadata``)."""
    while typing.get_origin(annotation) is Annotated:
        annotation, *more = typing.get_args(annotation)
        metadata += tuple(more)
    if value is None:
        return
    if any(isinstance(m, _MetricKeyMark) for m in metadata):
        if isinstance(value, str):
            yield place, value
        return
    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from _keys(
                field.annotation, tuple(field.metadata), getattr(value, name), (*place, name)
            )
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, UnionType):
        # The value is of one arm; the arms that do not fit it find nothing in it.
        for arm in args:
            keys = list(_keys(arm, (), value, place))
            if keys:
                yield from keys
                return
    elif isinstance(value, Mapping) and len(args) == 2:
        for key, item in value.items():
            yield from _keys(args[1], (), item, (*place, str(key)))
    elif isinstance(value, list | tuple | set | frozenset) and args:
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            arms = args  # tuple[X, Y]: one type per position
        else:
            arms = (args[0],) * len(items)
        for i, (arm, item) in enumerate(zip(arms, items, strict=False)):
            yield from _keys(arm, (), item, (*place, str(i)))
