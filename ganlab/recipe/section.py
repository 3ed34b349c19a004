"""The base of every part of the recipe's own structure."""

from __future__ import annotations

from pydantic import ConfigDict

from ganlab.plugin_manager.params import StrictNumbers


class RecipeSection(StrictNumbers):
    """A part of the recipe's own structure (`ganlab.recipe.models`, `ganlab.recipe.train`):
    strict numbers, and no key it does not define, so a typo is an error."""

    model_config = ConfigDict(extra="forbid")
