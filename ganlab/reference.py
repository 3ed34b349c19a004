"""The loops ganlab is measured against, written once (`ganlab bench` and
``benchmarks/reference_dcgan.py`` both use them).

- `TutorialStep`: the PyTorch DCGAN tutorial's step as written there: Sigmoid + BCELoss, two
  backward passes for D, fp32, ``.item()`` on every statistic at every iteration.
- `MinimalStep`: ganlab's step written the way a careful PyTorch user would, with nothing
  around it: the same models, loss plugin, precision (`ganlab.precision.Precision`) and
  batch, no statistics kept, no hooks, no logging. The difference from ganlab's loop is what
  ganlab's bookkeeping costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from ganlab.assemble import build_component, build_models, make_optimizer
from ganlab.loss import GanLoss
from ganlab.precision import Precision
from ganlab.recipe import Resolved
from ganlab.run import Generator


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


class MinimalStep:
    """ganlab's step (``d_steps`` D updates, one G update) with nothing around it."""

    def __init__(
        self,
        generator: Generator,
        discriminator: nn.Module,
        loss: GanLoss,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        precision: Precision,
        batch_size: int,
    ) -> None:
        self.generator, self.discriminator, self.loss = generator, discriminator, loss
        self.opt_g, self.opt_d = opt_g, opt_d
        self.precision = precision
        self.batch_size = batch_size

    @classmethod
    def from_recipe(
        cls,
        resolved: Resolved,
        image_shape: tuple[int, int, int],
        device: torch.device,
        precision: str,
        batch_size: int,
    ) -> MinimalStep:
        """The step of ``resolved``'s models, loss and optimizers (built anew, from the global
        RNG as it stands), in ``precision``, ``batch_size`` images per D update."""
        recipe = resolved.recipe
        generator, discriminator = build_models(resolved, image_shape, device)
        return cls(
            generator,
            discriminator,
            build_component("loss", *resolved.get("loss")),
            make_optimizer(recipe.optimizers.generator, generator.parameters()),
            make_optimizer(recipe.optimizers.discriminator, discriminator.parameters()),
            Precision(precision, device),
            batch_size,
        )

    def __call__(self, real: torch.Tensor) -> None:
        generator, discriminator, loss = self.generator, self.discriminator, self.loss
        batches = real.split(self.batch_size)  # one D update per batch
        for i, real_batch in enumerate(batches):
            shape = (real_batch.shape[0], *generator.latent_shape)
            with self.precision.autocast():
                real_scores = discriminator(real_batch).reshape(-1).float()
                with torch.set_grad_enabled(i == len(batches) - 1):  # G's update uses the last
                    fake = generator(torch.randn(shape, device=real.device))
                fake_scores = discriminator(fake.detach()).reshape(-1).float()
                loss_d = loss.discriminator_loss(real_scores, fake_scores)
                penalty = loss.discriminator_penalty(discriminator, real_batch, fake.detach())
                if penalty is not None:
                    loss_d = loss_d + penalty
            self.precision.backward_and_step(loss_d, self.opt_d, "discriminator")
        with self.precision.autocast():
            fake_scores = discriminator(fake).reshape(-1).float()
            if loss.needs_real_scores is None:
                loss_g = loss.generator_loss(fake_scores)
            elif loss.needs_real_scores == "last":
                loss_g = loss.generator_loss(fake_scores, real_scores.detach())
            else:  # "current": the real batch scored again by the updated D
                with torch.no_grad():
                    real_scores = discriminator(real_batch).reshape(-1).float()
                loss_g = loss.generator_loss(fake_scores, real_scores)
        self.precision.backward_and_step(loss_g, self.opt_g, "generator")


def images_per_second(
    step: Callable[[torch.Tensor], None],
    batch: Callable[[int], torch.Tensor],
    warmup: int,
    steps: int,
    device: torch.device,
) -> float:
    """Images per second of ``step`` on ``batch(i)`` for step ``i``, timed after ``warmup``
    untimed steps (first calls, allocator, autotuning), waiting for the device at both ends."""
    for i in range(warmup):
        step(batch(i))
    synchronize(device)
    started, images = time.perf_counter(), 0
    for i in range(warmup, warmup + steps):
        real = batch(i)
        images += real.shape[0]
        step(real)
    synchronize(device)
    return images / (time.perf_counter() - started)


def synchronize(device: torch.device) -> None:
    """Wait for the device to finish what it was given (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
