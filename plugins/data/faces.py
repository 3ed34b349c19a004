"""Procedural cartoon faces: ganlab's quickstart data set, generated in code.

Each image is a head-and-shoulders cartoon portrait drawn from a handful of
independent discrete attributes ("modes", `ganlab_plugins.data.face_attributes`) plus
small continuous jitter, so a generator has to cover many visibly different combinations
instead of collapsing onto one face.  Nothing is downloaded or read from disk. The drawing
(`ganlab_plugins.data.face_drawing`) is bit-identical on every machine.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Literal, SupportsIndex

import numpy as np
import torch
from pydantic import Field

import ganlab
from ganlab_plugins.data.face_attributes import FACE_CLASSES, N_DRAWS, draw_attributes
from ganlab_plugins.data.face_drawing import render

__all__ = ["build_cartoon_faces", "face_classes", "make_faces"]

# Pixels drawn per chunk: ~1 MiB per float32 plane keeps the working set in
# cache and the peak memory in the tens of MiB whatever `count` is.
_CHUNK_PIXELS = 1 << 18


def _as_int(name: str, value: object) -> int:
    """`value` as an int; floats are refused rather than silently truncated."""
    if isinstance(value, SupportsIndex):
        with contextlib.suppress(TypeError):  # an __index__ that fails
            return operator.index(value)
    raise TypeError(f"make_faces: {name} must be an integer, got {type(value).__name__}")


def make_faces(count: int, image_size: int = 32, seed: int = 0) -> torch.Tensor:
    """Return `count` RGB cartoon faces as uint8, shape (count, 3, image_size, image_size).

    The same (count, image_size, seed) always gives bit-identical images, and
    ``make_faces(n)[:k]`` equals ``make_faces(k)``: image i depends only on the
    seed, i and the image size.  Rendering runs in chunks of a few hundred
    images, so memory beyond the returned tensor stays in the tens of MiB.

    Raises:
        TypeError: if an argument is not an integer.
        ValueError: if count < 1, image_size < 8 or seed < 0.
    """
    count = _as_int("count", count)
    image_size = _as_int("image_size", image_size)
    seed = _as_int("seed", seed)
    if count < 1:
        raise ValueError(f"make_faces: count must be at least 1, got {count}")
    if image_size < 8:
        raise ValueError(f"make_faces: image_size must be at least 8, got {image_size}")
    if seed < 0:
        raise ValueError(f"make_faces: seed must be non-negative, got {seed}")

    rng = np.random.Generator(np.random.PCG64(seed))
    faces = draw_attributes(rng.random((count, N_DRAWS)))
    out = np.empty((count, 3, image_size, image_size), dtype=np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (image_size * image_size))
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        out[start:stop] = render(faces.rows(start, stop), image_size)
    return torch.from_numpy(out)


def face_classes(count: int, attribute: str, seed: int = 0) -> ganlab.Labels:
    """The class of each face ``make_faces(count, ..., seed)`` draws, by one of its
    attributes (a key of `FACE_CLASSES`), as `ganlab.Labels`.

    The classes come from the same uniforms as the faces, so face ``i`` of class ``k``
    shows class ``k`` (hair style ``afro``, background ``sky``, ...) at every image size.
    """
    names, of = FACE_CLASSES[attribute]
    rng = np.random.Generator(np.random.PCG64(_as_int("seed", seed)))
    values = of(rng.random((_as_int("count", count), N_DRAWS)))
    return ganlab.Labels(torch.from_numpy(values.astype(np.int64)), names)


# --- the ganlab plugin ----------------------------------------------------------------------


class CartoonFacesParams(ganlab.Params):
    count: int = Field(default=10_000, ge=1, description="how many faces to generate")
    image_size: int = Field(default=32, ge=8, description="side of each square image")
    seed: int = Field(
        default=0,
        ge=0,
        description="seed of the data set itself (the run's seed does not change the data)",
    )
    classes: (
        Literal["hair_style", "hair_colour", "eyes", "mouth", "glasses", "background", "shirt"]
        | None
    ) = Field(
        default=None,
        description="the attribute that is each face's class, for conditional models: "
        "hair_style (bald, short, long, bob, afro), hair_colour (6), eyes (open, dots, "
        "closed), mouth (smile, flat, open, grin), glasses (no_glasses, glasses), background "
        "(6) or shirt (6 colours); null: no classes",
    )


def build_cartoon_faces(params: CartoonFacesParams) -> ganlab.TensorImages:
    """Cartoon faces generated in code (no download): many skin, hair, eye and mouth modes."""
    images = make_faces(params.count, params.image_size, params.seed)
    if params.classes is None:
        return ganlab.TensorImages(images)
    return ganlab.TensorImages(images, face_classes(params.count, params.classes, params.seed))


@ganlab.hookimpl
def ganlab_register_datasets(register: ganlab.Register) -> None:
    register("cartoon_faces", build_cartoon_faces, params=CartoonFacesParams)
