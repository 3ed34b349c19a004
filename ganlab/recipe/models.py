"""Recipes: the pydantic models of a recipe, and a recipe whose components were found.

A recipe says everything a run does; every field is documented in its
``Field(description=...)``, which docs/recipes.md's tables are generated from. Reading a
recipe file into these models, and resolving its components, is `ganlab.recipe.resolve`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, field_validator

from ganlab.plugin_manager.registry import Component
from ganlab.recipe.section import RecipeSection
from ganlab.recipe.train import Optimizers, TrainSpec
from ganlab.recipe.yamlfile import dump_yaml

# --- the recipe's own structure -----------------------------------------------------------

#: A run's name is its folder under ``--out``: one path component, never ``.`` or ``..``.
NAME_MAX = 100
NAME_RULE = (
    f"a name holds 1 to {NAME_MAX} letters, digits, '_', '.' or '-' and does not start with '.'"
)
_NAME = re.compile(rf"[A-Za-z0-9_-][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}")


def name_is_safe(name: str) -> bool:
    """Whether ``name`` can be a run folder's name: one component, not hidden, not ``..``."""
    return _NAME.fullmatch(name) is not None


class ComponentSpec(RecipeSection):
    """A component by registered name, with its own params."""

    name: str = Field(
        min_length=1, description="a component registered by a plugin, looked up in that kind"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="the component's own settings")


class Recipe(RecipeSection):
    """A whole experiment. See docs/recipes.md for every field."""

    name: str = Field(
        default="",
        description=(
            "the run's name; its folder is `<out>/<name>/`, so it holds 1 to 100 letters, digits, "
            "`_`, `.` or `-` and does not start with `.`; when not set, the recipe file's name "
            "without `.yaml`, which must then be such a name too"
        ),
    )
    seed: int = Field(
        default=0,
        ge=0,
        lt=2**63,
        description=(
            "seeds Python, NumPy and torch, the per-epoch data order, and the 64 fixed latents"
        ),
    )
    device: str = Field(
        default="auto",
        description=(
            "`auto`, `cpu`, `cuda`, `cuda:N` or `mps`; `auto` picks cuda, else mps, else cpu; a "
            "device that is not available is an error when the run starts"
        ),
    )
    plugins: list[str] = Field(
        default_factory=list,
        description=(
            "extra plugins: module names or `.py` files; relative `.py` paths are taken from the "
            "recipe's folder"
        ),
    )
    data: ComponentSpec = Field(description="the training images")
    generator: ComponentSpec = Field(description="built for the data set's `(C, H, W)`")
    discriminator: ComponentSpec = Field(description="built for the data set's `(C, H, W)`")
    loss: ComponentSpec = Field(description="the adversarial loss")
    optimizers: Optimizers = Field(
        default_factory=Optimizers, description="one optimizer for each network"
    )
    train: TrainSpec = Field(
        description="the training length and loop settings; `epochs` or `steps` must be set"
    )
    augment: list[ComponentSpec] = Field(
        default_factory=list,
        description=(
            "differentiable augmentations applied, in order, to real and fake images before "
            "every D call (DiffAugment, ADA)"
        ),
    )
    penalties: list[ComponentSpec] = Field(
        default_factory=list,
        description="regularizers added to D's loss, each with its weight (R1, gradient penalty)",
    )
    callbacks: list[ComponentSpec] = Field(
        default_factory=list, description="event-hook objects for this run (console, samples, ...)"
    )
    metrics: list[ComponentSpec] = Field(
        default_factory=list,
        description="quality metrics, computed every `train.eval_every` steps and at the end",
    )
    loggers: list[ComponentSpec] = Field(
        default_factory=list, description="where logged rows go besides `metrics.jsonl`"
    )

    @field_validator("name")
    @classmethod
    def _name_is_one_folder(cls, name: str) -> str:
        if not name_is_safe(name):
            raise ValueError(f"not a safe name for the run's folder; {NAME_RULE}")
        return name

    @field_validator("device")
    @classmethod
    def _device_known(cls, device: str) -> str:
        kind, _, index = device.partition(":")
        if kind not in ("auto", "cpu", "cuda", "mps") or (index and not index.isdigit()):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return device


#: Recipe section -> registry kind, for the single components and the lists.
SINGLE = {
    "data": "datasets",
    "generator": "generators",
    "discriminator": "discriminators",
    "loss": "losses",
}
LISTS = {
    "augment": "augmentations",
    "penalties": "penalties",
    "callbacks": "callbacks",
    "metrics": "metrics",
    "loggers": "loggers",
}


@dataclass(frozen=True)
class Resolved:
    """A recipe whose components were found and whose params were validated."""

    recipe: Recipe
    #: dotted place in the recipe ("generator", "callbacks.0") -> (component, params)
    components: dict[str, tuple[Component, BaseModel]]

    def get(self, place: str) -> tuple[Component, BaseModel]:
        return self.components[place]

    def listed(self, section: str) -> list[tuple[Component, BaseModel]]:
        """The components of a list section (callbacks, metrics, loggers), in order."""
        n = len(getattr(self.recipe, section))
        return [self.components[f"{section}.{i}"] for i in range(n)]

    def to_yaml(self) -> str:
        return dump_yaml(self.recipe.model_dump(mode="json"))
