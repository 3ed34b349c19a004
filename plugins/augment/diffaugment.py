"""Differentiable augmentations for small data sets: DiffAugment (Zhao et al. 2020) and ADA's
adaptive probability (Karras et al. 2020), on DiffAugment's three operations.

The operations are DiffAugment's, as its paper and reference code define them, on images in
[-1, 1] (the range DiffAugment itself works in):

- ``color``: per image, brightness ``x + (u - 0.5)``, then saturation
  ``(x - mean_c) * 2u + mean_c`` (the mean over the channels of each pixel), then contrast
  ``(x - mean) * (u + 0.5) + mean`` (the mean of the whole image), each with its own
  ``u ~ U(0, 1)``; nothing is clipped.
- ``translation``: per image, an integer shift of up to 1/8 of each side (rounded), in both
  directions, with zeros where the image moved away.
- ``cutout``: per image, a square of half the image side (rounded) set to zero, centred
  anywhere in the image (so it may be cut by the border).

Why not a library: kornia (the maintained library of differentiable image operations) has
each of these in some form, but none as DiffAugment defines it: its colour adjustments expect
[0, 1] and clamp to it (a clamped pixel passes no gradient to G, and DiffAugment never
clips), its saturation goes through HSV instead of blending with the channel mean, its
contrast scales around 0 instead of the image mean, its translation resamples bilinearly
instead of shifting whole pixels, and its random erasing keeps the rectangle inside the image.
The three operations are about 40 lines of torch here, so no dependency is added.

Every random number comes from torch's global generator, which the run's checkpoints save: a
resumed run augments exactly as the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

import ganlab

Policy = Literal["color", "translation", "cutout"]
ALL: tuple[Policy, ...] = ("color", "translation", "cutout")


def _uniform(images: torch.Tensor) -> torch.Tensor:
    """One ``U(0, 1)`` number per image, shaped to broadcast over ``(N, C, H, W)``."""
    return torch.rand(images.shape[0], 1, 1, 1, dtype=images.dtype, device=images.device)


def brightness(images: torch.Tensor) -> torch.Tensor:
    """Add ``U(-0.5, 0.5)`` to every pixel of each image."""
    return images + (_uniform(images) - 0.5)


def saturation(images: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's distance from its channel mean by ``U(0, 2)`` (0: gray)."""
    mean = images.mean(dim=1, keepdim=True)
    return (images - mean) * (_uniform(images) * 2) + mean


