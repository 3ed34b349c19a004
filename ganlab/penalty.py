"""The contract of a penalty plugin: a regularizer on D, independent of the loss.

The recipe's ``penalties:`` list adds each one's ``weight * value`` to D's loss at every D
update (or, with ``every: k``, ``weight * k * value`` every k-th step: StyleGAN2's lazy
regularization), and logs ``value`` under the penalty's name. R1 (Mescheder et al. 2018) and
WGAN-GP's gradient penalty are built in.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: D as a penalty sees it: images -> one raw score per image (augmented, with the real
#: batch's labels for a conditional D, as in D's own update).
Critic = Callable[[torch.Tensor], torch.Tensor]


class Penalty:
    """Subclass it and override `value`. ``weight`` and ``every`` usually come from the
    penalty's params (``ganlab.Params`` fields of the same names)."""

    def __init__(self, weight: float, every: int = 1) -> None:
        self.weight = weight
        self.every = every

    def value(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The penalty, unweighted: a 0-dim tensor that D's parameters get gradients from.

        ``real`` is the real batch, ``fake`` the fakes (detached from G).
        """
        raise NotImplementedError
