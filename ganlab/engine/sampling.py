"""Using the models without changing training: seeded latent vectors and `untouched`.

Sampling for grids, metrics, `ganlab sample` and exports must never shift a run: latent
vectors come from their own seeded generator, and a model used outside its update is put
back exactly as it was (its mode and every buffer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ganlab.contracts import Generator

#: How many fixed latent vectors every run draws (the tutorial's 8x8 progress grid).
FIXED_LATENTS = 64


def seeded_latents(generator: Generator, n: int, seed: int) -> torch.Tensor:
    """``n`` latent vectors of ``generator`` on the CPU, in one draw from a generator seeded
    with ``seed``: the same vectors on any device, never from the training RNG stream."""
    shape = tuple(generator.latent_shape)
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


@contextlib.contextmanager
def untouched(model: nn.Module, train: bool) -> Iterator[nn.Module]:
    """Use ``model`` in training mode (``train``) or eval mode, then leave it exactly as it
    was: its mode, and every buffer (batch-norm statistics, spectral-norm vectors)."""
    saved = [buffer.clone() for buffer in model.buffers()]
    was_training = model.training
    model.train(train)
    try:
        yield model
    finally:
        model.train(was_training)
        with torch.no_grad():
            for buffer, value in zip(model.buffers(), saved, strict=True):
                buffer.copy_(value)
