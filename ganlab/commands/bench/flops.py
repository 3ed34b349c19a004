"""How much arithmetic a training step does, and how much of a GPU's peak a loop reaches.

`ganlab bench` reports the TFLOP/s each loop achieves (images per second times the FLOPs one
real image costs) and, on a GPU it knows, the fraction of that GPU's bf16 peak. The FLOPs
are counted, not estimated: torch's ``FlopCounterMode`` records every matrix multiplication
and convolution of one step of `ganlab.commands.bench.reference.MinimalStep`, forward and backward,
with
its penalties, on the CPU (the count does not depend on the device or the precision).
"""

from __future__ import annotations

import math
import re

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganlab.commands.bench.reference import MinimalStep
from ganlab.contracts import GeneratorPenalty, Penalty
from ganlab.data.types import Labels
from ganlab.engine.seeding import rng_untouched
from ganlab.recipe.models import Resolved

#: Dense bf16 tensor-core peaks in TFLOP/s, by a pattern of ``torch.cuda.get_device_name()``
#: (NVIDIA's data sheets, without sparsity). H100 PCIe and NVL cards run lower clocks than
#: the SXM ones and are left out: an unknown GPU gets no fraction rather than a wrong one.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"\bH200\b", 989.0),
    (r"\bH100\b(?!.*\b(PCIe|NVL)\b)", 989.0),
    (r"\bA100\b", 312.0),
)


def peak_bf16_tflops(device_name: str) -> float | None:
    """The bf16 peak of the GPU called ``device_name``; None for a GPU not in the table."""
    for pattern, peak in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return peak
    return None


class _NoModules:
    """Stands in for ``FlopCounterMode``'s module tracker: every count goes to the one
    total ("Global"), the only one ganlab reads."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _NoModules:
        return self

    def __exit__(self, *args: object) -> None:
        pass


class TotalFlops(FlopCounterMode):
    """torch's ``FlopCounterMode`` that counts the total only, for steps that take gradients
    with respect to images: its per-module tracking puts backward hooks on every module's
    inputs that ``torch.autograd.grad`` of a penalty (R1, WGAN-GP's) cannot run ("A leaf
    node was passed to _will_engine_execute_node", pytorch/pytorch#131753)."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _NoModules()  # type: ignore[assignment]


def step_flops_per_image(
    resolved: Resolved, image_shape: tuple[int, int, int], labels: Labels | None = None
) -> float:
    """FLOPs of one training step per real image: ``train.d_steps`` D updates (D on reals and
    fakes, G's forward) and one G update (G and D, forward and backward), with the recipe's
    penalties and augmentations, as ganlab's step computes them; optimizer updates, G's
    moving average and losses are left out (a few FLOPs per weight). ``labels`` are the data
    set's, for a conditional G or D (`MinimalStep.from_recipe`).

    A penalty with ``every: k`` costs its FLOPs one step in k (StyleGAN2's lazy
    regularization): each is counted once on its own and a k-th of it is added."""
    recipe = resolved.recipe
    d_steps = recipe.train.d_steps
    # Counts scale with the batch: 2 images per D update are enough, with G's own batch
    # (train.g_batch_size) in the recipe's proportion to it.
    g_batch = recipe.train.g_batch_size
    unit = math.gcd(recipe.train.batch_size, g_batch or recipe.train.batch_size)
    batch = 2 * recipe.train.batch_size // unit
    g_batch = None if g_batch is None else 2 * g_batch // unit
    cpu = torch.device("cpu")
    with rng_untouched():  # the timed loops build their own models from the seed
        step = MinimalStep.from_recipe(resolved, image_shape, cpu, "fp32", batch, g_batch, labels)
        real = torch.rand((batch * d_steps, *image_shape)) * 2 - 1
        real_labels = step.draw_labels(len(real))  # None without classes
        penalties = step.penalties

        def count(penalties: list[Penalty | GeneratorPenalty], at_step: int) -> float:
            step.penalties, step.step = penalties, at_step
            counter = TotalFlops()
            with counter:
                step(real, real_labels)
            return counter.get_total_flops()

        # At step 1 only the penalties due at every step run; each lazy one adds its share.
        always = [p for p in penalties if p.every == 1]
        flops = base = count(always, 1)
        for lazy in (p for p in penalties if p.every > 1):
            flops += (count([*always, lazy], 0) - base) / lazy.every
    return flops / (batch * d_steps)
