"""What every `ganlab` command shares: ``--debug`` and the one way user errors end."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from ganlab.errors import GanlabError, InternalError
from ganlab.plugin_manager.blame import frames_of, is_out_of_memory, one_line, out_of_memory
from ganlab.plugin_manager.loading import Plugins, load_plugins
from ganlab.recipe.models import Resolved
from ganlab.recipe.resolve import check_components_kept, load_recipe_sourced, resolve


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """End a command that fails with one message and its exit code (docs/errors.md); with
    --debug, with the whole traceback instead."""
    try:
        yield
    except click.ClickException:
        raise  # a usage mistake click found: `GanlabGroup` reports it
    except Exception as exc:
        if debug:
            raise
        error = as_ganlab_error(exc)
        click.echo(f"ganlab: error: {error}", err=True)
        sys.exit(error.exit_code)


def as_ganlab_error(exc: Exception) -> GanlabError:
    """``exc`` as the one message a user sees: a `GanlabError` as it is; a file-system error
    or lack of memory with what to do; anything else as a bug to report (exit 1)."""
    if isinstance(exc, GanlabError):
        return exc
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return GanlabError(
            f"{where}{exc.strerror or exc}. Check that the path exists, that you may read and "
            "write it, and that its disk has free space."
        )
    if is_out_of_memory(exc):
        return out_of_memory("", exc)
    frames = frames_of(exc)
    at = f" at {frames[-1][0]}:{frames[-1][1]}" if frames else ""
    return InternalError(
        f"internal error: {type(exc).__name__}: {one_line(exc)}{at}. This is a bug in ganlab "
        "(or in a plugin it could not name): please report it with the output of the same "
        "command with --debug."
    )


class GanlabGroup(click.Group):
    """The ``ganlab`` command group.

    Plugins add their commands and options to it (`ganlab_register_commands`) the first time
    a command is looked up; click's own usage errors (an unknown option, a missing argument)
    end like every other error, ``ganlab: error: ...`` and exit 2.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plugin_commands_added = False

    def add_plugin_commands(self) -> None:
        """Let the built-in and installed plugins add their commands and options, once."""
        if not self.plugin_commands_added:
            self.plugin_commands_added = True
            try:
                load_plugins().add_commands(self)
            except GanlabError as exc:  # before any command runs: click reports it
                raise click_error(exc) from exc

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.add_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.add_plugin_commands()
        return super().list_commands(ctx)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" See '{exc.ctx.command_path} --help'." if exc.ctx else ""
            click.echo(f"ganlab: error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"ganlab: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:  # Ctrl-C outside a run (a run handles it itself)
            click.echo("ganlab: interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


def click_error(exc: GanlabError) -> click.ClickException:
    """``exc`` as an error click reports, with ``exc``'s exit code (click's exceptions take
    theirs from the class)."""

    class Reported(click.ClickException):
        exit_code = exc.exit_code

    return Reported(str(exc))


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
    recipe_path: str,
    overrides: tuple[str, ...],
    plugin_specs: tuple[str, ...],
    *,
    resume: Path | None = None,
) -> tuple[Resolved, Plugins]:
    """Read the recipe, load the plugins it and the user name, resolve its components.

    With ``resume`` (the run folder to continue), a recipe that names other components than
    the run's is refused first, before their params are checked against the new ones.
    """
    recipe, sources = load_recipe_sourced(recipe_path, overrides, extra_plugins=plugin_specs)
    if resume is not None:
        check_components_kept(resume, recipe)
    plugins = load_plugins(recipe.plugins)
    return resolve(recipe, plugins.registry, source=sources), plugins


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
