"""What every `ganlab` command shares: ``--debug`` and the one way user errors end."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from ganlab.errors import GanlabError
from ganlab.plugins import Plugins, load_plugins
from ganlab.recipe import Resolved, load_recipe, resolve


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Print a GanlabError as one message and exit 2; with --debug, keep the traceback."""
    try:
        yield
    except GanlabError as exc:
        if debug:
            raise
        click.echo(f"ganlab: error: {exc}", err=True)
        sys.exit(exc.exit_code)


def user_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a click command a --debug flag, and turn user errors into exit code 2.

    Put it below the ``@click.command()`` and option decorators, right above the function.
    """

    @click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
    @functools.wraps(func)
    def wrapper(debug: bool, **kwargs: Any) -> Any:
        with user_errors(debug):
            return func(**kwargs)

    return wrapper


plugin_option = click.option(
    "-p",
    "--plugin",
    "plugin_specs",
    multiple=True,
    metavar="PLUGIN",
    help="A plugin module name or .py file to load (repeatable).",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe value by dotted key, e.g. --set train.batch_size=64 (repeatable).",
)


def prepare_recipe(
    recipe_path: str, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]
) -> tuple[Resolved, Plugins]:
    """Read the recipe, load the plugins it and the user name, resolve its components."""
    recipe = load_recipe(recipe_path, overrides, extra_plugins=plugin_specs)
    plugins = load_plugins(recipe.plugins)
    return resolve(recipe, plugins.registry, source=recipe_path), plugins
