"""What a data set plugin hands the runner besides the `ganlab.ImageDataset` contract.

A data set plugin returns either

* an `ImageDataset` (`ganlab.contracts`): ``len(ds)`` images, ``ds[i]`` a float32
  ``(C, H, W)`` tensor in ``[-1, 1]``, decoded on demand; or
* a `TensorImages`: every image already decoded into one uint8 tensor;

and, when its images have classes, a `Labels` as its ``labels`` attribute. `Fingerprint`
says what a run's data is, so that a resumed run can tell that it changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ganlab.files.images import to_unit_range


@dataclass(frozen=True)
class Labels:
    """The class label of every image of a data set, and the classes' names.

    A data set that has them sets its ``labels`` attribute to one (`labels_of` reads it);
    conditional generators and discriminators need them.
    """

    values: torch.Tensor  #: int64 ``(N,)``: image ``i`` is of class ``values[i]``
    names: tuple[str, ...]  #: class ``k`` is called ``names[k]``

    def problem(self, count: int) -> str | None:
        """What is wrong with these labels for a data set of ``count`` images (None: fine)."""
        values = self.values
        if not isinstance(values, torch.Tensor) or values.dtype != torch.int64:
            return "labels.values must be an int64 tensor"
        if values.shape != (count,):
            return f"labels.values has shape {tuple(values.shape)}, not ({count},)"
        if not self.names or not all(isinstance(n, str) and n for n in self.names):
            return "labels.names must be the classes' names, non-empty strings"
        if count and (int(values.min()) < 0 or int(values.max()) >= len(self.names)):
            return f"labels.values must be class numbers from 0 to {len(self.names) - 1}"
        return None

    def frequencies(self) -> torch.Tensor:
        """How often each class occurs, as weights summing to 1 (float64, on the CPU)."""
        counts = torch.bincount(self.values.cpu(), minlength=len(self.names)).double()
        return counts / counts.sum()


def labels_of(dataset: object) -> Labels | None:
    """A data set's labels, or None for a data set without classes."""
    labels = getattr(dataset, "labels", None)
    return labels if isinstance(labels, Labels) else None


#: The file in a run folder that holds every image's name and hash.
@dataclass(frozen=True)
class Fingerprint:
    """What a data set is made of, image by image: its name and a hash of its pixels.

    A run records it (`ganlab.data.fingerprint`), and a resume compares it with the data as it is
    now: which images were added, removed or changed.
    """

    names: tuple[str, ...]  #: image ``i`` is called ``names[i]`` (a file's path, ...)
    hashes: tuple[str, ...]  #: a hash of image ``i``'s decoded uint8 pixels, as hex

    def digest(self) -> str:
        """One hash of the whole: the same exactly when every name and image is."""
        lines = "".join(f"{name}\t{h}\n" for name, h in zip(self.names, self.hashes, strict=True))
        return hashlib.sha256(lines.encode()).hexdigest()


def hash_images(images: torch.Tensor) -> tuple[str, ...]:
    """A hash (8 bytes, as hex) of each uint8 image of ``images`` ``(N, C, H, W)``."""
    array = images.cpu().numpy()
    return tuple(hashlib.blake2b(image.tobytes(), digest_size=8).hexdigest() for image in array)


def image_names(dataset: object) -> tuple[str, ...]:
    """Each image's name, for messages: the data set's ``image_names()`` when it has one (a
    file's path under its root), else ``#0``, ``#1``, ... (images generated in code)."""
    names = getattr(dataset, "image_names", None)
    if callable(names):
        return tuple(str(name) for name in names())
    return tuple(f"#{index}" for index in range(len(dataset)))  # type: ignore[arg-type]


class TensorImages:
    """A data set held as one uint8 tensor ``(N, C, H, W)``: decoded once, sliced per batch;
    with ``labels``, each image's class."""

    def __init__(self, images: torch.Tensor, labels: Labels | None = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"TensorImages needs a uint8 tensor (N, C, H, W), got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        self.images = images
        self.image_shape = image_shape_of(images)
        self.labels = labels
        #: the images' names and hashes when known (the decode-once cache keeps them)
        self.fingerprint: Fingerprint | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_unit_range(self.images[index])


def image_shape_of(images: torch.Tensor) -> tuple[int, int, int]:
    """``(C, H, W)`` of images ``(N, C, H, W)``."""
    channels, height, width = images.shape[1:]
    return channels, height, width
