"""ganlab: plugin-based GAN experiments from seeded YAML recipes.

This module is the public API, and nothing else: the Python API for notebooks and scripts
(`load_recipe`, `train`, `load_generator`, `sample`, `export_generator`; docs/python.md), and
what a plugin uses (docs/plugins.md): the contracts it implements, the `RunView` its hooks and
metrics are given, the registration and error types, image and data helpers, and the helpers
of a plugin that adds a command. Every other module is the core's own and may change.
"""

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
