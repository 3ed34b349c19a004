"""`ganlab eval`: score a finished run, or any of its checkpoints, with quality metrics.

The run is rebuilt from the recipe stored in the checkpoint (its data set, its models, its
plugins) and put back in the checkpoint's state, so a metric sees exactly what it would have
seen at that step of training. By default the recipe's own metrics are computed; ``--metric``
names others, and ``--set`` changes their params (``--set metrics.0.params.images=10000``).
Nothing in the run folder is changed: the scores are printed (``--json`` for a script).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ganlab.checkpoint import load_checkpoint, restore_training_state
from ganlab.cliutil import plugin_option, set_option, strict_json, user_command
from ganlab.errors import GanlabError
from ganlab.plugins import load_plugins
from ganlab.recipe import parse_recipe, resolve
from ganlab.runner import build_listed, build_run, pick_device, score, seed_everything
from ganlab.sample import find_checkpoint, run_folder


def evaluate(
    path: Path,
    metric_names: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
    plugin_specs: tuple[str, ...] = (),
    device_name: str = "auto",
) -> tuple[Path, int, dict[str, float]]:
    """Score a checkpoint (or a run folder's final one): (checkpoint, its step, results)."""
    checkpoint = find_checkpoint(path)
    state = load_checkpoint(checkpoint)
    raw = state.get("recipe")
    if not isinstance(raw, dict):
        raise GanlabError(
            f"{checkpoint}: the checkpoint holds no recipe; evaluate one that `ganlab run` wrote."
        )
    if metric_names:
        raw = {**raw, "metrics": [{"name": name} for name in metric_names]}
    source = f"{checkpoint} (its recipe)"
    recipe = parse_recipe(raw, source, overrides, plugin_specs)
    # Only metrics are built: the callbacks (a `best` ranking by a metric -m left out) are not.
    registry = load_plugins(recipe.plugins).registry
    resolved = resolve(recipe, registry, source=source, check_metric_keys=False)
    if not recipe.metrics:
        raise GanlabError(
            f"The recipe of {checkpoint} has no metrics. Name some: ganlab eval {path} "
            "--metric swd (`ganlab plugins` lists every metric)."
        )
    # From the run's seed, as the run built them: a data set made from random numbers
    # holds the same images.
    seed_everything(recipe.seed)
    run = build_run(resolved, pick_device(device_name))
    run.dir = run_folder(checkpoint)
    restore_training_state(run, state, checkpoint)
    return checkpoint, run.step, score(run, build_listed(resolved, "metrics"))


@click.command("eval")
@click.argument("checkpoint_or_run", metavar="RUN_OR_CHECKPOINT", type=click.Path())
@click.option(
    "-m",
    "--metric",
    "metric_names",
    multiple=True,
    metavar="NAME",
    help="A metric to compute instead of the recipe's (repeatable), e.g. -m swd -m fid.",
)
@set_option
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N, mps, auto.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@plugin_option
@user_command
def eval_command(
    checkpoint_or_run: str,
    metric_names: tuple[str, ...],
    overrides: tuple[str, ...],
    device: str,
    as_json: bool,
    plugin_specs: tuple[str, ...],
) -> None:
    """Score RUN_OR_CHECKPOINT (a run folder, whose checkpoints/final.pt is used, or a .pt
    file such as checkpoints/best.pt) with the recipe's metrics or those of --metric."""
    checkpoint, step, results = evaluate(
        Path(checkpoint_or_run), metric_names, overrides, plugin_specs, device
    )
    if as_json:
        report: dict[str, Any] = {"checkpoint": str(checkpoint), "step": step, **results}
        click.echo(strict_json(report))
        return
    click.echo(f"{checkpoint} (step {step}):")
    width = max(len(k) for k in results)
    for key, value in results.items():
        click.echo(f"  {key:<{width}}  {value:.4g}")
