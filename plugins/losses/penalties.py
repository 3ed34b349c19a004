"""Penalties on D, independent of the loss: R1 (Mescheder et al. 2018) and WGAN-GP's gradient
penalty (Gulrajani et al. 2017), which the `wgan_gp` loss also uses (`gradient_penalty`).

Both differentiate D's scores with respect to its input with ``create_graph=True``, so the
penalty's own gradient reaches D's parameters (a double backward). The step gives them D as it
calls it in its update (the recipe's augmentations first, the real batch's classes for a
conditional D) and adds ``weight * every * value`` to D's loss every ``every``-th step.
"""

from __future__ import annotations

import torch
from pydantic import Field

import ganlab

#: D as a penalty gets it: images (and optionally other classes) -> one raw score per image.
Critic = ganlab.Critic


def input_gradient(critic: Critic, images: torch.Tensor) -> torch.Tensor:
    """The gradient of the sum of D's scores with respect to ``images`` (each score depends
    on its own image only, batch norm aside), kept differentiable for D's update."""
    scores = critic(images).float()
    (gradient,) = torch.autograd.grad(scores.sum(), images, create_graph=True)
    return gradient.float()


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's ``E[(||grad D(x_hat)|| - 1)^2]`` on random points ``x_hat`` between each real
    image and a fake (one uniform mixing weight per pair), unweighted."""
    # The 1-Lipschitz constraint, enforced softly where it matters: on the straight lines
    # between real and generated images.
    mix = torch.rand((real.shape[0], 1, 1, 1), device=real.device)
    between = torch.lerp(real, fake.to(real.dtype), mix).requires_grad_(True)
    norms = input_gradient(critic, between).flatten(1).norm(dim=1)
    return (norms - 1).square().mean()


def r1(critic: Critic, real: torch.Tensor) -> torch.Tensor:
    """R1: ``E[||grad D(x)||^2]`` over the real images, unweighted."""
    real = real.detach().requires_grad_(True)
    return input_gradient(critic, real).square().flatten(1).sum(dim=1).mean()


class R1Params(ganlab.Params):
    weight: float = Field(
        default=5.0,
        ge=0.0,
        description=(
            "the factor of E||grad D(x)||^2: gamma / 2 in the papers' notation (5: gamma 10, "
            "Mescheder et al.'s and StyleGAN2's value)"
        ),
    )
    every: int = Field(
        default=1,
        gt=0,
        description="apply it every this many steps, times this factor (StyleGAN2's lazy 16)",
    )


class R1(ganlab.Penalty):
    """Zero-centred gradient penalty on the real images (Mescheder et al. 2018)."""

    def value(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor,
        scores: ganlab.StepScores | None = None,
    ) -> torch.Tensor:
        return r1(critic, real)


def build_r1(params: R1Params) -> R1:
    """R1 (Mescheder et al. 2018): the squared gradient norm of D on real images."""
    return R1(params.weight, params.every)


class GradientPenaltyParams(ganlab.Params):
    weight: float = Field(default=10.0, ge=0.0, description="lambda, WGAN-GP's 10")
    every: int = Field(default=1, gt=0, description="apply it every this many steps, times this")


class GradientPenalty(ganlab.Penalty):
    """WGAN-GP's gradient penalty, for any loss."""

    def value(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor,
        scores: ganlab.StepScores | None = None,
    ) -> torch.Tensor:
        return gradient_penalty(critic, real, fake)


def build_gradient_penalty(params: GradientPenaltyParams) -> GradientPenalty:
    """WGAN-GP's gradient penalty (Gulrajani et al. 2017): (||grad D|| - 1)^2 on real-fake mixes."""
    return GradientPenalty(params.weight, params.every)


@ganlab.hookimpl
def ganlab_register_penalties(register: ganlab.Register) -> None:
    register("r1", build_r1, params=R1Params)
    register("gradient_penalty", build_gradient_penalty, params=GradientPenaltyParams)
