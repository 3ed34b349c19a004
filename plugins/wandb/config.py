"""What a ganlab run is, as W&B's run table sorts, filters and groups by it: the config, and
the group that holds exactly the seeds of one configuration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ganlab

#: Recipe keys (dotted) that do not make a different configuration, so a W&B group leaves
#: them out: the seed (the group is the seeds of one configuration), the recipe's name (the
#: group's name starts with it), the run length (``--resume`` may lengthen a run, and W&B
#: charts by step, so a shorter run is the start of the same curves), and the loggers (where
#: the run is logged and under what W&B name, tags or notes: never what it trains).
GROUP_LEAVES_OUT = ("seed", "name", "train.steps", "train.epochs", "loggers")

#: The recipe's lists of components; W&B's config keys each by name.
LISTS = ("callbacks", "metrics", "loggers")


def configuration_hash(recipe: Mapping[str, Any]) -> str:
    """8 hex digits that name a configuration: the resolved recipe (as JSON) without the keys
    of `GROUP_LEAVES_OUT`. Runs that differ only in those share it."""
    kept = json.loads(json.dumps(recipe))  # a deep copy of plain JSON values
    for dotted in GROUP_LEAVES_OUT:
        *parents, last = dotted.split(".")
        place = kept
        for key in parents:
            place = place.get(key) if isinstance(place, dict) else None
        if isinstance(place, dict):
            place.pop(last, None)
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def default_group(recipe: Mapping[str, Any]) -> str:
    """``<recipe name>-<configuration hash>``: one W&B group per configuration."""
    return f"{recipe['name']}-{configuration_hash(recipe)}"


def by_name(components: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A recipe list of ``{name, params}`` as ``{name: params}``, so that W&B can filter by
    ``callbacks.samples.every``. The second component of a name is ``<name>#2``, the third
    ``<name>#3`` (in recipe order), so none is lost."""
    keyed: dict[str, Any] = {}
    for component in components:
        name = str(component["name"])
        key, n = name, 1
        while key in keyed:
            n += 1
            key = f"{name}#{n}"
        keyed[key] = dict(component.get("params") or {})
    return keyed


BUILT_IN = "ganlab_plugins."


def plugins_by_name(sources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """run.json's ``plugins`` (every plugin the run loaded) keyed by a short name: a built-in's
    module under ``ganlab_plugins`` with ``_`` for dots (``data_datasets``: the families share
    module names such as ``models``), another module's last dotted part, an entry point's
    name, a file's stem (``lsgan``)."""
    named = []
    for source in sources:
        name = str(source.get("name", "?"))
        if source.get("kind") == "file":
            short = Path(name).stem
        elif name.startswith(BUILT_IN):
            short = name.removeprefix(BUILT_IN).replace(".", "_")
        else:
            short = name.rsplit(".", 1)[-1]
        details = {k: v for k, v in source.items() if k != "name" and v is not None}
        named.append({"name": short, "params": details})
    return by_name(named)


def run_config(run: ganlab.RunView) -> dict[str, Any]:
    """The W&B config of ``run``: the resolved recipe with its lists keyed by name, the
    device actually used (the recipe may say ``auto``), and what ``run.json`` records of the
    run's making: versions, the git commit, every plugin loaded (in place of the recipe's
    ``plugins`` list, which they include), and the data set's class names when it has any."""
    config = run.recipe.model_dump(mode="json")
    for section in LISTS:
        config[section] = by_name(config[section])
    config["device"] = str(run.device)
    config["plugins"] = plugins_by_name(run.info.get("plugins") or [])
    config["versions"] = dict(run.info.get("versions") or {})
    config["git"] = run.info.get("git")
    if "classes" in run.info:  # the data set's class names, as run.json has them
        config["classes"] = run.info["classes"]
    return config
