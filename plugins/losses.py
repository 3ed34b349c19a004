"""The tutorial's loss: binary cross-entropy, real 1 / fake 0, non-saturating G loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

import ganlab


class BCEParams(ganlab.Params):
    real_label: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="target for real images; below 1 is one-sided label smoothing",
    )


class BCELoss(ganlab.GanLoss):
    """BCE on logits: the same function as the tutorial's Sigmoid + BCELoss, but computed
    as log-sigmoid, so it neither overflows nor loses precision under mixed precision."""

    def __init__(self, real_label: float = 1.0) -> None:
        self.real_label = real_label

    def discriminator_loss(
        self, real_scores: torch.Tensor, fake_scores: torch.Tensor
    ) -> torch.Tensor:
        real = F.binary_cross_entropy_with_logits(
            real_scores, torch.full_like(real_scores, self.real_label)
        )
        fake = F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
        return real + fake  # the tutorial's errD = errD_real + errD_fake

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        # Non-saturating: G maximises log D(G(z)) by labelling its fakes as real (1).
        return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))

    def readout(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(scores)  # D's probability that the image is real


def build_bce(params: BCEParams) -> BCELoss:
    """Binary cross-entropy, non-saturating generator loss (the DCGAN tutorial's)."""
    return BCELoss(params.real_label)


@ganlab.hookimpl
def ganlab_register_losses(register: ganlab.Register) -> None:
    register("bce", build_bce, params=BCEParams)
