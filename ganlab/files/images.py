"""Images as ganlab writes them: the ``[-1, 1]`` <-> uint8 conversions, grids of samples, PNG
files and GIF animations (torchvision and Pillow do the work)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from ganlab.files.atomic import write_atomic


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]``, with the same arithmetic as torchvision's
    ``ToTensor()`` then ``Normalize(0.5, 0.5)``, so both paths give identical values."""
    return images.float().div_(255).sub_(0.5).div_(0.5)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> uint8 ``[0, 255]`` (for saving and logging images)."""
    return images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """Images ``(N, C, H, W)`` in ``[-1, 1]`` -> one uint8 grid ``(3, H', W')``.

    The tutorial's ``make_grid(padding=2)``; values map linearly from [-1, 1] to [0, 255]
    (no per-grid min-max stretch, so grids from different steps compare fairly).
    """
    # Imported here: torchvision's package import costs seconds (it loads its models), which
    # a command that writes no grid should not pay.
    from torchvision.utils import make_grid

    return make_grid(to_uint8(images.cpu()), nrow=nrow, padding=padding)


def save_png(image: torch.Tensor, path: Path) -> Path:
    """Save one uint8 image ``(C, H, W)`` as PNG, creating the folder; returns ``path``.
    The file appears whole or not at all (`write_atomic`), even if the run is killed."""
    array = image.permute(1, 2, 0).squeeze(-1).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """Save images in ``[-1, 1]`` as one PNG grid; returns ``path``."""
    return save_png(grid(images, nrow), path)


def save_gif(frames: Sequence[torch.Tensor], path: Path, seconds_per_frame: float = 0.5) -> Path:
    """Save uint8 frames ``(C, H, W)`` as a looping GIF (whole or not at all, as
    `save_png`); returns ``path``."""
    pictures = [Image.fromarray(f.permute(1, 2, 0).squeeze(-1).numpy()) for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=int(seconds_per_frame * 1000),
        loop=0,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path
