"""The contract of an adversarial loss plugin."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

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
