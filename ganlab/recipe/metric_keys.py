"""Metric keys named by components are keys the recipe's metrics produce.

A component waiting for a key that never comes does nothing, silently: ``best`` with
``metric: stat_12`` would run to the end and never write ``best.pt``. Params fields typed
`ganlab.MetricKey` name such keys; metrics declare theirs when they register
(``results=``). `metric_key_problems` compares the two when a recipe is resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from pydantic import BaseModel

from ganlab.errors import did_you_mean
from ganlab.plugin_manager.params import metric_keys_in
from ganlab.plugin_manager.registry import Component, Registry
from ganlab.recipe.base import RecipeSources, place_of


def metric_key_problems(
    metrics: int,
    components: Mapping[str, tuple[Component, BaseModel]],
    registry: Registry,
    source: str | RecipeSources,
) -> list[str]:
    """One message per `MetricKey` param that names a key no metric of the recipe produces.

    A component waiting for such a key would wait in vain: ``best`` with ``metric: stat_12``
    would run to the end and never write ``best.pt``. Metrics declare their keys when they
    register (``results=``, where ``*`` stands for any text); when one of the recipe's
    metrics declares nothing, or could not be resolved, any key may come and nothing is
    refused.
    """
    produced: dict[str, None] = {}  # the metrics' key patterns, in recipe order
    for i in range(metrics):
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
            path = (*place.split("."), "params", *inner)
            where = f"{place_of(source, path)}: {'.'.join(path)}"
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
