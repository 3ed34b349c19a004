"""The loops ganlab is measured against, written once (`ganlab bench` and
``benchmarks/reference_dcgan.py`` both use them).

- `TutorialStep`: the PyTorch DCGAN tutorial's step as written there: Sigmoid + BCELoss, two
  backward passes for D, fp32, ``.item()`` on every statistic at every iteration; G(z) and
  D(x) only (the tutorial has no classes).
- `MinimalStep`: ganlab's step written the way a careful PyTorch user would, with nothing
  around it: the same models (given class labels when they take them), loss plugin,
  penalties, augmentations, precision (`ganlab.engine.precision.Precision`) and batch, no
  statistics kept, no hooks, no logging. The difference from ganlab's loop is what ganlab's
  bookkeeping costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ganlab.contracts import (
    Augmentation,
    GanLoss,
    Generator,
    GeneratorPass,
    GeneratorPenalty,
    Penalty,
    StepScores,
    given,
)
from ganlab.data.types import Labels
from ganlab.engine.assemble import (
    build_component,
    build_listed,
    build_models,
    conditional_models,
    generator_average,
    make_optimizer,
    penalty_list,
)
from ganlab.engine.precision import Precision
from ganlab.engine.step import generator_pass
from ganlab.recipe.models import Resolved


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
    """ganlab's step (``d_steps`` D updates, one G update) with nothing around it.

    It does the arithmetic ganlab's step (`ganlab.engine.loop.Step`) does for the same recipe, so
    that the difference between the two is ganlab's bookkeeping alone: the loss (with its
    own penalty, and the real scores its G loss declares it needs), the recipe's
    ``augment:`` on every image D sees, its ``penalties:`` on D and on G at the steps they
    are due (``every``), ``train.g_batch_size``, G's moving average (``train.ema``), and
    class labels for a conditional G or D. It keeps no statistics, calls no hook and checks
    nothing.
    """

    def __init__(
        self,
        generator: Generator,
        discriminator: nn.Module,
        loss: GanLoss,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        precision: Precision,
        batch_size: int,
        *,
        g_batch_size: int | None = None,
        penalties: Sequence[Penalty | GeneratorPenalty] = (),
        augmentations: Sequence[Augmentation] = (),
        class_weights: torch.Tensor | None = None,
        g_takes_labels: bool = False,
        d_takes_labels: bool = False,
        generator_ema: AveragedModel | None = None,
    ) -> None:
        self.generator, self.discriminator, self.loss = generator, discriminator, loss
        self.opt_g, self.opt_d = opt_g, opt_d
        self.precision = precision
        self.batch_size, self.g_batch_size = batch_size, g_batch_size
        self.penalties = list(penalties)
        self.augmentations = list(augmentations)
        #: How often each class is drawn for the fakes (on the device); None: no classes.
        self.class_weights = class_weights
        self.g_takes_labels, self.d_takes_labels = g_takes_labels, d_takes_labels
        self.generator_ema = generator_ema  # G's moving average (train.ema), or None
        self.device = next(generator.parameters()).device
        #: Steps taken: penalties with ``every: k`` are due when k divides it, as in ganlab.
        self.step = 0

    @classmethod
    def from_recipe(
        cls,
        resolved: Resolved,
        image_shape: tuple[int, int, int],
        device: torch.device,
        precision: str,
        batch_size: int,
        g_batch_size: int | None,
        labels: Labels | None = None,
    ) -> MinimalStep:
        """The step of ``resolved``'s models, loss, optimizers, penalties and augmentations
        (built anew, from the global RNG as it stands), in ``precision``, ``batch_size``
        images per D update, G's update on ``g_batch_size`` fresh fakes (None: on the last
        fakes of D's update).

        ``labels`` are the data set's (`ganlab.labels_of`): a conditional G or D is built
        for their classes and the fakes' classes are drawn as often as they occur; a
        conditional model without them is refused as a run refuses it."""
        recipe, train = resolved.recipe, resolved.recipe.train
        g_conditional, d_conditional = conditional_models(resolved, labels)
        num_classes = len(labels.names) if labels is not None else None
        generator, discriminator = build_models(resolved, image_shape, device, num_classes)
        class_weights = None
        if (g_conditional or d_conditional) and labels is not None:
            class_weights = labels.frequencies().float().to(device)
        return cls(
            generator,
            discriminator,
            build_component("loss", *resolved.get("loss")),
            make_optimizer(recipe.optimizers.generator, generator.parameters()),
            make_optimizer(recipe.optimizers.discriminator, discriminator.parameters()),
            Precision(precision, device),
            batch_size,
            g_batch_size=g_batch_size,
            penalties=[built.obj for built in penalty_list(resolved)],
            augmentations=[built.obj for built in build_listed(resolved, "augment")],
            class_weights=class_weights,
            g_takes_labels=g_conditional,
            d_takes_labels=d_conditional,
            generator_ema=(
                generator_average(generator, train.ema, train.ema_warmup) if train.ema else None
            ),
        )

    def draw_labels(self, n: int) -> torch.Tensor | None:
        """``n`` classes drawn on the device as often as they occur in the data, as ganlab
        draws the fakes' (None without classes)."""
        if self.class_weights is None:
            return None
        return torch.multinomial(self.class_weights, n, replacement=True)

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Train on ``real`` (every D update's batch in a row) of classes ``labels`` (the
        data's, as ganlab's batches carry them; None without classes)."""
        loss = self.loss
        due = [p for p in self.penalties if self.step % p.every == 0]
        d_due = [p for p in due if isinstance(p, Penalty)]
        g_due = [p for p in due if isinstance(p, GeneratorPenalty)]
        batches = real.split(self.batch_size)  # one D update per batch
        label_batches = labels.split(self.batch_size) if labels is not None else None
        for i, real_batch in enumerate(batches):
            real_labels = label_batches[i] if label_batches is not None else None
            last = i == len(batches) - 1
            with self.precision.autocast():
                real_scores = self.scores(real_batch, real_labels)
                with torch.set_grad_enabled(last):  # G's update uses the last fakes
                    g_pass, fake_labels = self.fakes(len(real_batch), bool(g_due) and last)
                fake = g_pass.images.detach()
                fake_scores = self.scores(fake, fake_labels)
                loss_d = loss.discriminator_loss(real_scores, fake_scores)
                critic = _Critic(self, real_labels)
                penalty = loss.discriminator_penalty(critic, real_batch, fake)
                if penalty is not None:
                    loss_d = loss_d + penalty
                scores = StepScores(
                    real_scores, fake_scores, real_batch, fake, real_labels, fake_labels
                )
                for term in d_due:
                    args = (scores,) if term.reads_scores else ()
                    value = term.value(critic, real_batch, fake, *args)
                    loss_d = loss_d + term.weight * term.every * value
            self.precision.backward_and_step(loss_d, self.opt_d, "discriminator")
            for augmentation in self.augmentations:
                augmentation.observe(real_scores.detach())
        if self.g_batch_size is not None:  # G's update on fresh fakes
            g_pass, fake_labels = self.fakes(self.g_batch_size, bool(g_due))
        with self.precision.autocast():
            fake_scores = self.scores(g_pass.images, fake_labels)
            if loss.needs_real_scores is None:
                loss_g = loss.generator_loss(fake_scores)
            elif loss.needs_real_scores == "last":
                loss_g = loss.generator_loss(fake_scores, real_scores.detach())
            else:  # "current": the real batch scored again by the updated D
                with torch.no_grad():
                    real_scores = self.scores(real_batch, real_labels)
                loss_g = loss.generator_loss(fake_scores, real_scores)
            for g_term in g_due:
                loss_g = loss_g + g_term.weight * g_term.every * g_term.value(g_pass)
        self.precision.backward_and_step(loss_g, self.opt_g, "generator")
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        self.step += 1

    def fakes(self, n: int, intermediates: bool) -> tuple[GeneratorPass, torch.Tensor | None]:
        """``n`` fakes of fresh latents and their classes (when G or D takes them); with
        ``intermediates`` (a G penalty is due) through `ganlab.ExposesIntermediates`."""
        latents = torch.randn((n, *self.generator.latent_shape), device=self.device)
        labels = self.draw_labels(n)
        g_labels = labels if self.g_takes_labels else None
        return generator_pass(self.generator, latents, g_labels, intermediates), labels

    def scores(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's flat float32 scores of ``images``, augmented, with their classes if D takes
        them."""
        for augmentation in self.augmentations:
            images = augmentation(images)
        d_labels = labels if self.d_takes_labels else None
        return self.discriminator(images, *given(d_labels)).reshape(-1).float()


class _Critic(nn.Module):
    """D as the loss's and the recipe's penalties see it in `MinimalStep`: augmented, with
    the real batch's classes."""

    def __init__(self, step: MinimalStep, labels: torch.Tensor | None) -> None:
        super().__init__()
        self.owner, self.labels = step, labels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.owner.scores(images, self.labels)


def images_per_second(
    step: Callable[..., None],
    batch: Callable[[int], tuple[Any, ...]],
    warmup: int,
    steps: int,
    device: torch.device,
) -> float:
    """Images per second of ``step(*batch(i))`` at step ``i`` (the images first, then what
    else the step takes: a conditional `MinimalStep`'s labels), timed after ``warmup``
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
