"""The contract of an adversarial loss plugin."""

from __future__ import annotations

import torch
from torch import nn


class GanLoss:
    """Turns discriminator scores (raw logits) into the two players' losses.

    Subclass it and override `discriminator_loss` and `generator_loss`; override `readout`
    when scores have a natural reading (BCE: a probability), which the console shows as
    ``D(x)`` and ``D(G(z))``.
    """

    def discriminator_loss(
        self, real_scores: torch.Tensor, fake_scores: torch.Tensor
    ) -> torch.Tensor:
        """The loss D minimises, from its scores on a real batch and on a fake batch."""
        raise NotImplementedError

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        """The loss G minimises, from D's scores on G's fakes."""
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
