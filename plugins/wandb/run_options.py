"""``ganlab run``'s W&B options: ``--wandb MODE --name --notes --tags --group``.

Each sets W&B's own environment variable for the length of the command, so that the
recipe's wandb logger (and W&B itself) reads it as it would from the shell. This module
imports neither torch nor wandb: `ganlab --help` shows the options without loading them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

#: W&B's own environment variables for what ``ganlab run --name/--notes/--tags/--group``
#: set; like ``WANDB_MODE``, they win over the recipe.
NAME, NOTES, TAGS, GROUP = "WANDB_NAME", "WANDB_NOTES", "WANDB_TAGS", "WANDB_RUN_GROUP"

#: What W&B accepts as a tag (wandb 0.31, ``wandb_settings.py``, ``validate_run_tags``).
TAG_RULE = "a tag has 1 to 64 characters and no comma"


def tag_ok(tag: str) -> bool:
    """Whether W&B accepts ``tag`` (`TAG_RULE`)."""
    return 1 <= len(tag) <= 64 and "," not in tag


def from_env(name: str) -> str | None:
    """A W&B environment variable's value, None when unset or empty."""
    return os.environ.get(name, "").strip() or None


def set_env_for_this_command(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """An option callback that sets W&B's environment variable ``name`` until the command
    ends (a tuple of values, from a repeatable option, comma-joined as W&B reads it)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value == ():
            return
        if isinstance(value, tuple):
            bad = [tag for tag in value if not tag_ok(tag)]
            if bad:
                raise click.BadParameter(f"{bad}: {TAG_RULE}", ctx=ctx, param=param)
            value = ",".join(value)
        previous = os.environ.get(name)
        os.environ[name] = value

        def restore() -> None:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous

        ctx.call_on_close(restore)

    return callback


#: An option: its flag, W&B's environment variable it sets, metavar, help.
Option = tuple[str, str, str | None, str]

#: ``ganlab run``'s W&B options.
OPTIONS: list[Option] = [
    (
        "--wandb",
        "WANDB_MODE",
        None,
        "Mode of the recipe's wandb logger for this run (sets WANDB_MODE; the logger's "
        "default is offline). Has no effect on a recipe without the wandb logger.",
    ),
    ("--name", NAME, "TEXT", "W&B run name (default: the run folder's name)."),
    ("--notes", NOTES, "TEXT", "W&B run notes."),
    ("--tags", TAGS, "TAG", "A W&B tag, added to the recipe's (repeatable)."),
    ("--group", GROUP, "NAME", "W&B group (default: <recipe>-<hash of its configuration>)."),
]


#: ``ganlab eval``'s W&B option: whether its scores go to the evaluated run's W&B run.
EVAL_OPTIONS: list[Option] = [
    (
        "--wandb",
        "WANDB_MODE",
        None,
        "W&B mode for adding the scores to the run's W&B run (sets WANDB_MODE; default: the "
        "mode the run was logged in; disabled: W&B is left alone).",
    )
]


def add_run_options(
    cli: click.Group, command: str = "run", options: list[Option] | None = None
) -> None:
    """Add `OPTIONS` (or ``options``) to ``ganlab run`` (or ``command``), before its
    ``--debug``."""
    run = cli.commands.get(command)
    if run is None:
        return
    names = [param.name for param in run.params]
    at = names.index("debug") if "debug" in names else len(names)
    for flag, env, metavar, help_text in OPTIONS if options is None else options:
        option = click.Option(
            [flag],
            type=click.Choice(["offline", "online", "disabled"]) if env == "WANDB_MODE" else str,
            metavar=metavar,
            multiple=flag == "--tags",
            expose_value=False,
            callback=set_env_for_this_command(env),
            help=help_text,
        )
        run.params.insert(at, option)
        at += 1
