"""The generator and the discriminator: built for the data set's image shape (and classes),
checked on a test batch before training, with their optimizers and G's moving average.

``ganlab sample`` builds only these (`build_models`); a run gets them through
`ganlab.engine.assemble.assemble_run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganlab.contracts import Generator
from ganlab.data.types import Labels
from ganlab.engine.components import build_component
from ganlab.engine.device import memory_format
from ganlab.engine.sampling import seeded_latents, untouched
from ganlab.errors import GanlabError
from ganlab.plugin_manager.blame import blamed_on, broken_contract, describe
from ganlab.recipe.models import Resolved
from ganlab.recipe.train import OptimizerSpec


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
                "gives its images none. Use a data set that gives class labels (its params "
                "say how; `ganlab plugins` lists every data set's), or an unconditional "
                f"{place}."
            )
        flags.append(component.conditional)
    return flags[0], flags[1]


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
