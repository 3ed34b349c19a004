"""W&B sweeps over a recipe: ``ganlab sweep``.

``ganlab sweep RECIPE --param KEY=V1,V2 ... [--seeds 0,1,2]`` writes a W&B sweep file whose
``command`` runs ``ganlab run`` with each point's values; ``wandb sweep FILE`` creates the sweep
and ``wandb agent SWEEP_ID`` runs its points. With ``--local`` the grid runs here instead, one
ordinary run folder per point, without W&B. The whole loop is in docs/sweeps.md.

How a W&B agent runs a point (wandb's ``wandb/wandb_agent.py``, ``Agent._command_run``, and
``wandb/sdk/launch/sweeps/utils.py``, ``create_sweep_command_args``; wandb 0.31): it takes the
sweep file's ``command`` list and replaces each item that is exactly one macro by a list of
arguments: ``${env}`` by ``/usr/bin/env`` (nothing on Windows), ``${interpreter}`` by
``python``, ``${program}`` by the file's ``program``, ``${args_no_hyphens}`` by one
``KEY=VALUE`` per parameter, where VALUE is Python's ``str()`` of the value (``0.0002``,
``True``, ``['a', 'b']``). It runs the result without a shell. The file written here runs
``python -m ganlab run RECIPE ... ${args_no_hyphens}``: the bare ``KEY=VALUE`` overrides that
``ganlab run`` takes after the recipe, the recipe standing as the sweep's ``program``.

This module is the W&B plugin's whole command line: ``ganlab sweep``, ``ganlab wandb link``
(`ganlab_plugins.wandb.registry`), and ``ganlab run``'s W&B options
(`ganlab_plugins.wandb.run_options`). It imports neither torch nor wandb, so
that ``ganlab --help`` can load it alone; W&B itself is needed only to write a sweep file
(the ``wandb`` extra), not for ``--local``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

import ganlab
from ganlab_plugins.wandb.registry import wandb_group
from ganlab_plugins.wandb.run_options import EVAL_OPTIONS, add_run_options
from ganlab_plugins.wandb.session import INSTALL, installed
from ganlab_plugins.wandb.sweep_file import (
    Method,
    agent_command,
    sweep_config,
    sweep_metric,
    wandb_logger,
    write_sweep_file,
)

# A point of a local sweep records its sweep; `ganlab runs` shows it: hooks of this module.
from ganlab_plugins.wandb.sweep_local import ganlab_run_columns as ganlab_run_columns
from ganlab_plugins.wandb.sweep_local import ganlab_run_start as ganlab_run_start
from ganlab_plugins.wandb.sweep_local import had_runs, report_local, run_local, sweep_name
from ganlab_plugins.wandb.sweep_points import (
    check_agent_round_trip,
    collect_params,
    grid,
    resolve_points,
)


def parse_jobs(jobs: int, local: bool) -> int:
    if jobs > 1 and not local:
        raise click.UsageError("--jobs runs points here at once: it goes with --local.")
    return jobs


# --- the command -----------------------------------------------------------------------------


@click.command("sweep")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "--param",
    "param_texts",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="A recipe key and its values, read as YAML like --set values (1e-4 a float, true "
    "a bool; [..] for a list value). Repeatable: the sweep covers every combination.",
)
@click.option(
    "--seeds",
    metavar="S1,S2,...",
    help="Seeds to run each combination with (the parameter `seed`), e.g. 0,1,2.",
)
@ganlab.set_option
@click.option(
    "--method",
    type=click.Choice(["grid", "random", "bayes"]),
    default="grid",
    show_default=True,
    help="How W&B picks the points: every combination, at random, or by Bayesian "
    "optimisation of --metric.",
)
@click.option(
    "--metric",
    metavar="eval/KEY",
    help="The result the sweep optimises, e.g. eval/swd; its goal is its metric's "
    "direction (lower is better for the built-in metrics). Default: the first metric's.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="Folder that receives the run folders, as `ganlab run --out`.",
)
@click.option(
    "--file",
    "sweep_file",
    type=click.Path(dir_okay=False),
    default="sweep.yaml",
    show_default=True,
    help="The sweep file to write (a file written by `ganlab sweep` before is replaced; "
    "any other is left alone).",
)
@click.option(
    "--wandb",
    "wandb_mode",
    type=click.Choice(["online", "offline", "disabled"]),
    help="W&B mode of the runs (ganlab run --wandb). In the sweep file: online unless "
    "given, since a sweep sees only what its runs send. With --local: the recipe's own "
    "unless given.",
)
@click.option(
    "--name",
    "given_name",
    metavar="NAME",
    help="The sweep's name: in the sweep file (default: the recipe's name); with --local, "
    "every point's W&B group and tag and `sweep` in its run.json, shown by `ganlab runs` "
    "(default: <recipe>-<date>-<time>).",
)
@click.option(
    "--local",
    is_flag=True,
    help="Run the grid here instead, one ganlab run per point, each a normal run folder "
    "under --out; no sweep file, no W&B sweep.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --local: how many points run at once (separate processes).",
)
@ganlab.plugin_option
@ganlab.user_command
def sweep(
    recipe: str,
    param_texts: tuple[str, ...],
    seeds: str | None,
    overrides: tuple[str, ...],
    method: Method,
    metric: str | None,
    out: str,
    sweep_file: str,
    wandb_mode: str | None,
    given_name: str | None,
    local: bool,
    jobs: int,
    plugin_specs: tuple[str, ...],
) -> None:
    """A W&B sweep over RECIPE: write a sweep file for `wandb sweep` and `wandb agent`,
    or run the grid here with --local.

    Every point is checked against the recipe before anything is written or run, exactly
    as `ganlab run` will read it. docs/sweeps.md shows the whole loop.

    \b
    Examples:
      ganlab sweep recipes/quickstart.yaml --param loss.name=bce,hinge \\
          --param optimizers.generator.lr=1e-4,2e-4 --seeds 0,1,2
      wandb sweep sweep.yaml        # then the `wandb agent ...` command it prints
      ganlab sweep recipes/quickstart.yaml --param loss.name=bce,hinge --seeds 0,1 \\
          --local --jobs 2 --out runs/loss-sweep
    """
    jobs = parse_jobs(jobs, local)
    if not local and not installed():
        raise ganlab.GanlabError(
            "ganlab sweep writes a sweep for W&B's `wandb sweep` and `wandb agent`, and W&B "
            f"is not installed: {INSTALL}. Or run the grid here, without W&B, with --local."
        )
    if local and method != "grid":
        raise click.UsageError(
            f"--method {method}: --local runs the whole grid; random and bayes search need "
            "W&B's sweep server (leave out --local)."
        )
    if local and metric is not None:
        raise click.UsageError(
            "--metric is what W&B's sweep server optimises; --local runs every point, and "
            "`ganlab compare` then shows every metric. Leave out --metric or --local."
        )
    given = click.get_current_context().get_parameter_source("sweep_file")
    if local and given is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--file names the sweep file, and --local writes none.")
    params = collect_params(param_texts, seeds)
    check_agent_round_trip(params)
    points = grid(params)
    resolved = resolve_points(recipe, overrides, points, plugin_specs)
    name = resolved[0].recipe.name

    if local:
        base = [sys.executable, "-m", "ganlab", "run", recipe, "--out", out]
        for spec in plugin_specs:
            base += ["-p", spec]
        for text in overrides:
            base += ["--set", text]
        if wandb_mode is not None:
            base += ["--wandb", wandb_mode]
        mixed = had_runs(Path(out))
        unit = sweep_name(given_name, name)
        click.echo(f"Sweep {unit} of {recipe}: {len(points)} points, {jobs} at a time.")
        outcomes, stopped_by = run_local(points, base, jobs, unit)
        report_local(outcomes, len(points), stopped_by, out, mixed)
        return

    chosen = sweep_metric(resolved, metric, required=method == "bayes")
    logger = wandb_logger(resolved, recipe)
    command = agent_command(out, overrides, plugin_specs, wandb_mode or "online")
    config = sweep_config(
        recipe=recipe,
        name=given_name or name,
        params=params,
        method=method,
        metric=chosen,
        command=command,
        logger=logger,
    )
    path = Path(sweep_file)
    write_sweep_file(path, config, recipe)
    size = (
        f"{len(points)} points"
        if method == "grid"
        else f"points drawn from {len(points)} combinations until the agents stop"
    )
    click.echo(f"Wrote {path}: a {method} sweep of {recipe} ({size}).")
    click.echo(f"Create the sweep with `wandb sweep {path}`, then run the `wandb agent ...`")
    click.echo("command it prints, from this folder and in ganlab's Python environment.")
    click.echo(f"Each point is a run folder under {out}/{name}/; compare them there with:")
    click.echo(f"  ganlab compare {out}/{name} --over-seeds")


@ganlab.hookimpl
def ganlab_register_commands(cli: click.Group) -> None:
    """``ganlab sweep``, ``ganlab wandb link`` (the registry), ``ganlab run --wandb MODE
    --name --notes --tags --group``, and ``ganlab eval --wandb MODE``."""
    cli.add_command(sweep)
    cli.add_command(wandb_group)
    add_run_options(cli)
    add_run_options(cli, "eval", EVAL_OPTIONS)
