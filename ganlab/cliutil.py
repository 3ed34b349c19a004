"""What every `ganlab` command shares: ``--debug`` and the one way user errors end."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from ganlab.errors import GanlabError


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
