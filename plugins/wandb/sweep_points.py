"""The points of a sweep: ``--param KEY=V1,V2`` and ``--seeds`` read as ``--set`` reads a
value, each point as W&B's agent passes it to ``ganlab run`` (``KEY=VALUE``, the value
written with Python's ``str()``), and every point checked against the recipe.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

import ganlab

#: A parameter name W&B accepts (``propertyNames`` of ``parameters`` in the sweep config
#: schema, wandb/sweeps ``src/sweeps/config/schema.json``); a dotted recipe key is one.
WANDB_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class ValueLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading a float as YAML 1.2 does, as ``--set`` reads a value
    (docs/recipes.md): ``1e-4`` is a number, where YAML 1.1 makes it a string."""


ValueLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_value(text: str) -> Any:
    """A value as ``--set`` reads it (`ValueLoader`); raises PyYAML's errors."""
    return yaml.load(text, Loader=ValueLoader)


@dataclass(frozen=True)
class Param:
    """One swept recipe key and its values, in the order given."""

    key: str
    values: tuple[Any, ...]


# --- reading --param and --seeds -------------------------------------------------------------


def parse_param(text: str, option: str = "--param") -> Param:
    """``loss.name=bce,hinge`` as a `Param`. The values are one YAML flow list, read as
    ``--set`` reads a value (``1e-4`` a float, ``true`` a bool); a value that is itself a list
    keeps its brackets (``betas=[0.5, 0.999],[0.0, 0.9]``)."""
    key, has_value, listed = text.partition("=")
    key = key.strip()
    if not has_value or not WANDB_PARAMETER.fullmatch(key):
        raise ganlab.GanlabError(
            f"{option} {text!r}: expected KEY=VALUE,VALUE,... with a dotted recipe key, "
            "e.g. --param optimizers.generator.lr=1e-4,2e-4."
        )
    try:
        values = read_value(f"[{listed}]")
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or exc
        raise ganlab.GanlabError(
            f"{option} {text!r}: the values are not a comma-separated YAML list ({problem}). "
            "Quote a value that holds a comma or a bracket: --param 'KEY=\"a,b\",c'."
        ) from None
    if not values:
        raise ganlab.GanlabError(f"{option} {text!r}: give at least one value after '='.")
    seen: list[Any] = []
    for value in values:
        if any(same(value, other) for other in seen):
            raise ganlab.GanlabError(
                f"{option} {text!r}: {value!r} is given twice; give each value once."
            )
        seen.append(value)
    return Param(key, tuple(values))


def collect_params(texts: Sequence[str], seeds: str | None) -> list[Param]:
    """Every --param, with --seeds first as the parameter ``seed``: every configuration
    then gets its first seed before any gets a second, so a sweep stopped early still
    covers each configuration once."""
    params = [parse_param(text) for text in texts]
    if seeds is not None:
        params.insert(0, parse_param(f"seed={seeds}", option="--seeds"))
    keys = [param.key for param in params]
    for key in dict.fromkeys(k for k in keys if keys.count(k) > 1):
        both = "--seeds and --param seed=..." if key == "seed" else f"--param {key}=..."
        raise ganlab.GanlabError(f"{key} is swept twice ({both}); give its values once.")
    if not params:
        raise ganlab.GanlabError(
            "nothing to sweep: give --param KEY=VALUE,VALUE,... (repeatable) or --seeds 0,1,2."
        )
    return params


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, at every depth (``True`` is not ``1``, ``1`` not ``1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# --- a point as the agent passes it --------------------------------------------------------


def agent_argument(key: str, value: Any) -> str:
    """One parameter as W&B's agent writes it for ``${args_no_hyphens}``:
    ``f"{param}={value}"`` (wandb/sdk/launch/sweeps/utils.py, create_sweep_command_args)."""
    return f"{key}={value}"


def check_agent_round_trip(params: Iterable[Param]) -> None:
    """Refuse a value that ganlab would read back as something else once the agent has
    written it with ``str()``: ``None`` arrives as the text ``None``, the text ``'1e5'`` as
    the number 1e5, ``nan`` as a string."""
    for param in params:
        for value in param.values:
            text = str(value)
            back = read_value(text) if text.strip() else ""
            if not same(back, value):
                raise ganlab.GanlabError(
                    f"--param {param.key}: the value {_kind(value)} cannot pass through a W&B "
                    f"sweep agent: the agent writes it as {text!r}, which ganlab reads back "
                    f"as {_kind(back)}. Give a value that reads back as itself."
                )


def _kind(value: Any) -> str:
    """A value with what it is, for a message: ``the text '1e5'``, ``the number 1e5``."""
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return repr(value)


def grid(params: Sequence[Param]) -> list[dict[str, Any]]:
    """Every combination of the values, the first parameter varying slowest."""
    keys = [param.key for param in params]
    return [
        dict(zip(keys, combination, strict=True))
        for combination in itertools.product(*(param.values for param in params))
    ]


def describe(point: Mapping[str, Any]) -> str:
    """``loss.name=hinge seed=1``: a point as its run's arguments."""
    return " ".join(agent_argument(key, value) for key, value in point.items())


# --- checked against the recipe --------------------------------------------------------------


def resolve_points(
    recipe: str,
    sets: Sequence[str],
    points: Sequence[Mapping[str, Any]],
    plugin_specs: Sequence[str],
) -> list[ganlab.Resolved]:
    """Resolve the recipe at every point, as ``ganlab run`` will (the fixed --set values,
    then the point's arguments as the agent writes them); one message per distinct problem.

    Every combination is checked, not each value alone: a value may be valid only beside
    another (``loss.name=wgan_gp`` with ``loss.params.gp_weight=10``).
    """
    resolved = []
    problems: dict[str, list[Mapping[str, Any]]] = {}
    for point in points:
        arguments = [agent_argument(key, value) for key, value in point.items()]
        try:
            resolved.append(ganlab.load_recipe(recipe, [*sets, *arguments], plugin_specs))
        except ganlab.GanlabError as exc:
            problems.setdefault(str(exc), []).append(point)
    if problems:
        lines = []
        for message, failed in problems.items():
            if len(failed) == len(points):
                lines.append(message)  # a typo in a key: the same message as with --set
            else:
                lines.append(f"with {which(failed, points)}: {message}")
        raise ganlab.GanlabError("\n".join(lines))
    return resolved


def which(some: Sequence[Mapping[str, Any]], points: Sequence[Mapping[str, Any]]) -> str:
    """Some of the points, as briefly as they can be named: the values they share when
    exactly these points have them (``loss.name=hing``), else the first of them."""
    shared = {
        key: value
        for key, value in some[0].items()
        if all(same(point[key], value) for point in some)
    }
    chosen = [p for p in points if all(same(p[k], v) for k, v in shared.items())]
    if shared and len(chosen) == len(some):
        return describe(shared)
    more = f" (and {len(some) - 1} more points)" if len(some) > 1 else ""
    return f"{describe(some[0])}{more}"
