"""Assembling a run: every component of a resolved recipe built, checked and put together.

One place for training, ``ganlab eval`` and ``ganlab bench`` (``ganlab sample`` builds only
the models, with `ganlab.engine.networks.build_models`): `assemble_run` returns a complete
`Run` at step 0, its components built by `ganlab.engine.components` and its networks by
`ganlab.engine.networks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from ganlab.data.batches import Batches
from ganlab.data.cache import CacheableImages, cached
from ganlab.data.types import Labels, labels_of
from ganlab.engine.components import Built, build_component, build_listed, has_state, penalty_list
from ganlab.engine.device import memory_format
from ganlab.engine.distributed import Group
from ganlab.engine.graphs import eager_reason
from ganlab.engine.memory import check_memory
from ganlab.engine.networks import (
    build_models,
    conditional_models,
    generator_average,
    make_optimizer,
)
from ganlab.engine.precision import Precision
from ganlab.engine.run import Hooks, Run
from ganlab.engine.sampling import FIXED_LATENTS, seeded_latents
from ganlab.engine.view import View
from ganlab.errors import GanlabError
from ganlab.plugin_manager.blame import blamed_on
from ganlab.recipe.models import Resolved
from ganlab.recipe.schedules import check_length, make_scheduler
from ganlab.recipe.train import Optimizers, TrainSpec


def assemble_run(
    resolved: Resolved,
    device: torch.device,
    folder: Path,
    hook: Hooks,
    group: Group | None = None,
    info: dict[str, Any] | None = None,
    observers: Sequence[Built[Any]] = (),
) -> Run:
    """The recipe's data, models, loss and optimizers, assembled into a `Run` at step 0.

    ``folder`` is the run folder (files go there; nothing is written here), ``hook`` the
    plugin manager's hook relay, or `NoHooks` where events go nowhere; ``observers`` the
    run's built callbacks and loggers, whose state (if they keep one) checkpoints hold.
    """
    recipe, group = resolved.recipe, group or Group()
    data_component, data_params = resolved.get("data")
    dataset = build_component("data", data_component, data_params)
    if len(dataset) == 0:
        raise GanlabError(f"data set {recipe.data.name!r} has no images.")
    image_shape = tuple(dataset.image_shape)
    batch = recipe.train.batch_size * recipe.train.d_steps
    check_memory(
        2 * batch * math.prod(image_shape) * 4,
        device,
        f"One step ({batch} real images of {'x'.join(map(str, image_shape))} and as many fakes, "
        "float32)",
        "Use a smaller train.batch_size or a smaller image size (the data set's image_size).",
    )
    if recipe.train.data_cache and isinstance(dataset, CacheableImages):
        with blamed_on(data_component, "data", "while decoding its images"):
            dataset = cached(dataset, workers=recipe.train.workers)
    labels = labels_of(dataset)
    g_conditional, d_conditional = conditional_models(resolved, labels)
    num_classes = len(labels.names) if labels is not None else None
    generator, discriminator = build_models(resolved, image_shape, device, num_classes)
    loss = build_component("loss", *resolved.get("loss"))
    batches = Batches(
        dataset,
        # One step's batch holds the real images of all its D updates.
        batch,
        recipe.seed,
        device,
        recipe.train.workers,
        layout=memory_format(recipe.train),
        rank=group.rank,
        world=group.world,
    )
    if len(batches) == 0:
        raise GanlabError(
            f"{len(dataset)} images are fewer than one batch for each of {group.world} "
            "processes: use a smaller train.batch_size or fewer processes."
        )
    train, optimizers = recipe.train, recipe.optimizers
    augmentations = [built.obj for built in build_listed(resolved, "augment")]
    penalties = penalty_list(resolved)
    named = [(f"loss:{recipe.loss.name}", loss), *((b.name, b.obj) for b in penalties)]
    named += [(b.name, b.obj) for b in observers]
    eager = None
    if train.cuda_graphs:
        eager = eager_reason(
            device, train.precision, group.world, loss, len(augmentations), len(penalties)
        )
    graphs = train.cuda_graphs and eager is None
    opt_g = make_optimizer(optimizers.generator, generator.parameters(), fused=graphs)
    opt_d = make_optimizer(optimizers.discriminator, discriminator.parameters(), fused=graphs)
    fixed_labels = grid_labels(labels) if g_conditional and labels is not None else None
    steps = total_steps(train, len(batches))
    count = FIXED_LATENTS if fixed_labels is None else len(fixed_labels)
    run = Run(
        recipe=recipe,
        dir=folder,
        device=device,
        generator=generator,
        discriminator=discriminator,
        opt_g=opt_g,
        opt_d=opt_d,
        loss=loss,
        dataset=dataset,
        batches=batches,
        fixed_latents=seeded_latents(generator, count, recipe.seed).to(device),
        total_steps=steps,
        hook=hook,
        group=group,
        precision=Precision(train.precision, device),
        generator_ema=(
            generator_average(generator, train.ema, train.ema_warmup, train.ema_rampup)
            if train.ema
            else None
        ),
        info=info if info is not None else {},
        labels=labels,
        g_takes_labels=g_conditional,
        d_takes_labels=d_conditional,
        fixed_labels=None if fixed_labels is None else fixed_labels.to(device),
        augmentations=augmentations,
        penalties=[(b.component.name, b.obj) for b in penalties],
        plugin_states={name: obj for name, obj in named if has_state(obj)},
        cuda_graphs=graphs,
        eager_reason=eager,
        schedulers=schedules(optimizers, {"generator": opt_g, "discriminator": opt_d}, steps),
    )
    run.view = View(run)  # what hooks and metrics are given, the same one all run long
    return run


#: Rows of a conditional run's progress grid: one per class, for the first this many.
GRID_CLASSES = 16
#: Images per row of a conditional run's progress grid.
GRID_COLUMNS = 8


def grid_labels(labels: Labels) -> torch.Tensor:
    """The classes of a conditional run's fixed latent vectors: one grid row per class."""
    rows = min(len(labels.names), GRID_CLASSES)
    return torch.arange(rows).repeat_interleave(GRID_COLUMNS)


def schedules(
    optimizers: Optimizers, built: dict[str, torch.optim.Optimizer], total_steps: int
) -> dict[str, LRScheduler]:
    """The learning-rate schedules the recipe names, one of torch's per optimizer, for a run
    of ``total_steps`` steps: a length the recipe leaves out is the run's
    (`ganlab.recipe.schedules.with_run_length`)."""
    found = {}
    for net, optimizer in built.items():
        spec = getattr(optimizers, net).schedule
        if spec is None:
            continue
        # The recipe checked the name and the params (`LRSchedule`'s validators).
        found[net] = make_scheduler(spec.name, spec.params, optimizer, total_steps)
        check_length(found[net], total_steps, f"optimizers.{net}.schedule")
    return found


def total_steps(train: TrainSpec, steps_per_epoch: int) -> int:
    """The step a run ends at: ``train.steps`` or ``train.epochs`` worth, whichever is first."""
    limits = [train.steps] if train.steps else []
    if train.epochs:
        limits.append(train.epochs * steps_per_epoch)
    return min(limits)


class NoHooks:
    """The hook relay where events go nowhere: processes other than rank 0, ``ganlab eval``."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _NoEvent()


class _NoEvent:
    """An event of `NoHooks`: nothing implements it (so `ganlab.engine.run.GuardedHooks` calls it
    without forking the random state), and calling it does nothing."""

    def __call__(self, **kwargs: object) -> None:
        return None

    def get_hookimpls(self) -> list[object]:
        return []
