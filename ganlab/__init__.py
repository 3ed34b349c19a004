"""ganlab: plugin-based GAN experiments from seeded YAML recipes.

This module is the public API: what built-in and third-party plugins import, and the
Python API for notebooks and scripts (`load_recipe`, `train`, `load_generator`, `sample`,
`export_generator`; docs/python.md).

Each name is imported from its home the first time it is used (PEP 562), so ``import
ganlab`` costs almost nothing and ``ganlab --help`` never loads torch; the imports below
are what a type checker and a reader see.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganlab.api import (
        TrainingInterrupted,
        TrainResult,
        load_generator,
        load_recipe,
        sample,
        train,
    )
    from ganlab.commands.common import plugin_option, set_option, user_command
    from ganlab.contracts import (
        Augmentation,
        Critic,
        ExposesIntermediates,
        GanLoss,
        Generator,
        GeneratorPass,
        GeneratorPenalty,
        ImageDataset,
        Metric,
        Observer,
        Penalty,
        StepScores,
    )
    from ganlab.data.cache import cache_dir
    from ganlab.data.types import Labels, TensorImages, labels_of
    from ganlab.errors import GanlabError, RunInterrupted
    from ganlab.export import export_generator
    from ganlab.files.images import grid, save_gif, save_grid, save_png, to_uint8, to_unit_range
    from ganlab.hookspecs import hookimpl
    from ganlab.plugin_manager.logkeys import KeyInfo
    from ganlab.plugin_manager.params import MetricKey
    from ganlab.plugin_manager.registry import NoParams, Params, Register
    from ganlab.recipe.models import Resolved
    from ganlab.runview import RunView, StepStats

__version__ = "0.1.0"

#: The modules that hold the public names (the imports above, which a test keeps equal).
_MODULES = {
    "ganlab.api": (
        "TrainingInterrupted",
        "TrainResult",
        "load_generator",
        "load_recipe",
        "sample",
        "train",
    ),
    "ganlab.commands.common": ("plugin_option", "set_option", "user_command"),
    "ganlab.contracts": (
        "Augmentation",
        "Critic",
        "ExposesIntermediates",
        "GanLoss",
        "Generator",
        "GeneratorPass",
        "GeneratorPenalty",
        "ImageDataset",
        "Metric",
        "Observer",
        "Penalty",
        "StepScores",
    ),
    "ganlab.data.cache": ("cache_dir",),
    "ganlab.data.types": ("Labels", "TensorImages", "labels_of"),
    "ganlab.errors": ("GanlabError", "RunInterrupted"),
    "ganlab.export": ("export_generator",),
    "ganlab.files.images": (
        "grid",
        "save_gif",
        "save_grid",
        "save_png",
        "to_uint8",
        "to_unit_range",
    ),
    "ganlab.hookspecs": ("hookimpl",),
    "ganlab.plugin_manager.logkeys": ("KeyInfo",),
    "ganlab.plugin_manager.params": ("MetricKey",),
    "ganlab.plugin_manager.registry": ("NoParams", "Params", "Register"),
    "ganlab.recipe.models": ("Resolved",),
    "ganlab.runview": ("RunView", "StepStats"),
}
#: Each public name's module.
_HOMES = {name: module for module, names in _MODULES.items() for name in names}

# Sorted; what each name is for is in the module's docstring and docs/plugins.md, python.md.
__all__ = [
    "Augmentation",
    "Critic",
    "ExposesIntermediates",
    "GanLoss",
    "GanlabError",
    "Generator",
    "GeneratorPass",
    "GeneratorPenalty",
    "ImageDataset",
    "KeyInfo",
    "Labels",
    "Metric",
    "MetricKey",
    "NoParams",
    "Observer",
    "Params",
    "Penalty",
    "Register",
    "Resolved",
    "RunInterrupted",
    "RunView",
    "StepScores",
    "StepStats",
    "TensorImages",
    "TrainResult",
    "TrainingInterrupted",
    "__version__",
    "cache_dir",
    "export_generator",
    "grid",
    "hookimpl",
    "labels_of",
    "load_generator",
    "load_recipe",
    "plugin_option",
    "sample",
    "save_gif",
    "save_grid",
    "save_png",
    "set_option",
    "to_uint8",
    "to_unit_range",
    "train",
    "user_command",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its home on first use (and kept: the next use is a
    plain attribute)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ganlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
