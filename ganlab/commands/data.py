"""`ganlab data prepare`: decode a recipe's data set into ganlab's cache ahead of training."""

from __future__ import annotations

import os

import click

from ganlab.api import prepare_recipe
from ganlab.commands.common import plugin_option, set_option, user_command
from ganlab.data.cache import CacheableImages, prepare_cache
from ganlab.engine.components import build_component
from ganlab.plugin_manager.blame import blamed_on


@click.group("data")
def data() -> None:
    """Prepare data sets ahead of training."""


@data.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Processes that decode images in parallel.",
)
@set_option
@plugin_option
@user_command
def prepare(
    recipe_path: str, workers: int, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]
) -> None:
    """Decode RECIPE's data set once into ganlab's uint8 cache, so that runs start at once
    and no epoch decodes an image again."""
    resolved, _ = prepare_recipe(recipe_path, overrides, plugin_specs)
    component, params = resolved.get("data")
    dataset = build_component("data", component, params)
    if not isinstance(dataset, CacheableImages):
        click.echo(f"data set {component.name!r} needs no cache (it is generated in memory).")
        return
    with blamed_on(component, "data", "while decoding its images"):
        path, rate, built = prepare_cache(dataset, workers)
    if built:
        click.echo(f"Prepared {len(dataset)} images ({rate:.0f} img/s) into {path}")
    else:
        click.echo(f"Already prepared: {len(dataset)} images in {path}")
