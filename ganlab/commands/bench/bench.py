"""`ganlab bench`: how fast ganlab trains a recipe, against plain PyTorch loops.

Three measurements in one process, one after the other, with the recipe's models and batch:

- **ganlab**: the real runner (`ganlab.engine.lifecycle.train_recipe`) with the recipe's data path
  and precision, callbacks and loggers removed, timed from the end of the warm-up steps;
- **minimal loop**: ganlab's own step (`ganlab.commands.bench.runner_step`: the same loss,
  penalties, augmentations, class labels) with nothing around it, on batches already in
  memory, in the same precision, eagerly: what ganlab's loop around the step costs is the
  difference;
- **reference loop**: `ganlab.commands.bench.reference.TutorialStep`, the DCGAN tutorial's step as
  ../shared/REFERENCE.md states it, fed by a shuffled DataLoader with 2 workers decoding the
  image files every epoch (fp32, ``.item()`` on the statistics every step), for data sets
  read from files; not for a recipe whose G or D takes class labels (the tutorial has none).

All three count images the same way: every real image a step trains D on (``d_steps`` batches
of ``batch_size``), and all three exclude their warm-up steps. ``--batch-sizes`` repeats the
three for each batch size, ``--image-size`` sets the data set's image size (and so the
models' depth) for all of them. Each loop's TFLOP/s are its images per second times the
FLOPs one real image costs (`ganlab.commands.bench.flops`); on a GPU in
`ganlab.commands.bench.flops.PEAK_BF16_TFLOPS`
they are also given as a fraction of its bf16 peak.
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
from ganlab.api import prepare_recipe
from ganlab.commands.bench.flops import peak_bf16_tflops, step_flops_per_image
from ganlab.commands.bench.reference import TutorialStep, images_per_second, synchronize
from ganlab.commands.bench.report import add_arithmetic, report
from ganlab.commands.bench.runner_step import runner_step
from ganlab.commands.common import plugin_option, set_option, user_command
from ganlab.data.cache import CacheableImages, prepare_cache
from ganlab.data.types import Labels, TensorImages, labels_of
from ganlab.engine.components import build_component
from ganlab.engine.device import memory_format, pick_device, set_determinism
from ganlab.engine.lifecycle import train_recipe
from ganlab.engine.networks import build_models, conditional_models, make_optimizer
from ganlab.engine.run import Run
from ganlab.engine.seeding import seed_everything
from ganlab.files.images import to_unit_range
from ganlab.recipe.models import Resolved


class _Timer:
    """Times the runner from the end of step ``start`` to the end of step ``stop``, counting
    the run's own `images_seen`; notes whether its step ran through CUDA graphs."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop
        self.t0 = self.t1 = 0.0
        self.images0 = self.images1 = 0
        self.cuda_graphs = "off"

    def started(self, run: Run) -> None:
        """Given the engine's run before its first step (``train_recipe``'s ``on_start``)."""
        if run.cuda_graphs:
            self.cuda_graphs = "on"
        elif run.eager_reason is not None:
            self.cuda_graphs = f"off ({run.eager_reason})"

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.RunView, stats: ganlab.StepStats) -> None:
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
) -> tuple[float, str]:
    """Images per second of ganlab's own loop over ``steps`` steps after ``warmup``, and
    whether its step ran through CUDA graphs (``on``, ``off`` or ``off (why)``)."""
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
        train_recipe(resolved, loaded, Path(out), on_start=timer.started)
    return timer.images_per_second(), timer.cuda_graphs


