"""The training step: the DCGAN tutorial's, written once for any loss and penalty plugin.

1. D: scores on a real batch and on fakes ``G(z)`` (detached), ``loss.discriminator_loss``
   (plus ``loss.discriminator_penalty`` if the loss has one, and the recipe's penalties on D),
   one optimizer step; repeated ``train.d_steps`` times (once in the tutorial), each time on
   the next real batch.
2. G: D's scores on the last fakes, ``loss.generator_loss`` (plus the penalties on G), one
   optimizer step; then the moving average of G's weights moves towards them (``train.ema``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import Module

from ganlab.contracts import GeneratorPass, GeneratorPenalty, Penalty, StepScores, generate, given
from ganlab.engine.device import memory_format
from ganlab.engine.distributed import (
    average_gradients,
)
from ganlab.engine.graphs import graphed, step_begins
from ganlab.engine.run import Run
from ganlab.plugin_manager.blame import broken_contract
from ganlab.runview import StepStats

#: Class labels of a batch, or None (no classes).
ClassLabels = torch.Tensor | None


def generator_pass(
    generator: nn.Module,
    latents: torch.Tensor,
    labels: torch.Tensor | None,
    intermediates: bool,
    forward: Callable[..., torch.Tensor] | None = None,
) -> GeneratorPass:
    """G's pass on ``latents`` (and ``labels``) in a training step: through ``forward`` (a
    compiled G, say; default the plain ``generator``), or, with ``intermediates`` (a G
    penalty is due), through the plain generator's `ExposesIntermediates`, with the latents
    requiring gradients."""
    if intermediates:
        latents.requires_grad_(True)
        images, found = generate(generator, latents, labels)
    else:
        # `is None`, not `or`: a compiled module's truth test raises (it has no __len__).
        run = generator if forward is None else forward
        images, found = run(latents, *given(labels)), {}
    return GeneratorPass(generator, latents, images, labels, found)


class Step:
    """One training step of ``run``: ``train.d_steps`` D updates and one G update.

    ``loss_subject`` names the loss component in messages (`ganlab.plugin_manager.blame.describe`).
    """

    def __init__(self, run: Run, loss_subject: str = "the loss") -> None:
        self.run = run
        self.loss_subject = loss_subject
        self.layout = memory_format(run.recipe.train)
        # Compiled forward passes for the step; run.generator/discriminator stay the plain
        # modules, whose weights the compiled ones share (checkpoints and sampling use them).
        compiled = run.recipe.train.compile
        self.generator = torch.compile(run.generator) if compiled else run.generator
        self.discriminator = torch.compile(run.discriminator) if compiled else run.discriminator
        if run.cuda_graphs:
            self.generator, self.discriminator = graphed(run.generator), graphed(run.discriminator)
        elif run.eager_reason is not None and run.group.is_main:
            # Once per run, on the console: the option was asked for and is not in effect.
            print(f"ganlab: note: train.cuda_graphs is off: {run.eager_reason}.", file=sys.stderr)
        # Fakes get classes, on the device, as often as the data's (G or D takes them).
        self.class_weights = None
        if (run.g_takes_labels or run.d_takes_labels) and run.labels is not None:
            self.class_weights = run.labels.frequencies().float().to(run.device)
        # The recipe's penalties by the network they regularize.
        self.d_penalties = [(n, p) for n, p in run.penalties if isinstance(p, Penalty)]
        self.g_penalties = [(n, p) for n, p in run.penalties if isinstance(p, GeneratorPenalty)]
        # What reports statistics (logged as "<name>.<key>"), and the keys augmentations
        # reported (logged in their own namespace).
        reporting = [(run.recipe.loss.name, run.loss), *run.penalties]
        self.reporting: list[tuple[str, Callable[[], Mapping[str, torch.Tensor]]]] = []
        for name, obj in reporting:
            method = getattr(obj, "statistics", None)  # optional: a plugin may report none
            if callable(method):
                self.reporting.append((name, method))
        self.aug_keys: set[str] = set()
        self._critic = _Critic(self)  # one, given each D update's classes (`critic`)

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, index: int) -> StepStats:
        """Train on ``real`` (the step's real images, every D update's batch in a row) and
        their class ``labels`` (None: no classes), the batch ``index`` of the epoch; return
        the step's statistics."""
        run = self.run
        if run.cuda_graphs:
            step_begins()
        discriminator, loss = self.discriminator, run.loss
        precision, train = run.precision, run.recipe.train
        real = real.contiguous(memory_format=self.layout)
        extra: dict[str, torch.Tensor] = {}
        # G's penalties due at this step (lazily, every k-th step); none: nothing changes.
        g_penalties = [(n, p) for n, p in self.g_penalties if run.step % p.every == 0]

        # (1) D, on each real batch of the step and detached fakes.
        real_batches = real.split(train.batch_size)
        label_batches = labels.split(train.batch_size) if labels is not None else None
        for i, real_batch in enumerate(real_batches):
            real_labels = label_batches[i] if label_batches is not None else None
            last = i == len(real_batches) - 1
            with precision.autocast():
                real_scores = self.scores(discriminator, real_batch, real_labels)
                # Only the last fakes go on to G's update: the others need no graph through G.
                with torch.set_grad_enabled(last):
                    g_pass, fake_labels = self.fakes(len(real_batch), bool(g_penalties) and last)
                fake = g_pass.images
                fake_scores = self.scores(discriminator, fake.detach(), fake_labels)
                loss_d = loss.discriminator_loss(real_scores, fake_scores)
                self.check_scalar(loss_d, "discriminator_loss")
                # The plain D: a compiled one cannot take the penalty's double backward.
                critic = self.critic(real_labels)
                penalty = loss.discriminator_penalty(critic, real_batch, fake.detach())
                if penalty is not None:
                    self.check_scalar(penalty, "discriminator_penalty")
                    loss_d = loss_d + penalty
                step_scores = StepScores(
                    real_scores, fake_scores, real_batch, fake.detach(), real_labels, fake_labels
                )
                for name, term in self.d_penalties:
                    if run.step % term.every == 0:  # lazily, every k-th step (StyleGAN2)
                        args = (step_scores,) if term.reads_scores else ()  # the old form too
                        value = term.value(critic, real_batch, fake.detach(), *args)
                        self.check_scalar(value, "value", f"penalty {name!r}", term)
                        loss_d = loss_d + term.weight * term.every * value
                        extra[name] = value.detach()
            self.update(loss_d, run.opt_d, "discriminator")
            for augmentation in run.augmentations:
                augmentation.observe(real_scores.detach())

        # (2) G: the last fakes (or fresh ones, train.g_batch_size) through the updated D.
        if train.g_batch_size is not None:
            g_pass, fake_labels = self.fakes(train.g_batch_size, bool(g_penalties))
        fake = g_pass.images
        with precision.autocast():
            fake_scores_after = self.scores(discriminator, fake, fake_labels)
            if loss.needs_real_scores is None:
                loss_g = loss.generator_loss(fake_scores_after)
            else:
                reals = self.real_scores_for_g(real_scores, real_batch, real_labels)
                loss_g = loss.generator_loss(fake_scores_after, reals)
            self.check_scalar(loss_g, "generator_loss")
            for name, g_term in g_penalties:
                value = g_term.value(g_pass)
                self.check_scalar(value, "value", f"penalty {name!r}", g_term)
                loss_g = loss_g + g_term.weight * g_term.every * value
                extra[name] = value.detach()
        self.update(loss_g, run.opt_g, "generator")
        if run.generator_ema is not None:
            run.generator_ema.update_parameters(run.generator)
        for scheduler in run.schedulers.values():
            scheduler.step()

        run.step += 1
        run.images_seen += real.shape[0] * run.group.world  # every process's share
        for augmentation in run.augmentations:
            found = augmentation.statistics()
            self.aug_keys.update(found)
            extra.update(found)
        for name, statistics in self.reporting:
            for key, value in statistics().items():
                extra[f"{name}.{key}"] = value
        with torch.no_grad():
            return StepStats(
                step=run.step,
                epoch=run.epoch,
                index=index,
                loss_d=loss_d.detach(),
                loss_g=loss_g.detach(),
                d_real=loss.readout(real_scores.detach()).mean(),
                d_fake=loss.readout(fake_scores.detach()).mean(),
                d_fake_after=loss.readout(fake_scores_after.detach()).mean(),
                extra=extra,
            )

    def fakes(self, n: int, intermediates: bool = False) -> tuple[GeneratorPass, ClassLabels]:
        """``n`` fakes from fresh latent vectors, and their classes when G or D takes them:
        drawn (from the training RNG stream) as often as the classes occur in the data.

        With ``intermediates`` (a G penalty is due), the latents require gradients and the
        plain generator is run through `ExposesIntermediates` when it has it."""
        run = self.run
        latents = torch.randn((n, *run.generator.latent_shape), device=run.device)
        labels = None
        if self.class_weights is not None:
            labels = torch.multinomial(self.class_weights, n, replacement=True)
        g_labels = labels if run.g_takes_labels else None
        return generator_pass(
            run.generator, latents, g_labels, intermediates, self.generator
        ), labels

    def real_scores_for_g(
        self, last: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None
    ) -> torch.Tensor:
        """D's scores of the step's last real batch for a loss that needs them in G's
        update: those of D's last update, or (``"current"``) the batch scored again by D
        as it is now, without a graph (G's gradient does not go through them)."""
        if self.run.loss.needs_real_scores == "last":
            return last.detach()
        with torch.no_grad():
            return self.scores(self.discriminator, real, labels)

    def scores(
        self,
        discriminator: Callable[..., torch.Tensor],
        images: torch.Tensor,
        labels: torch.Tensor | None,
    ) -> torch.Tensor:
        """D's scores for ``images`` as D's updates see them: augmented by the recipe's
        ``augment:`` list, with their classes for a conditional D; flat, in float32."""
        for augmentation in self.run.augmentations:
            images = augmentation(images)
        d_labels = labels if self.run.d_takes_labels else None
        return discriminator(images, *given(d_labels)).reshape(-1).float()

    def critic(self, labels: torch.Tensor | None) -> _Critic:
        """D as penalties see it (`ganlab.Critic`): the plain module (a compiled one
        cannot take their double backward), augmented and given the real batch's classes
        (or the ones a penalty passes) as in D's update."""
        self._critic.labels = labels
        return self._critic

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, net: str) -> None:
        """Backward and one optimizer step in the run's precision; with several processes, on
        the gradients averaged over them."""
        model = getattr(self.run, net)
        self.run.precision.backward_and_step(
            loss, optimizer, net, before_step=lambda: average_gradients(model, self.run.group)
        )

    def check_scalar(
        self, value: Any, method: str, subject: str | None = None, owner: object = None
    ) -> None:
        """A loss or penalty method must return one number: a 0-dim tensor."""
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            return
        got = (
            f"a tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}"
        )
        raise broken_contract(
            subject or self.loss_subject,
            f"returned {got} from {method}; {'a penalty' if owner is not None else 'a loss'} "
            "must be one number, a 0-dim tensor (for example the .mean() of per-image values)",
            getattr(type(owner if owner is not None else self.run.loss), method),
        )


class _Critic(Module):
    """The plain D as the step calls it, for penalties: augmented, with the batch's labels."""

    def __init__(self, step: Step) -> None:
        super().__init__()
        self.step = step
        self.labels: torch.Tensor | None = None  # the real batch's, set at each D update

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        chosen = self.labels if labels is None else labels
        return self.step.scores(self.step.run.discriminator, images, chosen)
