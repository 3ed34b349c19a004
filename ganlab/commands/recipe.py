"""`ganlab recipe show|diff|validate`: inspect recipes without running them."""

from __future__ import annotations

import click

from ganlab.api import prepare_recipe
from ganlab.commands.common import plugin_option, set_option, user_command
from ganlab.recipe.diff import diff_lines


@click.group("recipe")
def recipe() -> None:
    """Inspect recipes without running them."""


@recipe.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@set_option
@plugin_option
@user_command
def show(recipe_path: str, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]) -> None:
    """Print RECIPE resolved: its `base:` merged in, every default filled in, as the run
    folder will hold it."""
    resolved, _ = prepare_recipe(recipe_path, overrides, plugin_specs)
    click.echo(resolved.to_yaml(), nl=False)


@recipe.command("diff")
@click.argument("first", metavar="RECIPE_A", type=click.Path(dir_okay=False))
@click.argument("second", metavar="RECIPE_B", type=click.Path(dir_okay=False))
@set_option
@plugin_option
@user_command
def diff_command(
    first: str, second: str, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]
) -> None:
    """Print what differs between RECIPE_A and RECIPE_B, both resolved (bases merged, every
    default filled in, --set applied to both): one line per key, `key: A -> B`.

    Exits 0 whether or not they differ; nothing printed means the two runs would be the same.
    """
    a, b = (
        prepare_recipe(path, overrides, plugin_specs)[0].recipe.model_dump(mode="json")
        for path in (first, second)
    )
    for line in diff_lines(a, b):
        click.echo(line)


@recipe.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@set_option
@plugin_option
@user_command
def validate(recipe_path: str, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]) -> None:
    """Check RECIPE (structure, component names, params) and say what it uses."""
    resolved, _ = prepare_recipe(recipe_path, overrides, plugin_specs)
    r = resolved.recipe
    click.echo(
        f"{recipe_path}: valid. data={r.data.name} generator={r.generator.name} "
        f"discriminator={r.discriminator.name} loss={r.loss.name} seed={r.seed}"
    )
