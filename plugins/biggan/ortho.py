"""BigGAN's orthogonal regularization of G (Brock, Donahue & Simonyan 2019, section 3.1), as
the authors' code applies it (ajbrock/BigGAN-PyTorch, ``utils.ortho`` called from
``train_fns.py``), written as a ganlab G penalty: ``ortho``.

Their modified orthogonal regularization penalizes only the off-diagonal entries of each
weight's Gram matrix, so it pushes filters towards being orthogonal to one another without
constraining their norms. Their code does not compute a loss: after G's backward pass it adds
``strength * 2 * ((W W^T) * (1 - I)) W`` to the gradient of every parameter with two or more
axes (``W`` its weight viewed as rows of ``shape[0]``), except the shared class embedding.
That is the gradient of ``strength * value`` with

    value = 1/2 * sum over W of ||W W^T * (1 - I)||_F^2

(for ``M = W W^T * (1 - I)``, ``d/dW ||M||_F^2 = 4 M W``), which is what `Ortho.value`
returns: with ``weight`` equal to their ``strength`` (their default and the paper's 1e-4),
the step adds exactly their gradient. The paper writes ``beta ||W^T W * (1 - I)||_F^2``; its
code's gradient corresponds to ``beta / 2`` of that written form, and the code is followed.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

import ganlab


def off_diagonal_gram(weight: torch.Tensor) -> torch.Tensor:
    """``1/2 ||W W^T * (1 - I)||_F^2`` for ``W`` = ``weight`` viewed as ``(shape[0], -1)``."""
    w = weight.reshape(weight.shape[0], -1)
    gram = w @ w.T
    return 0.5 * (gram.square().sum() - gram.diagonal().square().sum())


def ortho_weights(generator: nn.Module, exclude: list[str]) -> list[torch.Tensor]:
    """The parameters their ``utils.ortho`` regularizes: every one with two or more axes
    whose name does not start with one of ``exclude``. Under torch's spectral norm that is
    the raw weight (``...parametrizations.weight.original``), as their SN layers' weight is."""
    return [
        param
        for name, param in generator.named_parameters()
        if param.dim() >= 2 and not any(name.startswith(prefix) for prefix in exclude)
    ]


class OrthoParams(ganlab.Params):
    weight: float = Field(
        default=1e-4,
        ge=0.0,
        description="their G_ortho strength: the paper's beta, 1e-4 (their code's default is 0)",
    )
    every: int = Field(default=1, gt=0, description="apply it every this many steps, times this")
    exclude: list[str] = Field(
        default=["shared."],
        description="names of G's parameters left alone, by prefix: BigGAN's shared class "
        "embedding (`shared.`), as their train_fns blacklists G.shared",
    )


class Ortho(ganlab.GeneratorPenalty):
    """BigGAN's modified orthogonal regularization on G's weights."""

    def __init__(self, weight: float, every: int, exclude: list[str]) -> None:
        super().__init__(weight, every)
        self.exclude = list(exclude)

    def value(self, g: ganlab.GeneratorPass) -> torch.Tensor:
        weights = ortho_weights(g.generator, self.exclude)
        if not weights:
            raise ganlab.GanlabError(
                "penalty ortho: the generator has no weight with two or more axes left "
                f"after exclude={self.exclude}. Shorten the exclude list or drop the penalty."
            )
        # In float32 outside any autocast region: a Gram matrix in bfloat16 would lose the
        # small off-diagonal entries the penalty is about.
        with torch.autocast(weights[0].device.type, enabled=False):
            return torch.stack([off_diagonal_gram(w.float()) for w in weights]).sum()


def build_ortho(params: OrthoParams) -> Ortho:
    """BigGAN's orthogonal regularization (Brock et al. 2019): off-diagonal Gram of G's weights."""
    return Ortho(params.weight, params.every, params.exclude)


@ganlab.hookimpl
def ganlab_register_penalties(register: ganlab.Register) -> None:
    register("ortho", build_ortho, params=OrthoParams)
