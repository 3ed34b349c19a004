"""Latent vectors and images of a generator, drawn without changing training.

Sampling for grids, metrics, `ganlab.sample`, ``ganlab sample`` and exports must never shift
a run: latent vectors come from their own seeded generator, and a model used outside its
update is put back exactly as it was (its mode and every buffer; `untouched`).

Latent vectors come from their own ``torch.Generator`` on the CPU, one vector after another,
and only then move to the device: a seed gives the same vectors on any device, and image ``i``
is the same whatever the number asked for.

Walks through latent space follow the DCGAN paper (Radford et al. 2015, fig. 4): walk ``i``
goes from point ``z_i`` to ``z_(i+1)`` of the seed's series by spherical interpolation
(slerp), which keeps the intermediate points at the typical distance from the origin of a
Gaussian latent (White 2016, "Sampling generative networks").
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


#: Latent vectors per forward pass: bounds memory for a large number of images.
BATCH = 256


def latent_series(generator: Generator, n: int, seed: int) -> torch.Tensor:
    """The first ``n`` latent vectors ``(n, *generator.latent_shape)`` of ``seed``'s series,
    on the CPU.

    Drawn one vector at a time from a dedicated CPU generator, so the first ``k`` of ``n``
    are the ``k`` vectors of the same seed (one batched draw, as `ganlab.RunView.sample_latents`
    makes, does not promise that).
    """
    shape = tuple(generator.latent_shape)
    rng = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randn(shape, generator=rng) for _ in range(n)])


def slerp(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation from each ``start[i]`` to ``end[i]`` in ``steps`` steps.

    ``start`` and ``end`` are ``(k, *shape)``; the result is ``(k, steps, *shape)``, whose
    first and last steps are exactly ``start`` and ``end``. Nearly parallel vectors fall
    back to linear interpolation.
    """
    a, b = start.flatten(1).double(), end.flatten(1).double()
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[None, :, None]
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1, 1)[:, None, None]
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    a, b = a[:, None], b[:, None]
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin.clamp_min(1e-12)
    linear = (1 - t) * a + t * b
    walk = torch.where(sin.abs() < 1e-6, linear, spherical)
    return walk.to(start.dtype).reshape(start.shape[0], steps, *start.shape[1:])


def walk_latents(generator: Generator, rows: int, frames: int, seed: int) -> torch.Tensor:
    """``rows`` walks of ``frames`` steps, ``(rows, frames, *latent_shape)``, on the CPU.

    Walk ``i`` goes from point ``i`` to point ``i + 1`` of the seed's series of random points
    (`latent_series`), so the walks read row by row are one path through ``rows + 1`` points,
    and walk ``i`` starts at image ``i`` of ``ganlab sample`` with the same seed.
    """
    points = latent_series(generator, rows + 1, seed)
    return slerp(points[:-1], points[1:], frames)


def class_rows(
    generator: Generator, classes: list[int], per_class: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent vectors and labels for a grid with one row of ``per_class`` images per class:
    the seed's first ``per_class`` vectors in every row, each row with its class."""
    latents = latent_series(generator, per_class, seed)
    rows = latents.repeat(len(classes), *([1] * (latents.dim() - 1)))
    labels = torch.tensor(classes, dtype=torch.int64).repeat_interleave(per_class)
    return rows, labels


@torch.no_grad()
def images_of(
    generator: nn.Module,
    latents: torch.Tensor,
    device: torch.device,
    labels: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """G's images for ``latents`` (on the CPU), and for a conditional G their class
    ``labels``, in batches: float ``[-1, 1]`` on the CPU."""
    for i, chunk in enumerate(latents.split(BATCH)):
        if labels is None:
            yield generator(chunk.to(device)).float().cpu()
        else:
            batch_labels = labels[i * BATCH : i * BATCH + len(chunk)].to(device)
            yield generator(chunk.to(device), batch_labels).float().cpu()
