"""The contract of an augmentation plugin: differentiable changes to the images D sees.

DiffAugment (Zhao et al. 2020) and ADA (Karras et al. 2020) train D on augmented images only:
every image D scores, real or fake, in D's update and in G's, goes through the recipe's
``augment:`` list first. The changes must be differentiable, so that G's gradient reaches it
through them, and must draw their random numbers from torch's global generator (the run's
checkpoints save it, so a resumed run augments exactly as the uninterrupted one).
"""

from __future__ import annotations

from typing import Any

import torch


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
