"""How much arithmetic a training step does, and how much of a GPU's peak a loop reaches.

`ganlab bench` reports the TFLOP/s each loop achieves (images per second times the FLOPs one
real image costs) and, on a GPU it knows, the fraction of that GPU's bf16 peak. The FLOPs
are counted, not estimated: torch's ``FlopCounterMode`` records every matrix multiplication
and convolution of one step of ganlab's own training step (`ganlab.engine.step.Step`, as
`ganlab.commands.bench.runner_step` builds it), forward and backward, with its penalties, on
the CPU (the count does not depend on the device or the precision).
"""

from __future__ import annotations

import math
import re

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganlab.commands.bench.runner_step import data_labels, runner_step
from ganlab.contracts import GeneratorPenalty, Penalty
from ganlab.engine.seeding import rng_untouched
from ganlab.engine.step import Step
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


def step_flops_per_image(resolved: Resolved) -> float:
    """FLOPs of one training step per real image: ``train.d_steps`` D updates (D on reals and
    fakes, G's forward) and one G update (G and D, forward and backward), with the recipe's
    penalties and augmentations, as ganlab's step computes them on the data set's image size
    (and classes, for a conditional G or D); optimizer updates, G's moving average and
    losses are left out (a few FLOPs per weight).

    A penalty with ``every: k`` costs its FLOPs one step in k (StyleGAN2's lazy
    regularization): each is counted once on its own and a k-th of it is added."""
    train = resolved.recipe.train
    # Counts scale with the batch: 2 images per D update are enough, with G's own batch
    # (train.g_batch_size) in the recipe's proportion to it.
    unit = math.gcd(train.batch_size, train.g_batch_size or train.batch_size)
    batch = 2 * train.batch_size // unit
    g_batch = None if train.g_batch_size is None else 2 * train.g_batch_size // unit
    sizes = {"precision": "fp32", "batch_size": batch, "g_batch_size": g_batch}
    # One step with the penalties due at every step, then one per lazy penalty.
    steps = 1 + len(resolved.recipe.penalties)
    cpu = torch.device("cpu")
    # The RNG as it was: the timed loops build their own models from the seed.
    with rng_untouched(), runner_step(resolved, cpu, steps, **sizes) as step:
        real = torch.rand((batch * train.d_steps, *step.run.dataset.image_shape)) * 2 - 1
        return lazily_counted(step, real, data_labels(step, len(real))) / len(real)


def lazily_counted(step: Step, real: torch.Tensor, labels: torch.Tensor | None) -> float:
    """FLOPs of one ``step`` on ``real`` (of classes ``labels``) with the penalties due at
    every step, plus a k-th of what each penalty with ``every: k`` adds on its own."""
    d_penalties, g_penalties = step.d_penalties, step.g_penalties

    def count(extra: object = None) -> float:
        # The step's own penalty lists, cut down: the every-step ones and ``extra``.
        step.d_penalties = [(n, p) for n, p in d_penalties if p.every == 1 or p is extra]
        step.g_penalties = [(n, p) for n, p in g_penalties if p.every == 1 or p is extra]
        step.run.step = 0  # a step where every penalty is due
        counter = TotalFlops()
        with counter:
            step(real, labels, 0)
        return counter.get_total_flops()

    try:
        flops = base = count()
        lazy: list[Penalty | GeneratorPenalty] = [p for _, p in d_penalties if p.every > 1]
        lazy += [p for _, p in g_penalties if p.every > 1]
        for penalty in lazy:
            flops += (count(penalty) - base) / penalty.every
        return flops
    finally:
        step.d_penalties, step.g_penalties = d_penalties, g_penalties
