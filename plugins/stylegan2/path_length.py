"""Path-length regularization (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", section 3.2), a penalty on G, as the authors' code computes it
(NVlabs/stylegan2-ada-pytorch, ``training/loss.py``, the ``Gpl`` phase).

G is run again on the first ``N / batch_shrink`` latent vectors of the step's fakes (through
`ganlab.GeneratorPass.generate`, so it needs a generator that exposes ``w``:
`ganlab.ExposesIntermediates`, as ``stylegan2`` does). For random images ``y`` of unit
variance scaled by ``1 / sqrt(H * W)``, each image's path length is ``|J_w^T y|``, the gradient
of ``sum(G(w) * y)`` with respect to its ``w`` (the squared norm averaged over the ws of a
per-layer w, then the square root). The penalty is the mean of ``(length - a)^2``, where ``a``
is a moving average of the lengths (decay ``decay``), kept as the penalty's state so that a
resumed run continues it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from pydantic import Field

import ganlab


class PathLengthParams(ganlab.Params):
    weight: float = Field(default=2.0, ge=0.0, description="pl_weight (2)")
    every: int = Field(
        default=4, gt=0, description="apply it every this many steps, times this (their 4)"
    )
    batch_shrink: int = Field(
        default=2, gt=0, description="run G again on N / batch_shrink of the fakes' latents (2)"
    )
    decay: float = Field(
        default=0.01, gt=0.0, le=1.0, description="decay of the lengths' moving average (0.01)"
    )


class PathLength(ganlab.GeneratorPenalty):
    """StyleGAN2's path-length penalty; ``pl_mean``, the moving average, is its state."""

    def __init__(self, weight: float, every: int, batch_shrink: int, decay: float) -> None:
        super().__init__(weight, every)
        self.batch_shrink, self.decay = batch_shrink, decay
        self.pl_mean = torch.zeros([])
        self.last_length = torch.zeros([])

    def value(self, g: ganlab.GeneratorPass) -> torch.Tensor:
        n = max(1, g.latents.shape[0] // self.batch_shrink)
        latents = g.latents[:n].detach()
        labels = g.labels[:n] if g.labels is not None else None
        images, found = g.generate(latents, labels)
        w = found.get("w")
        if w is None:
            raise ganlab.GanlabError(
                f"penalty path_length: the generator {type(g.generator).__name__} exposes no "
                "'w' (ganlab.ExposesIntermediates: forward_with_intermediates returning "
                "{'w': ...}); use a generator that has it, such as stylegan2, or remove the "
                "penalty from the recipe's penalties."
            )
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * noise).sum(), w, create_graph=True)
        # (N, [num_ws,] w_dim): squared norm over w_dim, averaged over the ws, square root.
        lengths = grad.float().reshape(n, -1, grad.shape[-1]).square().sum(2).mean(1).sqrt()
        # Their code keeps the graph through this step's share of the average.
        pl_mean = self.pl_mean.to(lengths.device).lerp(lengths.mean(), self.decay)
        self.pl_mean = pl_mean.detach()
        self.last_length = lengths.mean().detach()
        return (lengths - pl_mean).square().mean()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The moving average of the path lengths (saved in checkpoints)."""
        return {"pl_mean": self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Continue from a saved moving average."""
        self.pl_mean = state["pl_mean"].detach().clone()

    def statistics(self) -> dict[str, torch.Tensor]:
        """``pl_mean`` (the moving average) and ``length`` (the mean path length of the
        last batch it was computed on), logged as ``path_length.<key>``."""
        return {"pl_mean": self.pl_mean, "length": self.last_length}


def build_path_length(params: PathLengthParams) -> PathLength:
    """StyleGAN2's path-length regularization of G (needs a generator that exposes w)."""
    return PathLength(params.weight, params.every, params.batch_shrink, params.decay)


@ganlab.hookimpl
def ganlab_register_penalties(register: ganlab.Register) -> None:
    register("path_length", build_path_length, params=PathLengthParams)
