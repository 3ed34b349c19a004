"""Decode once: a data set's images, decoded, resized and cropped, in one uint8 file.

A data set that can say what it is made of (``cache_key()``: its source files and its
transform) and decode one image to uint8 (``load_uint8(i)``) is decoded once into
``<cache dir>/<key>.u8``, a raw ``(N, C, H, W)`` uint8 array, memory-mapped on use: no epoch
decodes a JPEG again, and memory holds only the pages in use. A change of files or transform
gives another key, so a stale cache is never read. The folder is ``$GANLAB_CACHE``, else
``~/.cache/ganlab``.

Beside the cache lie ``<key>.hashes`` (a hash of each decoded image, hashed once as it is
built: what a run's data fingerprint is made of, `ganlab.data.fingerprint`), ``<key>.labels`` and
the record ``<key>.json``. A build writes ``<key>.u8.<pid>.tmp`` first, holding a lock on it;
a build the process did not finish (killed, even by SIGKILL) leaves it behind, and the next
build of that key removes it.
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

from ganlab.data.batches import guarded_loader
from ganlab.data.types import Fingerprint, Labels, TensorImages, hash_images, image_names, labels_of
from ganlab.errors import GanlabError
from ganlab.files.disk import check_disk
from ganlab.files.runlock import process_alive, try_lock


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
    remove_stale_temporaries(path)
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
    images.fingerprint = Fingerprint(image_names(dataset), read_hashes(path, images.images))
    return images


def hashes_path(path: Path) -> Path:
    """Where a cache's image hashes are kept: ``<key>.hashes``, 8 bytes per image."""
    return path.with_suffix(".hashes")


def read_hashes(path: Path, images: torch.Tensor) -> tuple[str, ...]:
    """The hash of each image of the cache at ``path``, as hex: read from ``<key>.hashes``,
    or (a cache built before they were kept) computed from ``images`` once and stored."""
    stored = hashes_path(path)
    try:
        raw = stored.read_bytes()
        if len(raw) == 8 * len(images):
            return tuple(raw[i : i + 8].hex() for i in range(0, len(raw), 8))
    except OSError:
        pass
    hashes = hash_images(images)
    with contextlib.suppress(OSError):  # a read-only cache folder: hashed again next time
        _write_hashes(path, hashes)
    return hashes


def _write_hashes(path: Path, hashes: tuple[str, ...]) -> None:
    tmp = hashes_path(path).with_name(f"{hashes_path(path).name}.{os.getpid()}.tmp")
    tmp.write_bytes(b"".join(bytes.fromhex(h) for h in hashes))
    os.replace(tmp, hashes_path(path))


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files that builds of the cache at ``path`` left when their
    process died (``<key>.u8.<pid>.tmp``, as large as the cache).

    One is stale when no process holds its lock (a build holds it until it ends; the OS
    releases it when the process dies, on any host sharing the folder) and its pid is not a
    live process here (guarding the moment between a build creating its file and locking it).
    """
    for tmp in path.parent.glob(f"{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 1 : -len(".tmp")]
        if not pid.isdigit() or int(pid) == os.getpid() or process_alive(int(pid)):
            continue
        try:
            with open(tmp, "rb") as handle:
                if try_lock(handle.fileno()):  # held by nobody: no build goes on with it
                    tmp.unlink()
        except OSError:
            continue


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
    hashes: list[str] = [""] * shape[0]
    lock = None
    try:
        # Locked while this build lives, so that no other build takes it for a dead one's.
        lock = open(tmp, "wb")  # noqa: SIM115 (closed in `finally`, after the unlink)
        try_lock(lock.fileno())  # a file made by this process just now: it gets the lock
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
                for index, digest in zip(indices.tolist(), hash_images(images), strict=True):
                    hashes[index] = digest
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
        # Any exception, a KeyboardInterrupt or a signal's included, ends here.
        with contextlib.suppress(OSError):  # on a read-only disk even this fails
            tmp.unlink(missing_ok=True)
        if lock is not None:
            lock.close()
    with contextlib.suppress(OSError):  # without them, `read_hashes` hashes the cache again
        _write_hashes(path, tuple(hashes))
    rate = shape[0] / max(time.perf_counter() - started, 1e-9)
    meta = {"shape": list(shape), "key": dataset.cache_key()[:2000], "images_per_second": rate}
    meta |= write_labels(path, labels_of(dataset))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return rate
