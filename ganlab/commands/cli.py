"""The `ganlab` command line."""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path

import click
from pydantic import BaseModel

from ganlab.commands.bench.bench import bench
from ganlab.commands.common import (
    GanlabGroup,
    plugin_option,
    prepare_recipe,
    set_option,
    user_command,
)
from ganlab.commands.compare import compare
from ganlab.commands.eval import eval_command
from ganlab.commands.runs import runs
from ganlab.commands.sample import sample
from ganlab.data.cache import CacheableImages, prepare_cache
from ganlab.engine.components import build_component
from ganlab.engine.lifecycle import train_recipe
from ganlab.engine.signals import interrupted_at_once
from ganlab.export import export
from ganlab.files.folders import newest_unfinished, resumable_folder
from ganlab.plugin_manager.blame import blamed_on
from ganlab.plugin_manager.loading import load_plugins
from ganlab.plugin_manager.registry import KINDS
from ganlab.recipe.diff import diff_lines
from ganlab.recipe.overrides import recipe_and_overrides


@click.group("ganlab", cls=GanlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ganlab")
def cli() -> None:
    """ganlab: GAN experiments from seeded YAML recipes, extended by plugins.

    Start with `ganlab run recipes/quickstart.yaml`.
    """


# Options click does not know reach `arguments` (ignore_unknown_options), where
# `recipe_and_overrides` takes --KEY=VALUE as an override, as a W&B sweep agent writes it,
# and refuses every other unknown option as click would.
@cli.command(context_settings={"ignore_unknown_options": True})
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


cli.add_command(bench)
cli.add_command(compare)
cli.add_command(eval_command)
cli.add_command(export)
cli.add_command(runs)
cli.add_command(sample)


@cli.command()
@plugin_option
@user_command
def plugins(plugin_specs: tuple[str, ...]) -> None:
    """List every component, the plugin that gave it, and its params."""
    registry = load_plugins(plugin_specs).registry
    for kind in KINDS:
        click.secho(kind, bold=True)
        components = registry.components(kind)
        if not components:
            click.echo("  (none)")
        for component in components:
            click.echo(f"  {component.name:<16} {component.description}  [{component.plugin}]")
            for line in _describe_params(component.params):
                click.echo(f"      {line}")


def _describe_params(model: type[BaseModel]) -> list[str]:
    lines = []
    for name, field in model.model_fields.items():
        shown = _type_name(field.annotation)
        default = (
            "required"
            if field.is_required()
            else f"= {field.get_default(call_default_factory=True)!r}"
        )
        doc = f"  # {field.description}" if field.description else ""
        lines.append(f"{name}: {shown} {default}{doc}")
    return lines


def _type_name(annotation: object) -> str:
    """``int``, ``str | None``, ``Literal[1, 3]``: a param's type as a reader writes it."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return "None" if annotation is type(None) else annotation.__name__
    return str(annotation).replace("typing.", "")


@cli.group()
def data() -> None:
    """Prepare data sets ahead of training."""


@data.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Processes that decode images in parallel.",
)
@set_option
@plugin_option
@user_command
def prepare(
    recipe_path: str, workers: int, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]
) -> None:
    """Decode RECIPE's data set once into ganlab's uint8 cache, so that runs start at once
    and no epoch decodes an image again."""
    resolved, _ = prepare_recipe(recipe_path, overrides, plugin_specs)
    component, params = resolved.get("data")
    dataset = build_component("data", component, params)
    if not isinstance(dataset, CacheableImages):
        click.echo(f"data set {component.name!r} needs no cache (it is generated in memory).")
        return
    with blamed_on(component, "data", "while decoding its images"):
        path, rate, built = prepare_cache(dataset, workers)
    if built:
        click.echo(f"Prepared {len(dataset)} images ({rate:.0f} img/s) into {path}")
    else:
        click.echo(f"Already prepared: {len(dataset)} images in {path}")


@cli.group()
def recipe() -> None:
    """Inspect recipes without running them."""


@recipe.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@set_option
@plugin_option
@user_command
def show(recipe_path: str, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]) -> None:
    """Print RECIPE resolved: its `base:` merged in, every default filled in, as the run
    folder will hold it."""
    resolved, _ = prepare_recipe(recipe_path, overrides, plugin_specs)
    click.echo(resolved.to_yaml(), nl=False)


@recipe.command("diff")
@click.argument("first", metavar="RECIPE_A", type=click.Path(dir_okay=False))
@click.argument("second", metavar="RECIPE_B", type=click.Path(dir_okay=False))
@set_option
@plugin_option
@user_command
def diff_command(
    first: str, second: str, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]
) -> None:
    """Print what differs between RECIPE_A and RECIPE_B, both resolved (bases merged, every
    default filled in, --set applied to both): one line per key, `key: A -> B`.

    Exits 0 whether or not they differ; nothing printed means the two runs would be the same.
    """
    a, b = (
        prepare_recipe(path, overrides, plugin_specs)[0].recipe.model_dump(mode="json")
        for path in (first, second)
    )
    for line in diff_lines(a, b):
        click.echo(line)


@recipe.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@set_option
@plugin_option
@user_command
def validate(recipe_path: str, overrides: tuple[str, ...], plugin_specs: tuple[str, ...]) -> None:
    """Check RECIPE (structure, component names, params) and say what it uses."""
    resolved, _ = prepare_recipe(recipe_path, overrides, plugin_specs)
    r = resolved.recipe
    click.echo(
        f"{recipe_path}: valid. data={r.data.name} generator={r.generator.name} "
        f"discriminator={r.discriminator.name} loss={r.loss.name} seed={r.seed}"
    )


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