def time_minimal(
    resolved: Resolved,
    images: torch.Tensor,
    labels: Labels | None,
    device: torch.device,
    warmup: int,
    steps: int,
) -> float:
    """Images per second of ganlab's own step (`ganlab.engine.step.Step`, built as the runner
    builds it) without the loop around it, on ``images`` already on the device: the same
    models, loss, penalties, augmentations, batch and precision as ganlab's loop, eagerly.

    ``labels`` are the data set's (None without classes): the real batches come with their
    own classes, as the runner's batches do."""
    train = resolved.recipe.train
    seed_everything(resolved.recipe.seed)
    with runner_step(resolved, device, warmup + steps) as step:
        per_step = train.batch_size * train.d_steps
        resident = images.to(device).contiguous(memory_format=memory_format(train))
        classes = labels.values[: len(images)].to(device) if labels is not None else None
        count = max(1, len(resident) // per_step)

        def batch(i: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
            rows = slice((i % count) * per_step, (i % count + 1) * per_step)
            return to_unit_range(resident[rows]), None if classes is None else classes[rows], i

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

    def batch(i: int) -> tuple[torch.Tensor]:
        nonlocal batches
        real = next(batches, None)
        if real is None:  # a new epoch: the loader decodes every image again
            batches = iter(loader)
            real = next(batches)
        return (real.to(device),)

    return images_per_second(step, batch, warmup, steps, device)


def parse_batch_sizes(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, ...] | None:
    """``--batch-sizes 128,256,512``: positive whole numbers, each once, in the given order."""
    if value is None:
        return None
    sizes: list[int] = []
    for part in value.split(","):
        text = part.strip()
        if not text.isdigit() or int(text) == 0:
            raise click.BadParameter(
                f"{text!r} is not a batch size; give positive whole numbers separated by "
                "commas, e.g. 128,256,512,1024."
            )
        if int(text) in sizes:
            raise click.BadParameter(f"{text} is given twice; give each batch size once.")
        sizes.append(int(text))
    return tuple(sizes)


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
    help="Untimed steps before (first-call, allocator and autotuning costs), in every loop.",
)
@click.option("--device", help="cpu, cuda, ... (overrides the recipe).")
@click.option(
    "--batch-sizes",
    callback=parse_batch_sizes,
    metavar="B1,B2,...",
    help="Time every loop at each of these batch sizes (default: the recipe's), one row each.",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    metavar="N",
    help="The data set's image size (data.params.image_size) for every loop; the models "
    "follow it (dcgan: a power of two from 8).",
)
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
    batch_sizes: tuple[int, ...] | None,
    image_size: int | None,
    reference: bool,
    as_json: bool,
    overrides: tuple[str, ...],
    plugin_specs: tuple[str, ...],
) -> None:
    """Measure images per second of ganlab's loop on RECIPE beside its training step alone
    (a minimal loop, in the same precision) and the DCGAN tutorial's loop (fp32, 2 loader
    workers), with the TFLOP/s each reaches."""
    sets = [*overrides, *([f"device={device}"] if device else [])]
    if image_size is not None:
        sets.append(f"data.params.image_size={image_size}")
    resolved, _ = prepare_recipe(recipe_path, tuple(sets), plugin_specs)
    recipe = resolved.recipe
    where = pick_device(recipe.device)
    set_determinism(recipe.train.deterministic, where)  # for every loop, not only ganlab's
    sizes = batch_sizes or (recipe.train.batch_size,)
    dataset = build_component("data", *resolved.get("data"))
    labels = labels_of(dataset)
    takes_labels = conditional_models(resolved, labels)  # refuses classes the data lacks
    results: dict[str, Any] = {
        "recipe": recipe.name,
        "device": str(where),
        "device_name": torch.cuda.get_device_name(where) if where.type == "cuda" else where.type,
        "precision": recipe.train.precision,
        "image_size": dataset.image_shape[-1],
        "steps": steps,
        "warmup": warmup,
        "deterministic": recipe.train.deterministic,
        "flops_per_image": step_flops_per_image(resolved),
        "peak_bf16_tflops": None,
    }
    if reference and any(takes_labels):
        results["reference_skipped"] = tutorial_skipped(resolved, takes_labels)
    if where.type == "cuda":
        results["peak_bf16_tflops"] = peak_bf16_tflops(results["device_name"])
    images = bench_images(resolved, dataset, max(sizes) * recipe.train.d_steps * 8, results)
    results["runs"] = []
    for size in sizes:
        row_sets = [*sets, f"train.batch_size={size}"]
        row_resolved, _ = prepare_recipe(recipe_path, tuple(row_sets), plugin_specs)
        row: dict[str, Any] = {"batch_size": size}
        row["ganlab_img_s"], results["cuda_graphs"] = time_ganlab(
            recipe_path, row_sets, plugin_specs, warmup, steps
        )
        row["minimal_img_s"] = time_minimal(row_resolved, images, labels, where, warmup, steps)
        row["overhead"] = 1 - row["ganlab_img_s"] / row["minimal_img_s"]
        if reference and isinstance(dataset, CacheableImages) and not any(takes_labels):
            row["reference_img_s"] = time_reference(row_resolved, dataset, where, warmup, steps)
            row["speedup_vs_reference"] = row["ganlab_img_s"] / row["reference_img_s"]
        add_arithmetic(row, results["flops_per_image"], results["peak_bf16_tflops"])
        results["runs"].append(row)
    if as_json:
        click.echo(json.dumps(results, indent=1))
        return
    click.echo(report(results))


def tutorial_skipped(resolved: Resolved, takes_labels: tuple[bool, bool]) -> str:
    """Why the tutorial's loop is not timed for a recipe whose G or D takes class labels."""
    takes = [
        f"{place} {resolved.get(place)[0].name!r}"
        for place, conditional in zip(("generator", "discriminator"), takes_labels, strict=True)
        if conditional
    ]
    return (
        f"the DCGAN tutorial's loop is unconditional, and {' and '.join(takes)} "
        f"take{'s' if len(takes) == 1 else ''} class labels"
    )


def bench_images(
    resolved: Resolved, dataset: Any, count: int, results: dict[str, Any]
) -> torch.Tensor:
    """Up to ``count`` of the data set's images as uint8, for the minimal loop; a data set
    read from files is decoded into its cache first, timed (``data_prep_img_s``)."""
    if isinstance(dataset, CacheableImages):
        _, results["data_prep_img_s"], _ = prepare_cache(dataset, workers=2)
        return torch.stack([dataset.load_uint8(i) for i in range(min(len(dataset), count))])
    if isinstance(dataset, TensorImages):
        return dataset.images[:count]
    raise ganlab.GanlabError(
        f"bench: data set {resolved.recipe.data.name!r} is neither file-backed nor in memory; "
        "benchmark it with a recipe whose data set is."
    )
