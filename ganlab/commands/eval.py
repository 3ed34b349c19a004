"""`ganlab eval`: score a finished run, or any of its checkpoints, with quality metrics.

The run is rebuilt from the recipe stored in the checkpoint (its data set, its models, its
plugins) and put back in the checkpoint's state, so a metric sees exactly what it would have
seen at that step of training. By default the recipe's own metrics are computed; ``--metric``
names others, and ``--set`` changes their params (``--set metrics.0.params.images=10000``).
The scores are printed (``--json`` for a script) and handed to plugins
(`ganlab_checkpoint_evaluated`: the wandb logger adds them to the run's W&B run); no file
ganlab wrote in the run is changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ganlab.commands.common import plugin_option, set_option, strict_json, user_command
from ganlab.errors import GanlabError
from ganlab.files.folders import read_run_info
from ganlab.plugin_manager.loading import load_plugins


def evaluate(
    path: Path,
    metric_names: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
    plugin_specs: tuple[str, ...] = (),
    device_name: str = "auto",
) -> tuple[Path, int, dict[str, float], str]:
    """Score a checkpoint (or a run folder's final one): (checkpoint, its step, results, the
    weights the metrics used: the generator's, or their moving average with ``train.ema``)."""
    # Imported here, not at the top: W&B's plugin adds --wandb to `eval` while `ganlab
    # --help` lists commands, which looks the command up and must not load torch.
    from ganlab.engine.components import build_listed
    from ganlab.engine.device import pick_device
    from ganlab.engine.loop import score
    from ganlab.engine.restore import open_checkpoint, recipe_in, restored_run
    from ganlab.files.checkpoint import folder_of

    checkpoint, state = open_checkpoint(path)
    resolved = recipe_in(checkpoint, state, overrides, plugin_specs, metric_names)
    if not resolved.recipe.metrics:
        raise GanlabError(
            f"The recipe of {checkpoint} has no metrics. Name some: ganlab eval {path} "
            "--metric swd (`ganlab plugins` lists every metric)."
        )
    run = restored_run(checkpoint, state, resolved, pick_device(device_name))
    results = score(run, build_listed(resolved, "metrics"))
    folder = folder_of(checkpoint)
    try:  # a checkpoint outside a run folder, or a run.json unreadable: the scores still go
        info = read_run_info(folder / "run.json")
    except GanlabError:
        info = {}
    hook = load_plugins(resolved.recipe.plugins).pm.hook
    hook.ganlab_checkpoint_evaluated(
        folder=folder, info=info, step=run.step, path=checkpoint, results=results
    )
    return checkpoint, run.step, results, WEIGHTS[run.generator_ema is not None]


#: What `evaluate` says the metrics scored, by whether the run keeps a moving average.
WEIGHTS = {True: "the moving average of the generator", False: "the generator"}


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
    checkpoint, step, results, weights = evaluate(
        Path(checkpoint_or_run), metric_names, overrides, plugin_specs, device
    )
    if as_json:
        report: dict[str, Any] = {"checkpoint": str(checkpoint), "step": step}
        click.echo(strict_json({**report, "weights": weights, **results}))
        return
    click.echo(f"{checkpoint} (step {step}, {weights}):")
    width = max(len(k) for k in results)
    for key, value in results.items():
        click.echo(f"  {key:<{width}}  {value:.4g}")