def contrast(images: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from its own mean by ``U(0.5, 1.5)``."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * (_uniform(images) + 0.5) + mean


def translation(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its side each way, zero-padded."""
    n, _, height, width = images.shape
    reach_y, reach_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = torch.randint(-reach_y, reach_y + 1, (n, 1), device=images.device)
    shift_x = torch.randint(-reach_x, reach_x + 1, (n, 1), device=images.device)
    padded = F.pad(images, [reach_x, reach_x, reach_y, reach_y])  # zeros around
    # Output pixel (i, j) reads padded pixel (i + reach - shift): the image moves by `shift`.
    rows = torch.arange(height, device=images.device) + reach_y - shift_y  # (N, H)
    cols = torch.arange(width, device=images.device) + reach_x - shift_x  # (N, W)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    moved = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return moved.permute(0, 3, 1, 2)


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of each side, centred at a random place of each image."""
    n, _, height, width = images.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    # Centres anywhere in the image (DiffAugment's range), so the square may leave it.
    top = torch.randint(0, height + (1 - size_y % 2), (n, 1), device=images.device) - size_y // 2
    left = torch.randint(0, width + (1 - size_x % 2), (n, 1), device=images.device) - size_x // 2
    rows = torch.arange(height, device=images.device)
    cols = torch.arange(width, device=images.device)
    in_rows = (rows >= top) & (rows < top + size_y)  # (N, H)
    in_cols = (cols >= left) & (cols < left + size_x)  # (N, W)
    cut = in_rows[:, None, :, None] & in_cols[:, None, None, :]  # (N, 1, H, W)
    return images * (~cut).to(images.dtype)


#: The operations of each policy, in the order DiffAugment applies them.
OPERATIONS: dict[Policy, tuple[Callable[[torch.Tensor], torch.Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


class DiffAugmentParams(ganlab.Params):
    policy: list[Policy] = Field(
        default_factory=lambda: list(ALL),
        min_length=1,
        description="DiffAugment's operations, applied in this order: color, translation, cutout",
    )


class DiffAugment(ganlab.Augmentation):
    """Every operation of the policy on every image, each with its own random strength."""

    def __init__(self, policy: list[Policy]) -> None:
        self.operations = [op for name in policy for op in OPERATIONS[name]]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for operation in self.operations:
            images = operation(images)
        return images.contiguous()


def build_diffaugment(params: DiffAugmentParams) -> DiffAugment:
    """DiffAugment (Zhao et al. 2020): color, translation and cutout on every image D sees."""
    return DiffAugment(params.policy)


class ADAParams(ganlab.Params):
    policy: list[Policy] = Field(
        default_factory=lambda: list(ALL),
        min_length=1,
        description="the operations, each applied to an image with probability p",
    )
    target: float = Field(
        default=0.6,
        gt=0.0,
        lt=1.0,
        description="the value of E[sign(D(real))] that p is steered toward (ADA's r_t target)",
    )
    interval: int = Field(
        default=4, gt=0, description="adjust p every this many D updates, from their real scores"
    )
    kimg: float = Field(
        default=500.0,
        gt=0.0,
        description=(
            "thousands of real images over which p can go from 0 to 1 (ADA's 500 is for runs "
            "of millions of images; a run of 2,500 steps of 64 wants about 20)"
        ),
    )
    initial_p: float = Field(default=0.0, ge=0.0, le=1.0, description="p at the start")


class ADA(ganlab.Augmentation):
    """Each operation applied to each image with probability ``p``; ``p`` follows D's
    overfitting: every ``interval`` D updates, ``r_t = E[sign(D(real))]`` over them moves
    ``p`` up (r_t above ``target``) or down by ``images / (kimg * 1000)``, clamped to [0, 1].

    ``p`` and the sign accumulator stay on the device (no host transfer per step) and are the
    state a checkpoint keeps. With several processes the signs are summed over all of them
    first, as StyleGAN2-ADA does, so every process keeps the same ``p``.
    """

    def __init__(self, params: ADAParams) -> None:
        self.operations = [op for name in params.policy for op in OPERATIONS[name]]
        self.target, self.interval = params.target, params.interval
        self.images_to_full = params.kimg * 1000
        self.p = torch.tensor(params.initial_p)
        self.signs = torch.zeros(())  # sum of sign(D(real)) since the last adjustment
        self.count = 0  # real scores in that sum
        self.updates = 0  # D updates since the last adjustment

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        p = self.p.to(images.device, images.dtype)
        for operation in self.operations:
            # Draw for every image whatever p is, so that the RNG stream does not depend on p.
            chosen = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < p
            images = torch.where(chosen, operation(images), images)
        return images.contiguous()

    def observe(self, real_scores: torch.Tensor) -> None:
        # On D's device from the first update on: statistics() must be there with the rest.
        self.p = self.p.to(real_scores.device)
        self.signs = self.signs.to(real_scores.device) + real_scores.detach().sign().sum()
        self.count += real_scores.numel()
        self.updates += 1
        if self.updates < self.interval:
            return
        signs, count = self.signs, float(self.count)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            total = torch.stack([signs.float(), torch.tensor(count, device=signs.device)])
            torch.distributed.all_reduce(total)
            signs, count = total[0], float(total[1])  # one transfer per interval
        rate = signs / count  # r_t, the mean sign of D's scores on reals, in [-1, 1]
        step = torch.sign(rate - self.target) * (count / self.images_to_full)
        self.p = (self.p + step).clamp(0.0, 1.0)
        self.signs, self.count, self.updates = torch.zeros((), device=signs.device), 0, 0

    def statistics(self) -> dict[str, torch.Tensor]:
        return {"p": self.p}

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self.p.detach().cpu(),
            "signs": self.signs.detach().cpu(),
            "count": self.count,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.signs = state["p"].clone(), state["signs"].clone()
        self.count, self.updates = int(state["count"]), int(state["updates"])


def build_ada(params: ADAParams) -> ADA:
    """ADA (Karras et al. 2020): each operation with probability p, adapted to D's overfitting."""
    return ADA(params)


@ganlab.hookimpl
def ganlab_register_augmentations(register: ganlab.Register) -> None:
    register("diffaugment", build_diffaugment, params=DiffAugmentParams)
    register("ada", build_ada, params=ADAParams)
