"""Regularizers of D that read the step's own scores (``Penalty.reads_scores``): LeCam
(Tseng et al. 2021) and balanced consistency regularization (bCR, Zhao et al. 2021).

Both are given `ganlab.StepScores`: D's scores of the real batch and of the fakes, the very
ones D's loss was computed from, with their graph to D. LeCam costs no D pass at all; bCR
costs one per side, for D's scores of the transformed images.

- ``lecam``: Tseng, Jiang, Liu, Yang, Yang, "Regularizing Generative Adversarial Networks
  under Limited Data", CVPR 2021; their code: google/lecam-gan (``biggan_cifar/losses.py``,
  ``third_party/train_fns.py``, ``stylegan2/lecam_loss.py``).
- ``bcr``: Zhao, Singh, Lee, Zhang, Odena, Zhang, "Improved Consistency Regularization for
  GANs", AAAI 2021 (the consistency term of Zhang et al., "Consistency Regularization for
  Generative Adversarial Networks", ICLR 2020, on the fakes as well as the reals).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

import ganlab
from ganlab_plugins.augment.diffaugment import translation
from ganlab_plugins.losses.penalties import Critic


class LeCamParams(ganlab.Params):
    weight: float = Field(
        default=0.3,
        ge=0.0,
        description=(
            "lambda, the factor of R_LC in D's loss (0.3: the authors' BigGAN scripts for "
            "CIFAR at 10-100% of the data)"
        ),
    )
    decay: float = Field(
        default=0.99,
        ge=0.0,
        lt=1.0,
        description="decay of the moving averages of D's mean real and fake scores per D update",
    )
    start: int = Field(
        default=0,
        ge=0,
        description=(
            "D updates before the penalty is applied (the averages are kept from the first); "
            "the authors' BigGAN code waits 1,000 iterations, their StyleGAN2 code none"
        ),
    )


class LeCam(ganlab.Penalty):
    """``R_LC = mean(relu(D(x) - alpha_F)^2) + mean(relu(alpha_R - D(G(z)))^2)``.

    ``alpha_R`` and ``alpha_F`` are exponential moving averages of D's mean score on the real
    batches and on the fakes, updated with the current batch before the penalty is computed
    (as both of the authors' implementations do), bias-corrected as their StyleGAN2 code's
    ``assign_moving_average(zero_debias=True)``: the average of the first update is that
    update's mean, not ``(1 - decay)`` times it. The penalty keeps D's real scores from rising
    above what fakes have lately scored and its fake scores from sinking below what reals have
    lately scored, so D cannot drive them apart without bound on a small data set. With
    ``start``, the first ``start`` D updates only move the averages (the value is 0), as the
    authors' BigGAN code does for its first 1,000 iterations.

    The averages are state: saved in checkpoints and restored exactly on ``--resume``, and
    logged as ``lecam.ema_real`` and ``lecam.ema_fake``. With several processes, each
    batch's means are averaged over the processes first, so every process keeps the same.
    """

    reads_scores = True

    def __init__(self, weight: float, decay: float, start: int = 0) -> None:
        super().__init__(weight)
        self.decay, self.start = decay, start
        self.updates = 0  # D updates seen, for `start`
        # Sums decay-weighted means, and the sum of their weights (1 - decay^t after t
        # updates); the averages are their ratio. All on D's device from the first update.
        self.real_sum = torch.zeros(())
        self.fake_sum = torch.zeros(())
        self.weight_sum = torch.zeros(())

    def value(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor,
        scores: ganlab.StepScores | None = None,
    ) -> torch.Tensor:
        assert scores is not None  # reads_scores: the step gives them
        self.update(scores.real.detach().mean(), scores.fake.detach().mean())
        if self.updates <= self.start:
            return scores.real.new_zeros(())  # not yet: the averages settle first
        ema_real, ema_fake = self.averages()
        above = F.relu(scores.real - ema_fake).square().mean()
        below = F.relu(ema_real - scores.fake).square().mean()
        return above + below

    def update(self, real_mean: torch.Tensor, fake_mean: torch.Tensor) -> None:
        """Move the averages by one D update's mean scores (on the device, no host sync)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            means = torch.stack([real_mean, fake_mean])
            torch.distributed.all_reduce(means)
            real_mean, fake_mean = means / torch.distributed.get_world_size()
        device, keep = real_mean.device, self.decay
        self.updates += 1
        self.real_sum = self.real_sum.to(device) * keep + (1 - keep) * real_mean
        self.fake_sum = self.fake_sum.to(device) * keep + (1 - keep) * fake_mean
        self.weight_sum = self.weight_sum.to(device) * keep + (1 - keep)

    def averages(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha_R, alpha_F)``, bias-corrected (both 0 before the first update)."""
        weight = self.weight_sum.clamp_min(torch.finfo(self.weight_sum.dtype).tiny)
        return self.real_sum / weight, self.fake_sum / weight

    def statistics(self) -> dict[str, torch.Tensor]:
        ema_real, ema_fake = self.averages()
        return {"ema_real": ema_real, "ema_fake": ema_fake}

    def state_dict(self) -> dict[str, Any]:
        return {
            "real_sum": self.real_sum.detach().cpu(),
            "fake_sum": self.fake_sum.detach().cpu(),
            "weight_sum": self.weight_sum.detach().cpu(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.real_sum = state["real_sum"].clone()
        self.fake_sum = state["fake_sum"].clone()
        self.weight_sum = state["weight_sum"].clone()
        self.updates = int(state["updates"])


def build_lecam(params: LeCamParams) -> LeCam:
    """LeCam regularization (Tseng et al. 2021): D's scores anchored to moving averages.

    For limited data, with DiffAugment or ADA, as the paper pairs them."""
    return LeCam(params.weight, params.decay, params.start)


class BCRParams(ganlab.Params):
    real_weight: float = Field(
        default=10.0, ge=0.0, description="lambda_real, the factor of the real images' term"
    )
    fake_weight: float = Field(
        default=10.0, ge=0.0, description="lambda_fake, the factor of the fakes' term"
    )
    flip: bool = Field(default=True, description="T flips each image left-right with p 1/2")
    translation: float = Field(
        default=0.125,
        ge=0.0,
        lt=0.5,
        description=(
            "T shifts each image by whole pixels, up to this fraction of each side each way "
            "(1/8: 4 pixels at 32 px), zero-filled; 0 shifts nothing"
        ),
    )


class ConsistencyTransform:
    """bCR's ``T``: a random left-right flip and a small random shift per image.

    Every random number comes from torch's global generator (the run's training stream,
    saved in checkpoints), so a resumed run draws exactly as the uninterrupted one.
    """

    def __init__(self, flip: bool, translation: float) -> None:
        self.flip, self.translation = flip, translation

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.flip:
            flipped = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < 0.5
            images = torch.where(flipped, images.flip(3), images)
        if self.translation > 0:
            images = translation(images, self.translation)  # DiffAugment's whole-pixel shift
        return images


class BalancedConsistency(ganlab.Penalty):
    """``lambda_real * mean((D(x) - D(T(x)))^2) + lambda_fake * mean((D(G(z)) - D(T(G(z))))^2)``.

    ``D(x)`` and ``D(G(z))`` are the step's own scores (`ganlab.StepScores`); only
    ``D(T(x))`` and ``D(T(G(z)))`` are scored here, through the critic: D as its update
    calls it, so with an ``augment:`` list the transformed images are augmented too (by
    their own draws) and the term also asks D to agree across augmentations. The fakes are
    detached from G: the penalty trains D only (the paper's bCR is a term of D's loss).
    The two unweighted terms are logged as ``bcr.real`` and ``bcr.fake``.
    """

    reads_scores = True

    def __init__(self, params: BCRParams) -> None:
        super().__init__(weight=1.0)  # the two lambdas are inside the value
        self.real_weight, self.fake_weight = params.real_weight, params.fake_weight
        self.transform = ConsistencyTransform(params.flip, params.translation)
        self.terms: dict[str, torch.Tensor] = {}

    def value(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor,
        scores: ganlab.StepScores | None = None,
    ) -> torch.Tensor:
        assert scores is not None  # reads_scores: the step gives them
        real_term = (scores.real - self.rescore(critic, scores.real_images)).square().mean()
        # The fakes' own classes for a conditional D (the critic's default is the reals').
        fake_images = scores.fake_images.detach()
        fake_scores = self.rescore(critic, fake_images, scores.fake_labels)
        fake_term = (scores.fake - fake_scores).square().mean()
        self.terms = {"real": real_term.detach(), "fake": fake_term.detach()}
        return self.real_weight * real_term + self.fake_weight * fake_term

    def rescore(
        self, critic: Critic, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """D's scores of ``T(images)`` (with ``labels``, else the reals'), flat, float32."""
        return critic(self.transform(images), labels).reshape(-1).float()

    def statistics(self) -> dict[str, torch.Tensor]:
        return dict(self.terms)


def build_bcr(params: BCRParams) -> BalancedConsistency:
    """Balanced consistency regularization (bCR, Zhao et al. 2021) on reals and fakes.

    D's scores of each image and of its flipped, shifted copy are kept close."""
    return BalancedConsistency(params)


@ganlab.hookimpl
def ganlab_register_penalties(register: ganlab.Register) -> None:
    register("lecam", build_lecam, params=LeCamParams)
    register("bcr", build_bcr, params=BCRParams)
