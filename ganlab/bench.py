"""`ganlab bench`: how fast ganlab trains a recipe, against plain PyTorch loops.

Three measurements in one process, one after the other, with the recipe's models and batch:

- **ganlab**: the real runner (`ganlab.lifecycle.train_recipe`) with the recipe's data path
  and precision, callbacks and loggers removed, timed from the end of the warm-up steps;
- **minimal loop**: `ganlab.reference.MinimalStep`, the same step with nothing around it, on
  batches already in memory, in the same precision: what ganlab's bookkeeping costs is the
  difference;
- **reference loop**: `ganlab.reference.TutorialStep`, the DCGAN tutorial's step as
  ../shared/REFERENCE.md states it, fed by a shuffled DataLoader with 2 workers decoding the
  image files every epoch (fp32, ``.item()`` on the statistics every step), for data sets
  read from files.

All three count images the same way: every real image a step trains D on (``d_steps`` batches
of ``batch_size``).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import torch
from torch.utils.data import DataLoader

import ganlab
from ganlab.assemble import build_component, build_models, make_optimizer
from ganlab.cache import CacheableImages, prepare_cache
from ganlab.cliutil import plugin_option, prepare_recipe, set_option, user_command
from ganlab.data import TensorImages, image_shape_of, to_unit_range
from ganlab.device import memory_format, pick_device
from ganlab.lifecycle import train_recipe
from ganlab.precision import Precision
from ganlab.recipe import Resolved
from ganlab.reference import MinimalStep, TutorialStep, images_per_second, synchronize
from ganlab.seeding import seed_everything


class _Timer:
    """Times the runner from the end of step ``start`` to the end of step ``stop``, counting
    the run's own `images_seen`."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop
        self.t0 = self.t1 = 0.0
        self.images0 = self.images1 = 0

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.Run, stats: ganlab.StepStats) -> None:
        if stats.step in (self.start, self.stop):
            synchronize(run.device)
            if stats.step == self.start:
                self.t0, self.images0 = time.perf_counter(), run.images_seen
            else:
                self.t1, self.images1 = time.perf_counter(), run.images_seen

    def images_per_second(self) -> float:
        return (self.images1 - self.images0) / (self.t1 - self.t0)


def time_ganlab(
    recipe_path: str, overrides: list[str], plugins: tuple[str, ...], warmup: int, steps: int
) -> float:
    """Images per second of ganlab's own loop over ``steps`` steps after ``warmup``."""
    bench_overrides = [
        *overrides,
        "train.epochs=null",
        f"train.steps={warmup + steps}",
        "callbacks=[]",
        "loggers=[]",
        "metrics=[]",
        "train.checkpoint_every=null",
    ]
    resolved, loaded = prepare_recipe(recipe_path, tuple(bench_overrides), plugins)
    timer = _Timer(warmup, warmup + steps)
    loaded.pm.register(timer, name="ganlab-bench-timer")
    with tempfile.TemporaryDirectory() as out:
        train_recipe(resolved, loaded, Path(out))
    return timer.images_per_second()


