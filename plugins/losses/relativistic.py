"""Relativistic average losses (Jolicoeur-Martineau 2019, "The relativistic discriminator: a
key element missing from standard GAN", ICLR 2019), as her reference code computes them
(AlexiaJM/RelativisticGAN, ``code/GAN_losses_iter.py``, ``loss_D`` 6, 7 and 8).

D no longer says how real an image is, but how much more real it is than the other batch is
on average. With ``C`` D's raw score (the critic), the relativistic average scores are

    real: C(x) - mean(C(G(z)))        fake: C(G(z)) - mean(C(x))

and, with a loss's two halves ``f_real`` (push a score up) and ``f_fake`` (push it down),

    L_D = (mean(f_real(real)) + mean(f_fake(fake))) / 2
    L_G = (mean(f_fake(real)) + mean(f_real(fake))) / 2

(the paper's equations, halved as her code does): G also gains by making the real batch look
less real, so both batches give G a gradient. ``ragan`` (RaSGAN) takes the non-saturating
BCE halves ``f_real(y) = -log(sigmoid(y))``, ``f_fake(y) = -log(1 - sigmoid(y))``;
``ralsgan`` (RaLSGAN) ``(y - 1)^2`` and ``(y + 1)^2``; ``rahinge`` (RaHingeGAN)
``relu(1 - y)`` and ``relu(1 + y)``.

G's loss needs D's scores of a real batch. Her code draws a new real batch in G's step and
scores it with the updated D (without a graph to D); these losses ask the step for D's
scores of the step's real batch through the updated D (``real_scores: current``, one extra
D forward without gradient) or, to save that pass, for the scores of D's last update
(``real_scores: last``, from D before its update).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

import ganlab


class RelativisticParams(ganlab.Params):
    real_scores: Literal["current", "last"] = Field(
        default="current",
        description=(
            "D's scores of the real batch in G's loss: `current` rescores it with the updated "
            "D (the reference code's; one D forward more per step), `last` reuses those of D's "
            "update (no extra pass; D as it was before its update)"
        ),
    )


class RelativisticAverageLoss(ganlab.GanLoss):
    """A relativistic average loss; a subclass gives its two halves, `push_up` (``f_real``:
    small when its argument is large) and `push_down` (``f_fake``)."""

    needs_real_scores: Literal["current", "last"] | None = "current"

    def __init__(self, real_scores: Literal["current", "last"] = "current") -> None:
        # Per instance, as the recipe chooses (the contract's class attribute is the default).
        self.needs_real_scores = real_scores

    def push_up(self, relative: torch.Tensor) -> torch.Tensor:
        """Per-score loss that is small when ``relative`` is large (``f_real``)."""
        raise NotImplementedError

    def push_down(self, relative: torch.Tensor) -> torch.Tensor:
        """Per-score loss that is small when ``relative`` is small (``f_fake``)."""
        raise NotImplementedError

    def discriminator_loss(
        self, real_scores: torch.Tensor, fake_scores: torch.Tensor
    ) -> torch.Tensor:
        real = real_scores - fake_scores.mean()  # how much more real than the average fake
        fake = fake_scores - real_scores.mean()
        return (self.push_up(real).mean() + self.push_down(fake).mean()) / 2

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        if real_scores is None:
            raise ValueError(
                f"{type(self).__name__}.generator_loss needs D's scores of the real batch "
                "(real_scores=...), as its needs_real_scores declares"
            )
        real = real_scores - fake_scores.mean()  # real_scores come detached: no graph to D
        fake = fake_scores - real_scores.mean()
        # The roles swap: G wants its fakes above the reals and the reals below its fakes.
        return (self.push_down(real).mean() + self.push_up(fake).mean()) / 2

    # readout: the identity (raw scores). Only differences of scores mean something to these
    # losses (D may add any constant to all of them), so sigmoid(D(x)) would be no probability;
    # the console's D(x) and D(G(z)) are raw and their gap is what D learns.


class RaSGAN(RelativisticAverageLoss):
    """RaSGAN: BCE on the relativistic scores (non-saturating for G as for D)."""

    def push_up(self, relative: torch.Tensor) -> torch.Tensor:
        return F.softplus(-relative)  # -log(sigmoid(y)), stable for any y

    def push_down(self, relative: torch.Tensor) -> torch.Tensor:
        return F.softplus(relative)  # -log(1 - sigmoid(y))


class RaLSGAN(RelativisticAverageLoss):
    """RaLSGAN: least squares on the relativistic scores, targets +1 and -1."""

    def push_up(self, relative: torch.Tensor) -> torch.Tensor:
        return (relative - 1).square()

    def push_down(self, relative: torch.Tensor) -> torch.Tensor:
        return (relative + 1).square()


class RaHingeGAN(RelativisticAverageLoss):
    """RaHingeGAN: hinge on the relativistic scores, margin 1."""

    def push_up(self, relative: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - relative)

    def push_down(self, relative: torch.Tensor) -> torch.Tensor:
        return F.relu(1 + relative)


def build_ragan(params: RelativisticParams) -> RaSGAN:
    """Relativistic average standard GAN (RaSGAN, Jolicoeur-Martineau 2019).

    BCE on ``C(x) - mean C(G(z))`` and ``C(G(z)) - mean C(x)``."""
    return RaSGAN(params.real_scores)


def build_ralsgan(params: RelativisticParams) -> RaLSGAN:
    """Relativistic average least-squares GAN (RaLSGAN, Jolicoeur-Martineau 2019)."""
    return RaLSGAN(params.real_scores)


def build_rahinge(params: RelativisticParams) -> RaHingeGAN:
    """Relativistic average hinge GAN (RaHingeGAN, Jolicoeur-Martineau 2019)."""
    return RaHingeGAN(params.real_scores)


@ganlab.hookimpl
def ganlab_register_losses(register: ganlab.Register) -> None:
    register("ragan", build_ragan, params=RelativisticParams)
    register("ralsgan", build_ralsgan, params=RelativisticParams)
    register("rahinge", build_rahinge, params=RelativisticParams)
