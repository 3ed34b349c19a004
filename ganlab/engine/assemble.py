"""Assembling a run: every component of a resolved recipe built, checked and put together.

One place for training, ``ganlab eval`` and ``ganlab bench`` (``ganlab sample`` builds only
the models, with `build_models`): a plugin's build function is called through
`build_component`, which names the plugin when it fails or returns the wrong thing, and
`assemble_run` returns a complete `Run` at step 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

import torch
from pydantic import BaseModel
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganlab.contracts import (
    Augmentation,
    GanLoss,
    Generator,
    GeneratorPenalty,
    ImageDataset,
    Metric,
    Observer,
    Penalty,
)
from ganlab.data.batches import Batches
from ganlab.data.cache import CacheableImages, cached
from ganlab.data.types import Labels, TensorImages, labels_of
from ganlab.engine.device import memory_format
from ganlab.engine.distributed import Group
from ganlab.engine.graphs import eager_reason
from ganlab.engine.memory import check_memory
from ganlab.engine.precision import Precision
from ganlab.engine.run import Hooks, Run
from ganlab.engine.sampling import FIXED_LATENTS, seeded_latents, untouched
from ganlab.engine.view import View
from ganlab.errors import GanlabError
from ganlab.hookspecs import PROJECT
from ganlab.plugin_manager.blame import blamed_on, broken_contract, describe
from ganlab.plugin_manager.registry import Component
from ganlab.recipe.models import Optimizers, OptimizerSpec, Resolved, TrainSpec
from ganlab.recipe.schedules import check_length, make_scheduler


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


def conditional_models(resolved: Resolved, labels: Labels | None) -> tuple[bool, bool]:
    """Whether G and D take class labels; a conditional one on a data set without classes
    is the recipe's mistake."""
    flags = []
    for place in ("generator", "discriminator"):
        component = resolved.get(place)[0]
        if component.conditional and labels is None:
            data = resolved.get("data")[0]
            raise GanlabError(
                f"{place} {component.name!r} takes class labels, but data set {data.name!r} "
                "gives its images none. Use a data set with classes (image_folder with one "
                "subfolder per class, cartoon_faces with `classes:`), or an unconditional "
                f"{place}."
            )
        flags.append(component.conditional)
    return flags[0], flags[1]


def penalty_list(resolved: Resolved) -> list[Built[Penalty | GeneratorPenalty]]:
    """The recipe's penalties (on D or on G), each logged under its component's name."""
    built = build_listed(resolved, "penalties")
    names = [b.component.name for b in built]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GanlabError(
            f"penalties: {', '.join(twice)} is listed twice; give each penalty once, with "
            "its weight."
        )
    return built


def has_state(obj: object) -> bool:
    """Whether a plugin object keeps state a checkpoint must hold: torch's protocol,
    ``state_dict()`` and ``load_state_dict(state)``."""
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


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


def make_optimizer(
    spec: OptimizerSpec, params: Iterable[nn.Parameter], fused: bool = False
) -> torch.optim.Optimizer:
    """The optimizer ``spec`` names; ``fused``: its one-kernel CUDA update
    (`ganlab.engine.graphs`)."""
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec.name]
    # fused=None, not False: torch's own default, so a run without the option is unchanged.
    return kind(
        params,
        lr=spec.lr,
        betas=spec.betas,
        weight_decay=spec.weight_decay,
        fused=True if fused else None,
    )


