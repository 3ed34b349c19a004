"""`ganlab bench`: how fast ganlab trains a recipe, against plain PyTorch loops.

Three measurements in one process, one after the other, with the recipe's models and batch:

- **ganlab**: the real runner (`ganlab.runner.train`) with the recipe's data path and
  precision, callbacks and loggers removed, timed from the end of the warm-up steps;
- **minimal loop**: the same step written by hand, on batches already in memory, in the same
  precision: what ganlab's bookkeeping costs is the difference;
- **reference loop**: the DCGAN tutorial as ../shared/REFERENCE.md states it (a shuffled
  DataLoader with 2 workers decoding the image files every epoch, Sigmoid + BCELoss, fp32,
  ``.item()`` on the statistics every step), for data sets read from files.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch
from torch import nn
from torch.utils.data import DataLoader

import ganlab
from ganlab.cache import CacheableImages, prepare_cache
from ganlab.cliutil import plugin_option, prepare_recipe, set_option, user_command
from ganlab.data import TensorImages, to_unit_range
from ganlab.recipe import Resolved
from ganlab.runner import (
    AUTOCAST_DTYPES,
    build_component,
    build_models,
    make_optimizer,
    memory_format,
    pick_device,
    seed_everything,
    train,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Timer:
    """Times the runner from the end of step ``start`` to the end of step ``stop``."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop
        self.t0 = self.t1 = 0.0
        self.images = 0

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.Run, stats: ganlab.StepStats) -> None:
        if stats.step == self.start:
            _sync(run.device)
            self.t0 = time.perf_counter()
        elif self.start < stats.step <= self.stop:
            self.images += run.recipe.train.batch_size
            if stats.step == self.stop:
                _sync(run.device)
                self.t1 = time.perf_counter()


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
        train(resolved, loaded, Path(out))
    return timer.images / (timer.t1 - timer.t0)


def _timed_loop(
    step: Callable[[int], None], warmup: int, steps: int, batch: int, device: torch.device
) -> float:
    for i in range(warmup):
        step(i)
    _sync(device)
    started = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    _sync(device)
    return steps * batch / (time.perf_counter() - started)


def time_minimal(
    resolved: Resolved, images: torch.Tensor, device: torch.device, warmup: int, steps: int
) -> float:
    """Images per second of a hand-written step: same models, loss, batch and precision."""
    recipe = resolved.recipe
    seed_everything(recipe.seed)
    generator, discriminator = build_models(resolved, tuple(images.shape[1:]), device)
    component, params = resolved.get("loss")
    loss = component.build(params)
    opt_g = make_optimizer(recipe.optimizers.generator, generator.parameters())
    opt_d = make_optimizer(recipe.optimizers.discriminator, discriminator.parameters())
    dtype = AUTOCAST_DTYPES.get(recipe.train.precision)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    scalers = (
        {net: torch.amp.GradScaler(device.type) for net in ("g", "d")}
        if recipe.train.precision == "fp16"
        else {}
    )
    batch = recipe.train.batch_size
    resident = images.to(device).contiguous(memory_format=memory_format(recipe.train))
    batches = len(resident) // batch

    def update(value: torch.Tensor, opt: torch.optim.Optimizer, net: str) -> None:
        opt.zero_grad(set_to_none=True)
        if net in scalers:
            scalers[net].scale(value).backward()
            scalers[net].step(opt)
            scalers[net].update()
        else:
            value.backward()
            opt.step()

    def step(i: int) -> None:
        real = to_unit_range(resident[(i % batches) * batch : (i % batches + 1) * batch])
        with autocast:
            real_scores = discriminator(real).reshape(-1).float()
            fake = generator(torch.randn((batch, *generator.latent_shape), device=device))
            fake_scores = discriminator(fake.detach()).reshape(-1).float()
            loss_d = loss.discriminator_loss(real_scores, fake_scores)
        update(loss_d, opt_d, "d")
        with autocast:
            loss_g = loss.generator_loss(discriminator(fake).reshape(-1).float())
        update(loss_g, opt_g, "g")

    return _timed_loop(step, warmup, steps, batch, device)


def time_reference(
    resolved: Resolved, dataset: Any, device: torch.device, warmup: int, steps: int
) -> float:
    """Images per second of the tutorial's loop: 2 loader workers, fp32, Sigmoid + BCELoss."""
    recipe = resolved.recipe
    seed_everything(recipe.seed)
    models = build_models(resolved, tuple(dataset.image_shape), device)
    # The tutorial's plain layout, whatever the recipe's train.channels_last says.
    generator, discriminator = (m.to(memory_format=torch.contiguous_format) for m in models)
    criterion = nn.BCELoss()
    opt_g = make_optimizer(recipe.optimizers.generator, generator.parameters())
    opt_d = make_optimizer(recipe.optimizers.discriminator, discriminator.parameters())
    batch = recipe.train.batch_size
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=2,
        persistent_workers=True,
        pin_memory=device.type == "cuda",
    )
    batches = iter(())

    def step(i: int) -> None:
        nonlocal batches
        real = next(batches, None)
        if real is None:  # a new epoch: the loader decodes every image again
            batches = iter(loader)
            real = next(batches)
        real = real.to(device)
        b = real.size(0)
        discriminator.zero_grad()
        output = torch.sigmoid(discriminator(real).view(-1))
        err_real = criterion(output, torch.full((b,), 1.0, device=device))
        err_real.backward()
        output.mean().item()
        fake = generator(torch.randn((b, *generator.latent_shape), device=device))
        output = torch.sigmoid(discriminator(fake.detach()).view(-1))
        err_fake = criterion(output, torch.full((b,), 0.0, device=device))
        err_fake.backward()
        output.mean().item()
        opt_d.step()
        generator.zero_grad()
        output = torch.sigmoid(discriminator(fake).view(-1))
        err_g = criterion(output, torch.full((b,), 1.0, device=device))
        err_g.backward()
        opt_g.step()
        err_g.item(), (err_real + err_fake).item(), output.mean().item()

    return _timed_loop(step, warmup, steps, batch, device)


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
        count = min(len(dataset), recipe.train.batch_size * 8)
        images = torch.stack([dataset.load_uint8(i) for i in range(count)])
    elif isinstance(dataset, TensorImages):
        images = dataset.images[: recipe.train.batch_size * 8]
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
