"""Decoding one image as the tutorial does: PIL, exactly as torchvision's ImageFolder
decodes, with samples wider than 8 bits scaled rather than clipped (`convert_image`), then
Resize (short side) and CenterCrop into a uint8 tensor (`resize_and_crop`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image

import ganlab

if TYPE_CHECKING:
    from torchvision import transforms


def resize_and_crop(image_size: int) -> transforms.Compose:
    """The tutorial's Resize(short side) and CenterCrop, then the uint8 tensor (C, H, W).

    ``ganlab.to_unit_range`` of the result is exactly the tutorial's ToTensor + Normalize(0.5),
    so decoded images can be cached as uint8 and give the same training either way.
    """
    # Imported here: torchvision's package import costs seconds (it loads its models), and
    # a run on generated data never decodes a file.
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(image_size),
            transforms.CenterCrop(image_size),
            transforms.PILToTensor(),
        ]
    )


def decode(stream: BinaryIO, name: object, mode: str) -> Image.Image:
    """Decode one image into ``mode`` (`convert_image`); a corrupt or truncated file stops
    the run, naming the file.

    Stopping (rather than skipping) keeps every epoch the same size and order, which exact
    resume relies on; one bad file in a data set is worth fixing once.
    """
    try:
        return convert_image(Image.open(stream), mode)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ganlab.GanlabError(
            f"{name}: cannot decode this image ({exc}). It is corrupt or truncated: "
            "replace or delete it, then run again."
        ) from None


#: Pillow's modes of 16-bit integer samples, and "I" (32-bit integers, what older Pillows
#: give a 16-bit PNG): read as 16-bit values, 65535 white, scaled to 8 bits.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def convert_image(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in ``mode`` ("RGB" or "L"), with every sample scaled into 8 bits.

    Pillow's own ``convert`` (what torchvision's ImageFolder calls) clips wider samples to
    255, so a mid-gray 16-bit PNG would read as white: 16-bit and 32-bit integer images are
    scaled (65535 -> 255, rounding), float images ("F") are read as intensities from 0 to 1.
    Every other mode (palette, CMYK, LA, RGBA, ...) is Pillow's ``convert``, as before;
    alpha is dropped, as ImageFolder drops it.
    """
    if image.mode in SIXTEEN_BIT_MODES:
        wide = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        image = Image.fromarray(((wide + 128) // 257).astype(np.uint8), "L")
    elif image.mode == "F":
        unit = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        image = Image.fromarray(np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8), "L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # the same colours, without Pillow's warning
    try:
        return image.convert(mode)
    except ValueError:  # a mode Pillow converts only to RGB(A), such as "La"
        return image.convert("RGBA").convert(mode)