def time_minimal(
    resolved: Resolved, images: torch.Tensor, device: torch.device, warmup: int, steps: int
) -> float:
    """Images per second of `MinimalStep`: same models, loss, batch and precision."""
    recipe = resolved.recipe
    seed_everything(recipe.seed)
    generator, discriminator = build_models(resolved, image_shape_of(images), device)
    step = MinimalStep(
        generator,
        discriminator,
        build_component("loss", *resolved.get("loss")),
        make_optimizer(recipe.optimizers.generator, generator.parameters()),
        make_optimizer(recipe.optimizers.discriminator, discriminator.parameters()),
        Precision(recipe.train.precision, device),
        recipe.train.batch_size,
    )
    per_step = recipe.train.batch_size * recipe.train.d_steps
    resident = images.to(device).contiguous(memory_format=memory_format(recipe.train))
    count = max(1, len(resident) // per_step)

    def batch(i: int) -> torch.Tensor:
        return to_unit_range(resident[(i % count) * per_step : (i % count + 1) * per_step])

    return images_per_second(step, batch, warmup, steps, device)


def time_reference(
    resolved: Resolved, dataset: Any, device: torch.device, warmup: int, steps: int
) -> float:
    """Images per second of the tutorial's loop: 2 loader workers, fp32, Sigmoid + BCELoss."""
    recipe = resolved.recipe
    seed_everything(recipe.seed)
    generator, discriminator = build_models(resolved, tuple(dataset.image_shape), device)
    # The tutorial's plain layout, whatever the recipe's train.channels_last says.
    generator = generator.to(memory_format=torch.contiguous_format)
    discriminator = discriminator.to(memory_format=torch.contiguous_format)
    step = TutorialStep(
        generator,
        discriminator,
        make_optimizer(recipe.optimizers.generator, generator.parameters()),
        make_optimizer(recipe.optimizers.discriminator, discriminator.parameters()),
    )
    loader = DataLoader(
        dataset,
        batch_size=recipe.train.batch_size,
        shuffle=True,
        num_workers=2,
        persistent_workers=True,
        pin_memory=device.type == "cuda",
    )
    batches: Iterator[torch.Tensor] = iter(())

    def batch(i: int) -> torch.Tensor:
        nonlocal batches
        real = next(batches, None)
        if real is None:  # a new epoch: the loader decodes every image again
            batches = iter(loader)
            real = next(batches)
        return real.to(device)

    return images_per_second(step, batch, warmup, steps, device)


@click.command("bench")
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Timed training steps of each loop.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Untimed steps before (first-call and allocator costs).",
)
@click.option("--device", help="cpu, cuda, ... (overrides the recipe).")
@click.option(
    "--reference/--no-reference",
    default=True,
    show_default=True,
    help="Also time the tutorial's loop (for data sets read from files).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@set_option
@plugin_option
@user_command
def bench(
    recipe_path: str,
    steps: int,
    warmup: int,
    device: str | None,
    reference: bool,
    as_json: bool,
    overrides: tuple[str, ...],
    plugin_specs: tuple[str, ...],
) -> None:
    """Measure images per second of ganlab's loop on RECIPE beside a minimal hand-written
    loop in the same precision and the DCGAN tutorial's loop (fp32, 2 loader workers)."""
    sets = [*overrides, *([f"device={device}"] if device else [])]
    resolved, _ = prepare_recipe(recipe_path, tuple(sets), plugin_specs)
    recipe = resolved.recipe
    where = pick_device(recipe.device)
    dataset = build_component("data", *resolved.get("data"))
    results: dict[str, Any] = {
        "recipe": recipe.name,
        "device": str(where),
        "precision": recipe.train.precision,
        "batch_size": recipe.train.batch_size,
        "steps": steps,
    }
    images: torch.Tensor
    if isinstance(dataset, CacheableImages):
        _, results["data_prep_img_s"], _ = prepare_cache(dataset, workers=2)
        count = min(len(dataset), recipe.train.batch_size * recipe.train.d_steps * 8)
        images = torch.stack([dataset.load_uint8(i) for i in range(count)])
    elif isinstance(dataset, TensorImages):
        images = dataset.images[: recipe.train.batch_size * recipe.train.d_steps * 8]
    else:
        raise ganlab.GanlabError(
            f"bench: data set {recipe.data.name!r} is neither file-backed nor in memory; "
            "benchmark it with a recipe whose data set is."
        )
    results["ganlab_img_s"] = time_ganlab(recipe_path, sets, plugin_specs, warmup, steps)
    results["minimal_img_s"] = time_minimal(resolved, images, where, warmup, steps)
    results["overhead"] = 1 - results["ganlab_img_s"] / results["minimal_img_s"]
    if reference and isinstance(dataset, CacheableImages):
        results["reference_img_s"] = time_reference(resolved, dataset, where, warmup, steps)
        results["speedup_vs_reference"] = results["ganlab_img_s"] / results["reference_img_s"]
    if as_json:
        click.echo(json.dumps(results, indent=1))
        return
    click.echo(_report(results))


def _report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['recipe']} on {r['device']}, batch {r['batch_size']}, {r['steps']} timed steps",
        f"  ganlab ({r['precision']}, full loop)         {r['ganlab_img_s']:9.1f} img/s",
        f"  minimal loop ({r['precision']}, same step)   {r['minimal_img_s']:9.1f} img/s"
        f"   ganlab's overhead: {100 * r['overhead']:+.1f}%",
    ]
    if "reference_img_s" in r:
        lines.append(
            f"  reference (tutorial: fp32, 2 workers)  {r['reference_img_s']:9.1f} img/s"
            f"   ganlab is {r['speedup_vs_reference']:.2f}x the reference"
        )
    if r.get("data_prep_img_s"):
        lines.append(f"  data prep (decode once into the cache) {r['data_prep_img_s']:9.1f} img/s")
    return "\n".join(lines)
