"""ganlab: plugin-based GAN experiments from seeded YAML recipes.

This module is the public API: what built-in and third-party plugins import.
"""

from ganlab.augment import Augmentation
from ganlab.cache import cache_dir
from ganlab.cliutil import plugin_option, prepare_recipe, set_option, user_command
from ganlab.data import ImageDataset, Labels, TensorImages, labels_of, to_uint8, to_unit_range
from ganlab.errors import GanlabError
from ganlab.fields import MetricKey
from ganlab.hookspecs import Metric, hookimpl
from ganlab.images import grid, save_gif, save_grid, save_png
from ganlab.loss import GanLoss
from ganlab.penalty import (
    Critic,
    ExposesIntermediates,
    GeneratorPass,
    GeneratorPenalty,
    Penalty,
    StepScores,
)
from ganlab.recipe import Resolved
from ganlab.registry import NoParams, Params, Register
from ganlab.run import Generator, Run, StepStats
from ganlab.yamlfile import load_yaml

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
    "StepScores",
    "StepStats",
    "TensorImages",
    "__version__",
    "cache_dir",
    "grid",
    "hookimpl",
    "labels_of",
    "load_yaml",
    "plugin_option",
    "prepare_recipe",
    "save_gif",
    "save_grid",
    "save_png",
    "set_option",
    "to_uint8",
    "to_unit_range",
    "user_command",
]
