"""Assembling a run: every component of a resolved recipe built, checked and put together.

One place for training, ``ganlab eval`` and ``ganlab bench`` (``ganlab sample`` builds only
the models, with `build_models`): a plugin's build function is called through
`build_component`, which names the plugin when it fails or returns the wrong thing, and
`assemble_run` returns a complete `Run` at step 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

import torch
from pydantic import BaseModel
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganlab.blame import blamed_on, broken_contract, describe
from ganlab.cache import CacheableImages, cached
from ganlab.data import Batches, ImageDataset, TensorImages
from ganlab.device import memory_format
from ganlab.distributed import Group
from ganlab.errors import GanlabError
from ganlab.hookspecs import PROJECT, Metric, Observer
from ganlab.loss import GanLoss
from ganlab.memory import check_memory
from ganlab.precision import Precision
from ganlab.recipe import OptimizerSpec, Resolved, TrainSpec
from ganlab.registry import Component
from ganlab.run import FIXED_LATENTS, Generator, Hooks, Run, seeded_latents, untouched


def assemble_run(
    resolved: Resolved,
    device: torch.device,
    folder: Path,
    hook: Hooks,
    group: Group | None = None,
    info: dict[str, Any] | None = None,
) -> Run:
    """The recipe's data, models, loss and optimizers, assembled into a `Run` at step 0.

    ``folder`` is the run folder (files go there; nothing is written here), ``hook`` the
    plugin manager's hook relay, or `NoHooks` where events go nowhere.
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
    generator, discriminator = build_models(resolved, image_shape, device)
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
    ema = recipe.train.ema
    return Run(
        recipe=recipe,
        dir=folder,
        device=device,
        generator=generator,
        discriminator=discriminator,
        opt_g=make_optimizer(recipe.optimizers.generator, generator.parameters()),
        opt_d=make_optimizer(recipe.optimizers.discriminator, discriminator.parameters()),
        loss=loss,
        dataset=dataset,
        batches=batches,
        fixed_latents=seeded_latents(generator, FIXED_LATENTS, recipe.seed).to(device),
        total_steps=total_steps(recipe.train, len(batches)),
        hook=hook,
        group=group,
        precision=Precision(recipe.train.precision, device),
        generator_ema=generator_average(generator, ema) if ema is not None else None,
        info=info if info is not None else {},
    )


class NoHooks:
    """The hook relay where events go nowhere: processes other than rank 0, ``ganlab eval``."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda **kwargs: None


def make_optimizer(spec: OptimizerSpec, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec.name]
    return kind(params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)


def generator_average(generator: Generator, decay: float) -> AveragedModel:
    """An exponential moving average of G's weights and batch-norm statistics."""
    return AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def total_steps(train: TrainSpec, steps_per_epoch: int) -> int:
    """The step a run ends at: ``train.steps`` or ``train.epochs`` worth, whichever is first."""
    limits = [train.steps] if train.steps else []
    if train.epochs:
        limits.append(train.epochs * steps_per_epoch)
    return min(limits)


def build_component(place: str, component: Component, params: BaseModel, *args: Any) -> Any:
    """Call a component's build function and check what it returned: a plugin bug is one
    error that names the component, its plugin and the plugin's line (`ganlab.blame`)."""
    with blamed_on(component, place, "while building it"):
        built = component.build(params, *args)
    problem = contract_problem(component.kind, built)
    if problem:
        raise broken_contract(describe(component, place), problem, component.build)
    return built


def contract_problem(kind: str, built: object) -> str | None:
    """What is wrong with what a build function of ``kind`` returned (None: nothing)."""
    wanted = {
        "datasets": ((ImageDataset, TensorImages), "a data set (ganlab.ImageDataset)"),
        "generators": ((nn.Module,), "a torch.nn.Module"),
        "discriminators": ((nn.Module,), "a torch.nn.Module"),
        "losses": ((GanLoss,), "a ganlab.GanLoss"),
    }
    if kind in wanted and not isinstance(built, wanted[kind][0]):
        return f"returned {type(built).__name__} from its build function, not {wanted[kind][1]}"
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


def build_listed(resolved: Resolved, section: str) -> list[Built[Any]]:
    """Build every component of a list section (loggers, callbacks, metrics); what each
    build function returned was checked (`contract_problem`)."""
    return [
        Built(f"{section}.{i}", component, build_component(f"{section}.{i}", component, params))
        for i, (component, params) in enumerate(resolved.listed(section))
    ]


def build_models(
    resolved: Resolved, image_shape: tuple[int, int, int], device: torch.device
) -> tuple[Generator, nn.Module]:
    """The recipe's generator and discriminator, on ``device``, checked on a test batch."""
    g_component, g_params = resolved.get("generator")
    # An nn.Module with `latent_shape` (`contract_problem`): the core's `Generator` type.
    generator: Generator = build_component("generator", g_component, g_params, image_shape)
    d_component, d_params = resolved.get("discriminator")
    discriminator: nn.Module = build_component("discriminator", d_component, d_params, image_shape)
    layout = memory_format(resolved.recipe.train)
    # Module.to takes a device and a memory format together; torch's overloads leave it out.
    generator = generator.to(device, memory_format=layout)  # type: ignore[call-overload]
    discriminator = discriminator.to(device, memory_format=layout)  # type: ignore[call-overload]
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
    with untouched(generator, train=False), untouched(discriminator, train=False):
        with blamed_on(g_component, "generator", "on a test batch of 2"), torch.no_grad():
            fake = generator(seeded_latents(generator, 2, seed=0).to(device))
        if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != (2, *image_shape):
            made = tuple(fake.shape[1:]) if isinstance(fake, torch.Tensor) else type(fake)
            raise broken_contract(
                describe(g_component, "generator"),
                f"makes images of shape {made}, but the data set's images are {image_shape} "
                "(channels, height, width)",
                type(generator).forward,
            )
        with blamed_on(d_component, "discriminator", "on a test batch of 2"), torch.no_grad():
            scores = discriminator(fake)
        if not isinstance(scores, torch.Tensor) or scores.numel() != 2:
            count = scores.numel() if isinstance(scores, torch.Tensor) else type(scores)
            raise broken_contract(
                describe(d_component, "discriminator"),
                f"gives {count} scores for a batch of 2 images; it must give one per image",
                type(discriminator).forward,
            )