def generator_average(
    generator: Generator, decay: float, warmup: bool = True, rampup: float | None = None
) -> AveragedModel:
    """An exponential moving average of G's weights and batch-norm statistics.

    With ``warmup``, the decay after ``n`` updates is ``min(decay, (1 + n) / (10 + n))``, as
    TensorFlow's ``ExponentialMovingAverage(num_updates=n)``: early on the average follows G
    closely, so it never keeps most of G's initial, untrained weights (0.999 ** 580 = 56%).
    With ``rampup`` instead, StyleGAN2's ramp: ``min(decay, 0.5 ** (1 / (rampup * n)))``, a
    half-life of at most ``rampup * n`` updates (their ``ema_rampup``, counted in images).
    """
    if rampup is not None:
        ramp = rampup

        def schedule(n: int) -> float:
            return min(decay, 0.5 ** (1 / (ramp * n)))
    elif warmup:

        def schedule(n: int) -> float:
            return min(decay, (1 + n) / (10 + n))
    else:
        return AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @torch.no_grad()
    def average(
        averaged: Sequence[torch.Tensor],
        current: Sequence[torch.Tensor],
        num_averaged: torch.Tensor | int,
    ) -> None:
        # The average's own counter (saved in checkpoints, so a resumed run continues its
        # ramp); AveragedModel reads it on the host at every update anyway. It is 1 at the
        # second update: the first copies G.
        get_ema_multi_avg_fn(schedule(int(num_averaged)))(averaged, current, num_averaged)

    return AveragedModel(generator, multi_avg_fn=average, use_buffers=True)


def total_steps(train: TrainSpec, steps_per_epoch: int) -> int:
    """The step a run ends at: ``train.steps`` or ``train.epochs`` worth, whichever is first."""
    limits = [train.steps] if train.steps else []
    if train.epochs:
        limits.append(train.epochs * steps_per_epoch)
    return min(limits)


def build_component(place: str, component: Component, params: BaseModel, *args: Any) -> Any:
    """Call a component's build function and check what it returned: a plugin bug is one
    error that names the component, its plugin and the plugin's line
    (`ganlab.plugin_manager.blame`)."""
    with blamed_on(component, place, "while building it"):
        built = component.build(params, *args)
    problem = contract_problem(component.kind, built)
    if problem:
        raise broken_contract(describe(component, place), problem, component.build)
    return built


def contract_problem(kind: str, built: object) -> str | None:
    """What is wrong with what a build function of ``kind`` returned (None: nothing)."""
    wanted: dict[str, tuple[tuple[type, ...], str]] = {
        "datasets": ((ImageDataset, TensorImages), "a data set (ganlab.ImageDataset)"),
        "generators": ((nn.Module,), "a torch.nn.Module"),
        "discriminators": ((nn.Module,), "a torch.nn.Module"),
        "losses": ((GanLoss,), "a ganlab.GanLoss"),
    }
    wanted |= {
        "augmentations": ((Augmentation,), "a ganlab.Augmentation"),
        "penalties": ((Penalty, GeneratorPenalty), "a ganlab.Penalty or GeneratorPenalty"),
    }
    if kind in wanted and not isinstance(built, wanted[kind][0]):
        return f"returned {type(built).__name__} from its build function, not {wanted[kind][1]}"
    labels = labels_of(built) if kind == "datasets" else None
    if labels is not None and (problem := labels.problem(len(built))):  # type: ignore[arg-type]
        return f"returned a data set whose {problem}"
    if kind == "generators" and not hasattr(built, "latent_shape"):
        return "has no `latent_shape` attribute; the runner needs it to draw latent vectors"
    if kind == "metrics" and not callable(built):
        return f"returned {type(built).__name__} from its build function, not a callable"
    if kind in ("callbacks", "loggers") and not has_hooks(built):
        return (
            f"returned {type(built).__name__} from its build function, which implements no "
            "ganlab hook (methods decorated with @ganlab.hookimpl): it would do nothing"
        )
    return None


def has_hooks(obj: object) -> bool:
    """Whether ``obj`` has a method marked with ``@ganlab.hookimpl``."""
    marker = f"{PROJECT}_impl"
    return obj is not None and any(
        hasattr(getattr(obj, name, None), marker) for name in dir(obj) if name.startswith("ganlab_")
    )


#: What a list section's components are: a `Metric`, or an `Observer` (callbacks, loggers).
T = TypeVar("T")


@dataclass(frozen=True)
class Built(Generic[T]):
    """A built component of a list section (callbacks, metrics, loggers)."""

    place: str  #: where the recipe names it: "callbacks.0"
    component: Component
    obj: T

    @property
    def name(self) -> str:
        """The name it is registered under for a run: ``callbacks.0:console``."""
        return f"{self.place}:{self.component.name}"


