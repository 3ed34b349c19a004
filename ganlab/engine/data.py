"""Data sets as the runner sees them, and the seeded batching the runner owns.

A data set plugin returns either

* an `ImageDataset`: ``len(ds)`` images, ``ds[i]`` a float32 ``(C, H, W)`` tensor in
  ``[-1, 1]``, decoded on demand (in loader worker processes when ``train.workers > 0``); or
* a `TensorImages`: every image already decoded into one uint8 tensor. The runner moves it
  to the training device once and slices batches from it, with no loader and no decoding.

Either way the order of each epoch is a permutation drawn from a generator seeded with the
run's seed and the epoch number, so it is the same on every machine and every rerun, and a
run can continue from any position in an epoch.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import random
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ganlab.contracts import ImageDataset


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


@dataclass(frozen=True)
class Fingerprint:
    """What a data set is made of, image by image: its name and a hash of its pixels.

    A run records it (`ganlab.files.fingerprint`), and a resume compares it with the data as it is
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


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]``, with the same arithmetic as torchvision's
    ``ToTensor()`` then ``Normalize(0.5, 0.5)``, so both paths give identical values."""
    return images.float().div_(255).sub_(0.5).div_(0.5)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> uint8 ``[0, 255]`` (for saving and logging images)."""
    return images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded permutation of ``range(size)`` for one epoch."""
    # SeedSequence mixes (seed, epoch) into an independent stream per epoch.
    epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0])
    generator = torch.Generator().manual_seed(epoch_seed)
    return torch.randperm(size, generator=generator)


class Batches:
    """Batches of real images in the seeded per-epoch order, on the training device."""

    def __init__(
        self,
        dataset: ImageDataset | TensorImages,
        batch_size: int,
        seed: int,
        device: torch.device,
        workers: int = 0,
        layout: torch.memory_format = torch.contiguous_format,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.dataset = dataset
        self.layout = layout
        self.rank, self.world = rank, world
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.workers = workers
        self._resident: torch.Tensor | None = None
        if isinstance(dataset, TensorImages):
            self._resident = dataset.images
            if device.type == "cuda" and fits_on_gpu(dataset.images, device):
                self._resident = dataset.images.to(device)  # no host copy per batch at all
        # Every image's class, on the device the batches are indexed on (None: no classes).
        labels = labels_of(dataset)
        self._labels = None
        if labels is not None:
            where = self._resident.device if self._resident is not None else torch.device("cpu")
            self._labels = labels.values.to(where)

    def __len__(self) -> int:
        """Batches per epoch; the last one may be smaller (as in the tutorial's loader).

        With several processes each step takes ``world`` batches of the order, one per
        process, and a last incomplete group of batches is left out.
        """
        if self.world == 1:
            return math.ceil(len(self.dataset) / self.batch_size)
        return len(self.dataset) // (self.batch_size * self.world)

    def indices(self, epoch: int) -> list[torch.Tensor]:
        """This process's batches of the epoch's seeded order, as index tensors."""
        order = epoch_order(len(self.dataset), self.seed, epoch)
        if self.world == 1:
            return list(order.split(self.batch_size))
        size = self.batch_size
        steps = order[: len(self) * size * self.world].split(size * self.world)
        return [step[self.rank * size : (self.rank + 1) * size] for step in steps]

    def epoch(
        self, epoch: int, start: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Yield the batches of ``epoch`` from batch index ``start`` on: the images, and their
        class labels (None for a data set without classes)."""
        batches = self.indices(epoch)[start:]
        labels = self._labels
        if self._resident is not None:
            # One copy of the order per epoch: a host-to-device copy per batch would make the
            # host wait for the device at every step.
            images = self._resident
            order = torch.cat(batches).to(images.device) if batches else torch.empty(0)
            for index in order.split([len(b) for b in batches]):
                # Into the models' layout while still uint8: a quarter of the bytes to move.
                batch = images.index_select(0, index).contiguous(memory_format=self.layout)
                real = to_unit_range(batch.to(self.device, non_blocking=True))
                yield real, None if labels is None else labels[index].to(self.device)
            return
        chunks = [b.tolist() for b in batches]
        loader = guarded_loader(
            self.dataset,
            batch_sampler=chunks,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=_seed_worker,
            # Its own generator, so the loader never draws from the training RNG stream.
            generator=torch.Generator().manual_seed(self.seed + epoch),
        )
        for batch, chunk in zip(loader, batches, strict=True):
            real = batch.to(self.device, non_blocking=True)
            yield real, None if labels is None else labels[chunk].to(self.device)


class LoaderFailure:
    """An exception raised while reading one item, carried back from a loader worker as data.

    torch re-raises a worker's exception as a new one whose message is the worker's whole
    traceback ("Caught GanlabError in DataLoader worker process 0 ..."). Returned as an item
    instead, the original exception reaches the main process as it was raised, with the
    worker's frames in ``worker_frames`` (so errors can name the plugin line that failed)
    and its traceback, for ``--debug``, as its cause.
    """

    def __init__(self, exc: Exception) -> None:
        summary = traceback.extract_tb(exc.__traceback__)
        self.frames = [(f.filename, f.lineno or 0) for f in summary]
        self.text = "".join(traceback.format_exception(exc))
        try:
            pickle.dumps(exc)  # crosses the process boundary only if it pickles
            self.error: Exception = exc
        except Exception:
            self.error = RuntimeError(f"{type(exc).__name__}: {exc}")

    def reraise(self) -> None:
        error = self.error
        if error.__traceback__ is None:  # it came from another process
            # An attribute of ganlab's on a plugin's exception, read with getattr by
            # ganlab.plugin_manager.blame.frames_of: no exception type declares it.
            error.worker_frames = self.frames  # type: ignore[attr-defined]
            raise error from WorkerTraceback(self.text)
        raise error


class WorkerTraceback(Exception):
    """The traceback of an exception in a loader worker, as text (shown with ``--debug``)."""


class _Guarded(Dataset[Any]):
    """A data set whose failed items come back as `LoaderFailure` instead of raising."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except Exception as exc:
            return LoaderFailure(exc)


def _collate(items: list[Any]) -> Any:
    failed = next((item for item in items if isinstance(item, LoaderFailure)), None)
    return failed if failed is not None else default_collate(items)


def guarded_loader(dataset: Any, **loader_args: Any) -> Iterator[Any]:
    """Batches of a ``DataLoader`` over ``dataset``; an item that fails to load raises its
    original exception here, whether it was read in this process or in a worker."""
    loader: DataLoader[Any] = DataLoader(_Guarded(dataset), collate_fn=_collate, **loader_args)
    for batch in loader:
        if isinstance(batch, LoaderFailure):
            batch.reraise()
        yield batch


def fits_on_gpu(images: torch.Tensor, device: torch.device) -> bool:
    """Whether ``images`` fit in the GPU's free memory with room left for training."""
    free, _ = torch.cuda.mem_get_info(device)
    return images.numel() * images.element_size() < 0.5 * free


def _seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy in a loader worker from the seed torch gave it."""
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)
