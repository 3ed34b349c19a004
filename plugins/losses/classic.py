"""Adversarial losses: the tutorial's binary cross-entropy (real 1 / fake 0, non-saturating
G loss), the hinge loss (Lim & Ye 2017; SAGAN, BigGAN), least squares (LSGAN, Mao et al.
2017) and the Wasserstein loss with gradient penalty (WGAN-GP, Gulrajani et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import ganlab
from ganlab_plugins.losses.penalties import gradient_penalty


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

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        # Non-saturating: G maximises log D(G(z)) by labelling its fakes as real (1).
        return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))

    def readout(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(scores)  # D's probability that the image is real


def build_bce(params: BCEParams) -> BCELoss:
    """Binary cross-entropy, non-saturating generator loss (the DCGAN tutorial's)."""
    return BCELoss(params.real_label)


class HingeLoss(ganlab.GanLoss):
    """D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); G: -mean(D(G(z)))."""

    def discriminator_loss(
        self, real_scores: torch.Tensor, fake_scores: torch.Tensor
    ) -> torch.Tensor:
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        return -fake_scores.mean()


def build_hinge(params: ganlab.NoParams) -> HingeLoss:
    """Hinge loss (SAGAN, BigGAN): D's scores are margins, not probabilities."""
    return HingeLoss()


class LSGANParams(ganlab.Params):
    real_target: float = Field(default=1.0, description="the score D should give real images")
    fake_target: float = Field(default=0.0, description="the score D should give fakes")


class LeastSquaresLoss(ganlab.GanLoss):
    """D: (D(x) - a)^2 / 2 + (D(G(z)) - b)^2 / 2; G: (D(G(z)) - a)^2 / 2 (a=1, b=0)."""

    def __init__(self, real_target: float, fake_target: float) -> None:
        self.real_target, self.fake_target = real_target, fake_target

    def discriminator_loss(
        self, real_scores: torch.Tensor, fake_scores: torch.Tensor
    ) -> torch.Tensor:
        real = (real_scores - self.real_target).square().mean()
        fake = (fake_scores - self.fake_target).square().mean()
        return 0.5 * (real + fake)

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        return 0.5 * (fake_scores - self.real_target).square().mean()


def build_lsgan(params: LSGANParams) -> LeastSquaresLoss:
    """Least-squares GAN loss (Mao et al. 2017)."""
    return LeastSquaresLoss(params.real_target, params.fake_target)


class WGANGPParams(ganlab.Params):
    penalty_weight: float = Field(
        default=10.0,
        ge=0.0,
        description=(
            "weight of the gradient penalty (lambda); 0 leaves it out, e.g. for the "
            "`gradient_penalty` entry of `penalties:`, the same penalty"
        ),
    )


class WassersteinGPLoss(ganlab.GanLoss):
    """D (the critic): mean(D(G(z))) - mean(D(x)) + lambda * E[(|grad D(x_hat)| - 1)^2],
    x_hat on random points between real and fake images; G: -mean(D(G(z)))."""

    def __init__(self, penalty_weight: float) -> None:
        self.penalty_weight = penalty_weight

    def discriminator_loss(
        self, real_scores: torch.Tensor, fake_scores: torch.Tensor
    ) -> torch.Tensor:
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        return -fake_scores.mean()

    def discriminator_penalty(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor | None:
        if self.penalty_weight == 0:
            return None  # no double backward for nothing (the `penalties:` list may have it)
        return self.penalty_weight * gradient_penalty(discriminator, real, fake)


def build_wgan_gp(params: WGANGPParams) -> WassersteinGPLoss:
    """Wasserstein loss with gradient penalty (WGAN-GP); pair it with train.d_steps: 5.

    D must not use batch norm (the penalty is per image): dcgan's norm: layer or none.
    """
    return WassersteinGPLoss(params.penalty_weight)


@ganlab.hookimpl
def ganlab_register_losses(register: ganlab.Register) -> None:
    register("bce", build_bce, params=BCEParams)
    register("hinge", build_hinge)
    register("lsgan", build_lsgan, params=LSGANParams)
    register("wgan_gp", build_wgan_gp, params=WGANGPParams)
