"""`ganlab run`: train a recipe into a run folder, or continue a stopped run."""

from __future__ import annotations

from pathlib import Path

import click

from ganlab.commands.common import plugin_option, set_option, user_command
from ganlab.files.folders import newest_unfinished, resumable_folder
from ganlab.recipe.overrides import recipe_and_overrides


# Options click does not know reach `arguments` (ignore_unknown_options), where
# `recipe_and_overrides` takes --KEY=VALUE as an override, as a W&B sweep agent writes it,
# and refuses every other unknown option as click would.
@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("arguments", metavar="[RECIPE] [KEY=VALUE]...", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--resume",
    metavar="RUN_DIR|auto",
    help="Continue a stopped run in place from its newest checkpoint; `auto` picks the "
    "newest unfinished run of RECIPE under --out that no process trains. Without RECIPE, "
    "the run's own recipe.",
)
@click.option(
    "--accept-changed-data",
    is_flag=True,
    help="With --resume: continue even though the run's data changed since it was recorded "
    "(images added, removed or changed); run.json records what changed.",
)
@set_option
@click.option("--seed", type=click.IntRange(min=0), help="Override the recipe's seed.")
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto (overrides the recipe).")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="Folder that receives run folders (<out>/<recipe>/<time>-s<seed>/).",
)
@plugin_option
@user_command
def run(
    arguments: tuple[str, ...],
    resume: str | None,
    accept_changed_data: bool,
    overrides: tuple[str, ...],
    seed: int | None,
    device: str | None,
    out: str,
    plugin_specs: tuple[str, ...],
) -> None:
    """Train the recipe RECIPE (a .yaml file) and write a run folder.

    KEY=VALUE after RECIPE overrides a recipe value as --set KEY=VALUE does, and so does
    --KEY=VALUE (the two ways a W&B sweep agent passes its values; docs/sweeps.md). They
    apply after every --set, in the order given; --seed and --device apply last.

    Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and says how to
    continue with --resume; before the first step it stops at once. One process at a time
    trains a run folder (its run.lock): a second one is refused, naming the first.
    """
    # Imported here, not at the top: a plugin that adds options to `run` (W&B's --wandb)
    # looks the command up while `ganlab --help` lists commands, which must not load torch.
    from ganlab.api import prepare_recipe
    from ganlab.engine.lifecycle import train_recipe
    from ganlab.engine.signals import interrupted_at_once

    recipe, assigned = recipe_and_overrides(arguments, click.get_current_context())
    overrides = (*overrides, *assigned)
    extra = [f"seed={seed}"] * (seed is not None) + [f"device={device}"] * (device is not None)
    run_dir = None
    if resume is not None and resume != "auto":
        run_dir = resumable_folder(Path(resume))
        recipe = recipe or str(run_dir / "recipe.yaml")
    if recipe is None:
        raise click.UsageError("give a RECIPE, or --resume RUN_DIR to continue a run.")
    # A signal while the plugins load stops at once too (train_recipe says more once it runs).
    with interrupted_at_once(lambda: "stopped before the run started; nothing was written"):
        resolved, plugins = prepare_recipe(
            recipe, (*overrides, *extra), plugin_specs, resume=run_dir
        )
        if resume == "auto":
            run_dir = newest_unfinished(Path(out) / resolved.recipe.name)
        train_recipe(
            resolved,
            plugins,
            Path(out),
            recipe_path=Path(recipe),
            resume=run_dir,
            on_start=lambda started: click.echo(f"Run folder: {started.dir}"),
            accept_changed_data=accept_changed_data,
        )
