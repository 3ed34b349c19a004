"""The loop ganlab is measured against, written once (`ganlab bench` and
``benchmarks/reference_dcgan.py`` both use it), and how both time a step.

`TutorialStep` is the PyTorch DCGAN tutorial's step as written there: Sigmoid + BCELoss, two
backward passes for D, fp32, ``.item()`` on every statistic at every iteration; G(z) and D(x)
only (the tutorial has no classes). ganlab's own step is never written twice: the bench times
and counts the runner's (`ganlab.commands.bench.runner_step`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganlab.contracts import Generator


class TutorialStep:
    """The tutorial's training step; D gives logits, which the step reads with a sigmoid."""

    def __init__(
        self,
        generator: Generator,
        discriminator: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
    ) -> None:
        self.generator, self.discriminator = generator, discriminator
        self.opt_g, self.opt_d = opt_g, opt_d
        self.criterion = nn.BCELoss()
        self.losses: list[tuple[float, float]] = []  # (loss_d, loss_g), as the tutorial keeps

    def __call__(self, real: torch.Tensor) -> None:
        net_g, net_d, criterion = self.generator, self.discriminator, self.criterion
        b, device = real.size(0), real.device
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        net_d.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        output = torch.sigmoid(net_d(real).view(-1))
        err_d_real = criterion(output, label)
        err_d_real.backward()
        output.mean().item()  # D(x)
        noise = torch.randn((b, *net_g.latent_shape), device=device)
        fake = net_g(noise)
        label.fill_(0.0)
        output = torch.sigmoid(net_d(fake.detach()).view(-1))
        err_d_fake = criterion(output, label)
        err_d_fake.backward()
        output.mean().item()  # D(G(z)) before D's step
        err_d = err_d_real + err_d_fake
        self.opt_d.step()
        # (2) Update G: maximize log(D(G(z)))
        net_g.zero_grad()
        label.fill_(1.0)
        output = torch.sigmoid(net_d(fake).view(-1))
        err_g = criterion(output, label)
        err_g.backward()
        output.mean().item()  # D(G(z)) after it
        self.opt_g.step()
        self.losses.append((err_d.item(), err_g.item()))


def images_per_second(
    step: Callable[..., object],
    batch: Callable[[int], tuple[Any, ...]],
    warmup: int,
    steps: int,
    device: torch.device,
) -> float:
    """Images per second of ``step(*batch(i))`` at step ``i`` (the images first, then what
    else the step takes: ganlab's step, their classes and batch index), timed after ``warmup``
    untimed steps (first calls, allocator, autotuning), waiting for the device at both ends."""
    for i in range(warmup):
        step(*batch(i))
    synchronize(device)
    started, images = time.perf_counter(), 0
    for i in range(warmup, warmup + steps):
        args = batch(i)
        images += args[0].shape[0]
        step(*args)
    synchronize(device)
    return images / (time.perf_counter() - started)


def synchronize(device: torch.device) -> None:
    """Wait for the device to finish what it was given (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
