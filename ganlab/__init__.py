"""ganlab: plugin-based GAN experiments from seeded YAML recipes.

This module is the public API: what built-in and third-party plugins import, and the
Python API for notebooks and scripts (`load_recipe`, `train`, `load_generator`, `sample`,
`export_generator`; docs/python.md).
"""

from ganlab.api import (
    TrainingInterrupted,
    TrainResult,
    load_generator,
    load_recipe,
    sample,
    train,
)
from ganlab.commands.common import plugin_option, prepare_recipe, set_option, user_command
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
    Penalty,
    StepScores,
)
from ganlab.data.cache import cache_dir
from ganlab.data.types import Labels, TensorImages, labels_of
from ganlab.engine.run import Run, StepStats
from ganlab.errors import GanlabError, RunInterrupted
from ganlab.export import export_generator
from ganlab.files.images import grid, save_gif, save_grid, save_png, to_uint8, to_unit_range
from ganlab.hookspecs import hookimpl
from ganlab.plugin_manager.params import MetricKey
from ganlab.plugin_manager.registry import NoParams, Params, Register
from ganlab.recipe.models import Resolved
from ganlab.recipe.yamlfile import load_yaml

__version__ = "0.1.0"

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
    "Labels",
    "Metric",
    "MetricKey",
    "NoParams",
    "Params",
    "Penalty",
    "Register",
    "Resolved",
    "Run",
    "RunInterrupted",
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
    "load_yaml",
    "plugin_option",
    "prepare_recipe",
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
