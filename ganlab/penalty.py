"""The contracts of penalty plugins: regularizers on D or on G, independent of the loss.

The recipe's ``penalties:`` list adds each one's ``weight * value`` to its network's loss at
every update (or, with ``every: k``, ``weight * k * value`` every k-th step: StyleGAN2's lazy
regularization), inside the run's precision handling and, with several processes, before the
gradients are averaged; ``value`` is logged under the penalty's name.

- A `Penalty` regularizes D. It is given D as D's update calls it (a `Critic`), the real
  batch and the fakes; one that declares ``reads_scores`` also gets the step's own scores
  (`StepScores`): what D's loss was computed from, so LeCam and consistency regularization
  cost no extra D pass. R1 (Mescheder et al. 2018) and WGAN-GP's gradient penalty are built in.
- A `GeneratorPenalty` regularizes G, in G's update. It is given a `GeneratorPass`: G, the
  latent vectors and classes of the fakes G's loss is computed on, those fakes, and what
  a generator exposes through the optional `ExposesIntermediates` protocol (a mapping
  network's ``w``), so path-length regularization is a plain plugin.

Any penalty may keep state (``state_dict()``/``load_state_dict(state)``, saved in every
checkpoint) and report ``statistics()``, logged as ``<penalty name>.<name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn


class Critic(Protocol):
    """D as a penalty sees it: ``critic(images)`` gives one raw score per image, float32
    ``(N,)``, as D's update scores them (through the recipe's augmentations, with the real
    batch's classes for a conditional D); ``critic(images, labels)`` scores them with other
    classes (the fakes' ``StepScores.fake_labels``), which an unconditional D ignores."""

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class StepScores:
    """D's scores in the D update a penalty is computed in: the ones D's loss was given.

    ``real`` and ``fake`` are float32 ``(N,)`` tensors that still carry their graph to D's
    parameters (a penalty on them trains D); ``real_images`` and ``fake_images`` are the
    images they score before augmentation (the fakes detached from G), with their classes
    (None for a model without classes).
    """

    real: torch.Tensor
    fake: torch.Tensor
    real_images: torch.Tensor
    fake_images: torch.Tensor
    real_labels: torch.Tensor | None = None
    fake_labels: torch.Tensor | None = None


@runtime_checkable
class ExposesIntermediates(Protocol):
    """The optional protocol of a generator whose penalties need more than its images.

    ``forward_with_intermediates(latents, *labels)`` returns what ``forward`` does and a
    mapping of named tensors computed on the way that the images depend on (StyleGAN2:
    ``{"w": ...}``, the mapping network's output), with the same random draws as
    ``forward``. The step calls it instead of ``forward`` for the fakes of G's update when
    a `GeneratorPenalty` is due at that step.
    """

    def forward_with_intermediates(
        self, latents: torch.Tensor, *labels: torch.Tensor
    ) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]: ...


@dataclass
class GeneratorPass:
    """What a `GeneratorPenalty` is given: one pass of G in G's update.

    ``images`` are the fakes G's loss is computed on, with their graph to G's parameters
    (and to ``latents`` and ``intermediates`` when those require gradients: they do when the
    penalty is due); ``labels`` their classes (None for an unconditional G);
    ``intermediates`` what the generator exposes (`ExposesIntermediates`; {} if it does
    not). ``generator`` is the plain module, for a penalty that runs G again on a batch of
    its own (`generate`), as StyleGAN2's path-length regularization does.
    """

    generator: nn.Module
    latents: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor | None = None
    intermediates: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def generate(
        self, latents: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
        """G's images for ``latents`` (and ``labels``, for a conditional G) and its
        intermediates ({} for a generator without the protocol), with their graph."""
        return generate(self.generator, latents, labels)


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


def given(labels: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """The labels argument of a model call: ``(labels,)``, or none."""
    return () if labels is None else (labels,)


def generate(
    generator: nn.Module, latents: torch.Tensor, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
    """``generator``'s images for ``latents`` (and ``labels``) and what it exposes through
    `ExposesIntermediates` ({} for a generator without the protocol)."""
    args = (latents,) if labels is None else (latents, labels)
    if isinstance(generator, ExposesIntermediates):
        images, found = generator.forward_with_intermediates(*args)
        return images, dict(found)
    return generator(*args), {}


class Penalty:
    """A penalty on D. Subclass it and override `value`. ``weight`` and ``every`` usually
    come from the penalty's params (``ganlab.Params`` fields of the same names)."""

    #: Whether `value` is also given the step's own scores (``scores=StepScores``).
    reads_scores: ClassVar[bool] = False

    def __init__(self, weight: float, every: int = 1) -> None:
        self.weight = weight
        self.every = every

    def value(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor,
        scores: StepScores | None = None,
    ) -> torch.Tensor:
        """The penalty, unweighted: a 0-dim tensor that D's parameters get gradients from.

        ``real`` is the real batch, ``fake`` the fakes (detached from G); ``scores`` the
        step's own scores (`StepScores`) for a penalty that declares ``reads_scores = True``,
        else None (a penalty without them may leave the argument out).
        """
        raise NotImplementedError


class GeneratorPenalty:
    """A penalty on G, added to G's loss in G's update. Subclass it and override `value`."""

    def __init__(self, weight: float, every: int = 1) -> None:
        self.weight = weight
        self.every = every

    def value(self, g: GeneratorPass) -> torch.Tensor:
        """The penalty, unweighted: a 0-dim tensor that G's parameters get gradients from."""
        raise NotImplementedError
