"""Recipe overrides as `ganlab run` reads them after its options.

``ganlab run RECIPE --set train.steps=100`` is the spelling for people;
``ganlab run RECIPE train.steps=100`` and ``ganlab run RECIPE --train.steps=100`` are the two
spellings a W&B sweep agent writes for each run (its ``${args_no_hyphens}`` and ``${args}``
macros; see docs/sweeps.md). All three end up as the same ``KEY=VALUE`` override, applied and
validated by `ganlab.recipe.resolve`, so a typo reads the same whichever way it came.

A W&B sweep may also declare a parameter nested (``loss: {parameters: {name: ...}}``), which
the agent writes as one mapping, ``loss={'name': 'hinge'}`` (wandb/sweeps, ``params.py``:
nested parameters are put back into one dict per top-level key). After the recipe such a
mapping sets each of its keys, ``loss.name=hinge``, as the flat parameter ``loss.name`` does,
so that both declarations of a sweep train the same recipe (`expand_mapping`); ``--set``
still replaces a section whole.

`ganlab run` lets click pass options it does not know through to `recipe_and_overrides`
(``ignore_unknown_options``), which decides what each one is: ``--KEY=VALUE`` is an
override, anything else that starts with ``-`` is still refused as an unknown option, with
click's own message, so a misspelled ``--seeed 3`` is not mistaken for a recipe value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import click
import yaml

from ganlab.recipe.yamlfile import load_yaml

#: A dotted recipe key as an override names it: ``seed``, ``optimizers.generator.lr``,
#: ``callbacks.0.params.every``. (The key itself is checked against the recipe later; this
#: only tells an override from a recipe path or a stray word.)
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")


def recipe_and_overrides(
    arguments: Sequence[str], ctx: click.Context
) -> tuple[str | None, list[str]]:
    """Split the free arguments of `ganlab run` into its RECIPE and ``KEY=VALUE`` overrides.

    In order: ``KEY=VALUE`` and ``--KEY=VALUE`` are overrides (as ``--set KEY=VALUE``); the
    first other argument is RECIPE. Raises click's usage errors for an unknown option
    (``--seeed``, ``-x``) and for a second word that is neither (``train.steps 100``).
    """
    recipe: str | None = None
    overrides: list[str] = []
    for argument in arguments:
        if argument.startswith("-"):
            name, has_value, _ = argument.partition("=")
            if argument.startswith("--") and has_value and KEY.fullmatch(name[2:]):
                overrides += expand_mapping(argument[2:])
                continue
            raise unknown_option(name, ctx)
        key, has_value, _ = argument.partition("=")
        if has_value and KEY.fullmatch(key):
            overrides += expand_mapping(argument)
        elif recipe is None:
            recipe = argument
        else:
            raise click.UsageError(
                f"unexpected argument {argument!r} after the recipe {recipe!r}. Give recipe "
                "overrides as KEY=VALUE (e.g. train.steps=100), --KEY=VALUE or "
                "--set KEY=VALUE.",
                ctx,
            )
    return recipe, overrides


def expand_mapping(override: str) -> list[str]:
    """``KEY=VALUE`` as overrides of the recipe: one per leaf of VALUE when it is a non-empty
    mapping (``loss={'name': 'hinge'}`` -> ``loss.name="hinge"``, at any depth), else itself.
    The leaves are written as JSON, which reads back as the same value."""
    key, _, text = override.partition("=")
    try:
        value = load_yaml(text) if text.strip() else None
    except yaml.YAMLError:
        return [override]  # resolving the recipe says what is wrong with it
    if not isinstance(value, dict) or not value:
        return [override]
    leaves: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and not all(isinstance(k, str) for k in node):
            raise TypeError("a key that is no name")  # not a recipe section: left whole
        if isinstance(node, dict) and node:
            for name, child in node.items():
                walk(f"{prefix}.{name}", child)
        else:
            leaves.append(f"{prefix}={json.dumps(node)}")

    try:
        walk(key, value)
    except (TypeError, ValueError):  # a leaf JSON cannot write (a date), a key 1: left whole
        return [override]
    return leaves


def unknown_option(name: str, ctx: click.Context) -> click.NoSuchOption:
    """The error click itself gives for an option the command does not have, with its
    did-you-mean; for a dotted name without a value (``--train.steps 100``), how to write
    an override instead."""
    if name.startswith("--") and "." in name and KEY.fullmatch(name[2:]):
        return click.NoSuchOption(
            name,
            message=f"No such option {name!r}. A recipe override takes its value after '=': "
            f"{name}=VALUE.",
            ctx=ctx,
        )
    options = [
        opt
        for param in ctx.command.get_params(ctx)
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    ]
    return click.NoSuchOption(name, possibilities=options, ctx=ctx)
