"""Decode once: a data set's images, decoded, resized and cropped, in one uint8 file.

A data set that can say what it is made of (``cache_key()``: its source files and its
transform) and decode one image to uint8 (``load_uint8(i)``) is decoded once into
``<cache dir>/<key>.u8``, a raw ``(N, C, H, W)`` uint8 array, memory-mapped on use: no epoch
decodes a JPEG again, and memory holds only the pages in use. A change of files or transform
gives another key, so a stale cache is never read. The folder is ``$GANLAB_CACHE``, else
``~/.cache/ganlab``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm import tqdm

from ganlab.data import Labels, TensorImages, guarded_loader, labels_of
from ganlab.errors import GanlabError
from ganlab.memory import check_disk


@runtime_checkable
class CacheableImages(Protocol):
    """A data set ganlab can decode once into its uint8 cache."""

    image_shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def load_uint8(self, index: int) -> torch.Tensor:
        """Image ``index`` decoded, resized and cropped: uint8, shape `image_shape`."""
        ...

    def cache_key(self) -> str:
        """A string that changes whenever the source files or the transform change."""
        ...


def cache_dir() -> Path:
    """Where ganlab keeps what it computes once: ``$GANLAB_CACHE``, else ``~/.cache/ganlab``."""
    return Path(os.environ.get("GANLAB_CACHE") or Path.home() / ".cache" / "ganlab")


def cache_path(dataset: CacheableImages) -> Path:
    key = hashlib.sha256(dataset.cache_key().encode()).hexdigest()[:24]
    return cache_dir() / f"{key}.u8"


def open_cache(path: Path, shape: tuple[int, ...]) -> TensorImages:
    """The cache at ``path`` as `TensorImages`, with the labels stored beside it if any."""
    # Copy-on-write: a writable view for torch that never writes back to the file.
    array = np.memmap(path, dtype=np.uint8, mode="c", shape=shape)
    return TensorImages(torch.from_numpy(array), read_labels(path, shape[0]))


def labels_path(path: Path) -> Path:
    """Where a cache's class labels are kept: ``<key>.labels``, int64, one per image."""
    return path.with_suffix(".labels")


def write_labels(path: Path, labels: Labels | None) -> dict[str, Any]:
    """Store a data set's labels beside its cache; the class names go in the cache's record."""
    if labels is None:
        return {}
    labels.values.cpu().numpy().astype(np.int64).tofile(labels_path(path))
    return {"class_names": list(labels.names)}


def read_labels(path: Path, count: int) -> Labels | None:
    """The labels stored beside a cache, or None (a data set without classes)."""
    record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    names = record.get("class_names")
    if not names or not labels_path(path).is_file():
        return None
    values = np.fromfile(labels_path(path), dtype=np.int64)
    if values.shape != (count,):
        return None  # written for another set of images: not these labels
    return Labels(torch.from_numpy(values), tuple(names))


def prepare_cache(
    dataset: CacheableImages, workers: int = 0, quiet: bool = False
) -> tuple[Path, float, bool]:
    """Make sure the data set's cache exists, building it if needed.

    Returns its path, the images decoded per second (now, or when it was built), and
    whether it was built by this call. A cache counts as built once its ``.json`` record is
    written, the last thing a build does.
    """
    path = cache_path(dataset)
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        rate = json.loads(meta.read_text(encoding="utf-8"))["images_per_second"]
        return path, rate, False
    return path, build_cache(dataset, path, workers, quiet), True


def cached(dataset: CacheableImages, workers: int = 0, quiet: bool = False) -> TensorImages:
    """The data set as `TensorImages` over its cache, building the cache on first use."""
    path, _, _ = prepare_cache(dataset, workers, quiet)
    images = open_cache(path, (len(dataset), *dataset.image_shape))
    # The data set's own labels when it has them: a cache made before it had classes holds
    # none, and the same files give the same labels anyway.
    images.labels = labels_of(dataset) or images.labels
    return images


class _Items:
    """(index, uint8 image) pairs, for a loader that decodes in worker processes."""

    def __init__(self, dataset: CacheableImages) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        return index, self.dataset.load_uint8(index)


def build_cache(dataset: CacheableImages, path: Path, workers: int, quiet: bool = False) -> float:
    """Decode every image into ``path`` (atomically: a temporary file, then a rename).

    Returns the images decoded per second.
    """
    shape = (len(dataset), *dataset.image_shape)
    check_disk(
        math.prod(shape),
        path.parent,
        f"The data cache of {shape[0]} images of {'x'.join(map(str, shape[1:]))} (uint8)",
        "Use a smaller image size (data.params.image_size), set GANLAB_CACHE to a folder on "
        "a larger disk, or train.data_cache: false.",
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanlabError(
            f"Cannot create the data cache folder {path.parent}: {exc.strerror}. Set "
            "GANLAB_CACHE to a writable folder, or train.data_cache: false."
        ) from None
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    started = time.perf_counter()
    try:
        array = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
        # Its own generator: building the cache must not draw from the training RNG stream,
        # or a run that builds it would differ from one that finds it ready.
        loader = guarded_loader(
            _Items(dataset), batch_size=64, num_workers=workers, generator=torch.Generator()
        )
        show = not quiet
        with tqdm(
            total=shape[0],
            unit="img",
            desc=f"Decoding once into {path.name}",
            disable=not show,
            file=sys.stderr,
            mininterval=1.0,
        ) as bar:
            for indices, images in loader:
                array[indices.numpy()] = images.numpy()
                bar.update(len(indices))
        array.flush()
        del array
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename not in (None, str(tmp), str(path)):
            raise  # reading the data set failed, not writing its cache
        raise GanlabError(
            f"Could not write the data cache {path}: {exc.strerror}. Free space, set "
            "GANLAB_CACHE to another folder, or train.data_cache: false."
        ) from None
    finally:
        with contextlib.suppress(OSError):  # on a read-only disk even this fails
            tmp.unlink(missing_ok=True)
    rate = shape[0] / max(time.perf_counter() - started, 1e-9)
    meta = {"shape": list(shape), "key": dataset.cache_key()[:2000], "images_per_second": rate}
    meta |= write_labels(path, labels_of(dataset))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return rate
