"""Every contract a plugin implements, each class's docstring its reference.

A plugin registers components through the hooks in `ganlab.hookspecs`; each component's
``build`` returns an object that meets one contract here:

========================  ==================================================================
component                 contract
========================  ==================================================================
data set                  `ImageDataset` (or ``ganlab.TensorImages``, decoded at once)
generator                 `Generator`: an ``nn.Module`` with ``latent_shape``; optionally
                          `ExposesIntermediates`
discriminator             any ``nn.Module``: ``D(images[, labels])`` -> one raw score per image
loss                      `GanLoss`
penalty                   `Penalty` (on D) or `GeneratorPenalty` (on G)
augmentation              `Augmentation`
metric                    `Metric`
callback, logger          `Observer`: an object with ``@ganlab.hookimpl`` event hooks
========================  ==================================================================

What the engine hands to them: `Critic` (D, as a penalty may call it), `StepScores` (the
step's own scores), `GeneratorPass` (G's pass in its update); to metrics and event hooks, the
run as a `ganlab.RunView` (`ganlab.runview`).

Penalties: the recipe's ``penalties:`` list adds each one's ``weight * value`` to its
network's loss at every update (or, with ``every: k``, ``weight * k * value`` every k-th step:
StyleGAN2's lazy regularization), inside the run's precision handling and, with several
processes, before the gradients are averaged; ``value`` is logged under the penalty's name.

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

Any loss, penalty, augmentation or callback may keep state (``state_dict()`` and
``load_state_dict(state)``, as torch's objects have them), saved in every checkpoint under its
component name and restored before step 1 of a ``--resume``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import nn

if TYPE_CHECKING:
    from ganlab.runview import RunView

# --- data and models -----------------------------------------------------------------------


@runtime_checkable
class ImageDataset(Protocol):
    """What a data set plugin's ``build`` returns (unless it returns `TensorImages`)."""

    #: ``(channels, height, width)`` of every image.
    image_shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> torch.Tensor:
        """The image at ``index``: float32, shape `image_shape`, values in ``[-1, 1]``."""
        ...


class Generator(nn.Module):
    """What a generator plugin's ``build`` returns: an ``nn.Module`` that maps latent vectors
    ``(N, *latent_shape)`` to images, with a ``latent_shape`` attribute.

    The type the core holds every generator as. Subclassing it is optional: a build function
    may return any ``nn.Module`` that has ``latent_shape`` (checked when it is built), since
    Python's types cannot say "an ``nn.Module`` that also has this attribute" otherwise.
    """

    #: the shape of one latent vector, without the batch dimension: ``(nz,)``, ``(nz, 1, 1)``
    latent_shape: tuple[int, ...]


# --- losses -------------------------------------------------------------------------------


#: Which D scores of the real batch a loss's `GanLoss.generator_loss` is given
#: (`GanLoss.needs_real_scores`).
RealScores = Literal["last", "current"]


class GanLoss:
    """Turns discriminator scores (raw logits) into the two players' losses.

    Subclass it and override `discriminator_loss` and `generator_loss`; override `readout`
    when scores have a natural reading (BCE: a probability), which the console shows as
    ``D(x)`` and ``D(G(z))``.

    A loss may keep state (a moving average, say): with ``state_dict()`` and
    ``load_state_dict(state)``, as torch's objects have them, it is saved in every checkpoint
    and restored exactly on ``--resume``; with ``statistics()`` (name -> 0-dim tensor) its
    values are logged at every step as ``<loss name>.<name>``.
    """

    #: What `generator_loss` needs besides D's scores of the fakes: None (the default)
    #: nothing; ``"last"`` D's scores of the real batch from D's last update (detached: no
    #: extra D pass); ``"current"`` the real batch scored again by D as it is after its
    #: update, as relativistic losses' reference code does (one D forward, no gradient).
    needs_real_scores: RealScores | None = None

    def discriminator_loss(
        self, real_scores: torch.Tensor, fake_scores: torch.Tensor
    ) -> torch.Tensor:
        """The loss D minimises, from its scores on a real batch and on a fake batch."""
        raise NotImplementedError

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss G minimises, from D's scores on G's fakes; ``real_scores`` are D's scores
        of the real batch when the loss declares `needs_real_scores` (else None)."""
        raise NotImplementedError

    def discriminator_penalty(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor | None:
        """A term added to D's loss that needs D itself, such as WGAN-GP's gradient penalty.

        Called at every D update with D, the real batch and the (detached) fakes. The
        default, None, adds nothing and costs nothing.
        """
        return None

    def readout(self, scores: torch.Tensor) -> torch.Tensor:
        """What a score means to a reader; identity unless the loss says otherwise."""
        return scores


# --- penalties ----------------------------------------------------------------------------


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


# --- augmentations ------------------------------------------------------------------------


class Augmentation:
    """Subclass it and override `__call__`; an adaptive augmentation (ADA) also overrides
    `observe`, `statistics` and the state methods."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Augment a batch ``(N, C, H, W)`` in ``[-1, 1]``, differentiably; same shape back."""
        raise NotImplementedError

    def observe(self, real_scores: torch.Tensor) -> None:
        """D's raw scores on the augmented real batch, after each of D's updates (ADA adapts
        its probability from their sign). Default: nothing."""

    def statistics(self) -> dict[str, torch.Tensor]:
        """Values logged at every step under the namespace ``aug``, such as ADA's ``{"p": p}``
        (0-dim tensors, left on the device). Default: none."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold to continue exactly (ADA's probability). Default: {}."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


# --- metrics, callbacks and loggers -------------------------------------------------------


class Metric(Protocol):
    """What a metric plugin's ``build`` returns: ``metric(run)``, the results by name.

    A function or any object with ``__call__``. The runner calls it with the run's view (a
    `ganlab.RunView`) as its one positional argument and converts every value with ``float()``. See
    `ganlab_register_metrics`.
    """

    def __call__(self, run: RunView, /) -> Mapping[str, float]: ...


class Observer(Protocol):
    """What a callback or logger plugin's ``build`` returns: any object whose methods
    decorated with ``@ganlab.hookimpl`` are event hooks (at least one; checked when it is
    built). The runner registers it with the plugin manager for one run.

    No method is required by name, so the protocol has no members: it names the role.
    """
