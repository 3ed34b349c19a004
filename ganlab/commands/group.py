"""The ``ganlab`` command group: its commands imported only when used, plugins' commands
added, and one way every error ends.

Click's lazy-loading pattern (click's docs, "Lazily Loading Subcommands"): the group knows each
built-in command by the module that holds it and its one-line help, so ``ganlab --help``
lists them all without importing one (nor torch, which most of them need); a command's
module is imported when the command is looked up.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple

import click

from ganlab.errors import GanlabError
from ganlab.plugin_manager.loading import Plugins, load_command_plugins, load_plugins


class LazyCommand(NamedTuple):
    """A built-in command, not yet imported: where it lives, and what ``--help`` says of it."""

    #: the module that defines it
    module: str
    #: the name of the `click.Command` in that module
    attribute: str
    #: its one-line help: the first sentence of its docstring (a test keeps them equal)
    short_help: str

    def load(self) -> click.Command:
        """Import the command."""
        command = getattr(importlib.import_module(self.module), self.attribute)
        assert isinstance(command, click.Command), f"{self} is not a click command"
        return command


class Commands(MutableMapping[str, click.Command]):
    """A group's commands by name: the built-ins of ``table`` are imported the first time
    one is looked up (a plugin that changes ``cli.commands["run"]`` gets the real one);
    the commands added since (plugins') are held as they are."""

    def __init__(self, table: Mapping[str, LazyCommand]) -> None:
        self.table = dict(table)
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded and name in self.table:
            self.loaded[name] = self.table[name].load()
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self.loaded and name not in self.table:
            raise KeyError(name)
        self.loaded.pop(name, None)
        self.table.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self.table, *self.loaded}))

    def __len__(self) -> int:
        return len({*self.table, *self.loaded})

    def __contains__(self, name: object) -> bool:
        return name in self.loaded or name in self.table

    def short_help(self, name: str, limit: int) -> str | None:
        """What ``--help`` lists for ``name`` (None: a hidden command), importing nothing."""
        if name in self.loaded:
            command = self.loaded[name]
            return None if command.hidden else command.get_short_help_str(limit)
        # click's own shortening, applied to the table's sentence as to a docstring
        return click.Command(name, help=self.table[name].short_help).get_short_help_str(limit)


class GanlabGroup(click.Group):
    """The ``ganlab`` command group.

    Plugins add their commands and options to it (`ganlab_register_commands`): to list the
    commands, only the plugins that can add one (`load_command_plugins`); before a command
    runs, every plugin, once. Click's own usage errors (an unknown option, a missing
    argument) end like every other error, ``ganlab: error: ...`` and exit 2.
    """

    commands: Commands

    def __init__(
        self, name: str | None = None, *, lazy: Mapping[str, LazyCommand], **kwargs: Any
    ) -> None:
        super().__init__(name, commands=Commands(lazy), **kwargs)
        #: the plugins whose ``ganlab_register_commands`` ran
        self.plugins_added: set[str] = set()
        #: which plugins were loaded for that: "commands" (enough to list), "all", or None
        self.loaded: str | None = None

    def add_plugin_commands(self, every_plugin: bool) -> None:
        """Let the plugins add their commands and options, each once: only those that can
        add a command (enough for a list), or ``every_plugin``."""
        if self.loaded == "all" or (self.loaded == "commands" and not every_plugin):
            return
        self.loaded = "all" if every_plugin else "commands"
        try:
            plugins: Plugins = load_plugins() if every_plugin else load_command_plugins()
            plugins.add_commands(self, self.plugins_added)
        except GanlabError as exc:  # before any command runs: click reports it
            raise click_error(exc) from exc

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.add_plugin_commands(every_plugin=True)  # any plugin may add options to it
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.add_plugin_commands(every_plugin=False)
        return super().list_commands(ctx)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands in ``--help``, as click writes it, with the help of the
        built-ins not yet imported taken from the table."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))
        rows = [(name, self.commands.short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, text in rows if text is not None])

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
