"""What every `ganlab` command shares: ``--debug`` and the one way user errors end,
``--set`` and ``-p``, strict JSON output."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import click

from ganlab.plugin_manager.blame import as_ganlab_error


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """End a command that fails with one message and its exit code (docs/errors.md); with
    --debug, with the whole traceback instead."""
    try:
        yield
    except click.ClickException:
        raise  # a usage mistake click found: `ganlab.commands.group.GanlabGroup` reports it
    except Exception as exc:
        if debug:
            raise
        error = as_ganlab_error(exc)
        click.echo(f"ganlab: error: {error}", err=True)
        sys.exit(error.exit_code)


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


def strict_json(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON, which every parser reads: a number that is not finite (a
    diverged run's nan) becomes null."""

    def clean(item: Any) -> Any:
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, Mapping):
            return {k: clean(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [clean(v) for v in item]
        return item

    return json.dumps(clean(value), indent=indent, allow_nan=False)