@overload
def build_listed(resolved: Resolved, section: Literal["metrics"]) -> list[Built[Metric]]: ...


@overload
def build_listed(
    resolved: Resolved, section: Literal["callbacks", "loggers"]
) -> list[Built[Observer]]: ...


@overload
def build_listed(resolved: Resolved, section: Literal["augment"]) -> list[Built[Augmentation]]: ...


@overload
def build_listed(
    resolved: Resolved, section: Literal["penalties"]
) -> list[Built[Penalty | GeneratorPenalty]]: ...


def build_listed(resolved: Resolved, section: str) -> list[Built[Any]]:
    """Build every component of a list section (loggers, callbacks, metrics); what each
    build function returned was checked (`contract_problem`)."""
    return [
        Built(f"{section}.{i}", component, build_component(f"{section}.{i}", component, params))
        for i, (component, params) in enumerate(resolved.listed(section))
    ]


def build_models(
    resolved: Resolved,
    image_shape: tuple[int, int, int],
    device: torch.device,
    num_classes: int | None = None,
) -> tuple[Generator, nn.Module]:
    """The recipe's generator and discriminator, on ``device``, checked on a test batch.

    A conditional one (registered with ``conditional=True``) is built with ``num_classes``,
    the number of the data set's classes, as its third argument.
    """
    built = []
    for place in ("generator", "discriminator"):
        component, params = resolved.get(place)
        classes = (num_classes,) if component.conditional else ()
        built.append(build_component(place, component, params, image_shape, *classes))
    layout = memory_format(resolved.recipe.train)
    # Module.to takes a device and a memory format together; torch's overloads leave it out.
    # An nn.Module with `latent_shape` (`contract_problem`): the core's `Generator` type.
    generator: Generator = built[0].to(device, memory_format=layout)
    discriminator: nn.Module = built[1].to(device, memory_format=layout)
    check_shapes(resolved, generator, discriminator, image_shape, device)
    return generator, discriminator


def check_shapes(
    resolved: Resolved,
    generator: Generator,
    discriminator: nn.Module,
    image_shape: tuple[int, int, int],
    device: torch.device,
) -> None:
    """One forward pass of G and D on two latent vectors, before training: a generator
    whose images do not have the data set's shape, or a discriminator that does not give one
    score per image, is found when the run is built, not in its first step.

    In eval mode, without gradients, with its own random numbers and every buffer put back:
    the models and the training RNG stream are exactly as they were.
    """
    g_component, d_component = resolved.get("generator")[0], resolved.get("discriminator")[0]
    # Class 0 for a conditional model: every conditional model has at least one class.
    labels = torch.zeros(2, dtype=torch.int64, device=device)
    g_labels = (labels,) if g_component.conditional else ()
    d_labels = (labels,) if d_component.conditional else ()
    with untouched(generator, train=False), untouched(discriminator, train=False):
        with blamed_on(g_component, "generator", "on a test batch of 2"), torch.no_grad():
            fake = generator(seeded_latents(generator, 2, seed=0).to(device), *g_labels)
        if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != (2, *image_shape):
            made = tuple(fake.shape[1:]) if isinstance(fake, torch.Tensor) else type(fake)
            raise broken_contract(
                describe(g_component, "generator"),
                f"makes images of shape {made}, but the data set's images are {image_shape} "
                "(channels, height, width)",
                type(generator).forward,
            )
        with blamed_on(d_component, "discriminator", "on a test batch of 2"), torch.no_grad():
            scores = discriminator(fake, *d_labels)
        if not isinstance(scores, torch.Tensor) or scores.numel() != 2:
            count = scores.numel() if isinstance(scores, torch.Tensor) else type(scores)
            raise broken_contract(
                describe(d_component, "discriminator"),
                f"gives {count} scores for a batch of 2 images; it must give one per image",
                type(discriminator).forward,
            )
