"""The seeded batching the runner owns.

Whether a data set is an `ImageDataset` (decoded on demand, in loader worker processes when
``train.workers > 0``) or `TensorImages` (decoded at once, moved to the training device once
and sliced, with no loader), the order of each epoch is a permutation drawn from a generator
seeded with the run's seed and the epoch number, so it is the same on every machine and
every rerun, and a run can continue from any position in an epoch.
"""

from __future__ import annotations

import math
import pickle
import random
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ganlab.contracts import ImageDataset
from ganlab.data.types import TensorImages, labels_of
from ganlab.files.images import to_unit_range


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
