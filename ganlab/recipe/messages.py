"""A recipe's validation errors as ganlab prints them: one line each, where, what, and what
to do (did-you-mean for unknown keys, what to write instead for a number of the wrong type)."""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ganlab.errors import did_you_mean
from ganlab.recipe.base import RecipeSources, place_of


def format_errors(
    exc: ValidationError,
    source: str | RecipeSources,
    model: type[BaseModel],
    prefix: tuple[str, ...] = (),
    explain: Mapping[str, str] | None = None,
) -> str:
    """Turn pydantic's errors into one line each: where, what, and what to do.

    ``explain`` maps a dotted path to the whole line to give for an error there instead,
    when the caller knows more (the name of a recipe that came from its file name).
    """
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        path = ".".join(prefix + loc) or "(top level)"
        where = place_of(source, prefix + loc)  # the file (and line) that set the value
        if explain and path in explain:
            lines.append(explain[path])
        elif err["type"] == "extra_forbidden":
            known = _field_names(model, loc[:-1])
            hint = did_you_mean(loc[-1], known)
            allowed = f" Allowed keys here: {', '.join(known)}." if known else ""
            lines.append(f"{where}: {path}: unknown key.{hint}{allowed}")
        elif err["type"] == "missing":
            lines.append(f"{where}: {path}: missing; add it (see docs/recipes.md).")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            given = err.get("input")
            got = "" if isinstance(given, (dict, list)) else f" (got {given!r})"
            lines.append(f"{where}: {path}: {msg}{got}{_type_hint(err['type'], given)}.")
    return "\n".join(lines)


#: What to do about a value that is not finite, wherever in a recipe it is.
NOT_FINITE = (
    "a value that is not finite (inf, nan) can only make training diverge; give a finite number"
)


def non_finite_values(
    raw: object, source: str | RecipeSources, place: tuple[str, ...] = ()
) -> list[str]:
    """One line for each number in a raw recipe (at any depth: its own fields, every
    component's params, a schedule's arguments) that is infinite or NaN."""
    if isinstance(raw, float) and not math.isfinite(raw):
        where = place_of(source, place)
        return [f"{where}: {'.'.join(place)}: {raw} is not a finite number; {NOT_FINITE}."]
    if isinstance(raw, Mapping):
        items: list[tuple[object, object]] = list(raw.items())
    elif isinstance(raw, list | tuple):
        items = list(enumerate(raw))
    else:
        return []
    return [
        line
        for key, value in items
        for line in non_finite_values(value, source, (*place, str(key)))
    ]


def _type_hint(error_type: str, given: Any) -> str:
    """What to write instead, when a number or a bool got a value of another type.

    Numbers and bools are strict (`ganlab.plugin_manager.params.StrictNumbers`), so these are
    the mistakes that lax parsing used to hide: ``steps: true``, ``steps: "3"``, ``steps: 3.0``.
    """
    text = given.strip() if isinstance(given, str) else None
    if error_type == "int_type":
        if isinstance(given, bool):
            return "; write a whole number, not true or false"
        if isinstance(given, float):
            if given.is_integer():
                return f"; write {int(given)}, without a decimal point"
            return "; this key takes a whole number"
        if text is not None and re.fullmatch(r"[-+]?[0-9][0-9_]*", text):
            return f"; write {text} without quotes"
    elif error_type == "float_type":
        if isinstance(given, bool):
            return "; write a number, not true or false"
        if text is not None and _is_float_text(text):
            return f"; write {text} without quotes"
    elif error_type == "finite_number":
        return f"; {NOT_FINITE}"
    elif error_type == "bool_type":
        return "; write true or false" + (" without quotes" if text is not None else "")
    return ""


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
