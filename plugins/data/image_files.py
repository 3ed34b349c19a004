"""Images read from disk: every image file under a folder (`find_images`) or in a zip
(`zip_image_names`), decoded on demand (`FileImages`, `ZipImages`), with class labels as
torchvision's ImageFolder gives them: an image's class is the first-level subfolder it lies
in, the classes sorted by name (`folder_classes`).

Both kinds of data set can be decoded once into ganlab's uint8 cache (``load_uint8`` and
``cache_key``).
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import ganlab
from ganlab_plugins.data.decoding import decode, resize_and_crop

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_os_metadata(name: str) -> bool:
    """Whether one part of a path (a file or folder name) is an operating system's or a
    tool's metadata rather than data: hidden names (``.DS_Store``, AppleDouble ``._x.png``,
    ``.git``), macOS archives' ``__MACOSX`` folder, Windows' ``Thumbs.db`` and
    ``desktop.ini``. The folder reader and the zip reader skip them alike."""
    if name in (".", ".."):  # a zip member's "./x.png" is no hidden file
        return False
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


class _Images:
    """What the file and zip data sets share: the transform, the float view, the cache key."""

    #: bump when decoding or the transform changes, so old caches are not reused
    #: 2: 16-bit and float images scaled into 8 bits (`convert_image`), not clipped
    TRANSFORM_VERSION = 2

    def __init__(
        self, count: int, image_size: int, channels: int, labels: ganlab.Labels | None = None
    ) -> None:
        self.count = count
        self.image_shape = (channels, image_size, image_size)
        self.mode = "RGB" if channels == 3 else "L"
        self.transform = resize_and_crop(image_size)
        #: each image's class (`folder_classes`), or None
        self.labels = labels

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        return ganlab.to_unit_range(self.load_uint8(index))

    def load_uint8(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def _key(self, sources: str) -> str:
        key = f"{sources}|{self.image_shape}|{self.mode}|v{self.TRANSFORM_VERSION}"
        if self.labels is not None:
            # Other classes (another root, a renamed folder) are another cache; a data set
            # without classes keeps the key it always had, so its cache stays valid.
            values = hashlib.sha256(self.labels.values.numpy().tobytes()).hexdigest()
            key += f"|classes={','.join(self.labels.names)}|{values}"
        return key


class FileImages(_Images):
    """Images from files on disk, decoded on demand (in loader workers when there are any)."""

    def __init__(
        self,
        files: list[Path],
        image_size: int,
        channels: int,
        labels: ganlab.Labels | None = None,
        root: Path | None = None,
    ) -> None:
        super().__init__(len(files), image_size, channels, labels)
        self.files = files
        #: the folder the files were found in; their names are relative to it
        self.root = root

    def image_names(self) -> list[str]:
        """Each image's path relative to the data set's folder (messages name them)."""
        if self.root is None:
            return [str(path) for path in self.files]
        return [path.relative_to(self.root).as_posix() for path in self.files]

    def load_uint8(self, index: int) -> torch.Tensor:
        path = self.files[index]
        try:
            with open(path, "rb") as stream:
                return self.transform(decode(stream, path, self.mode))
        except OSError as exc:  # gone since the folder was listed, or a link to nothing
            raise ganlab.GanlabError(
                f"{path}: cannot read this image ({exc.strerror}). Put it back or delete it, "
                "then run again."
            ) from None

    def cache_key(self) -> str:
        """Every file's path, size and modification time, and the transform."""
        digest = hashlib.sha256()
        folders: dict[Path, Path] = {}
        for path in self.files:
            stat = path.stat()
            digest.update(
                f"{_resolved(path, folders)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
            )
        return self._key(digest.hexdigest())


def _resolved(path: Path, folders: dict[Path, Path]) -> Path:
    """``path.resolve()``, with each folder resolved once (``folders`` keeps them): resolving
    every one of CelebA's 202,599 paths in full costs seconds at the start of every run."""
    if path.is_symlink():
        return path.resolve()
    if path.parent not in folders:
        folders[path.parent] = path.parent.resolve()
    return folders[path.parent] / path.name


class ZipImages(_Images):
    """Images read straight from a zip archive; each process opens its own handle."""

    def __init__(
        self,
        archive: Path,
        names: list[str],
        image_size: int,
        channels: int,
        labels: ganlab.Labels | None = None,
    ) -> None:
        super().__init__(len(names), image_size, channels, labels)
        self.archive = archive
        self.names = names
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1

    def load_uint8(self, index: int) -> torch.Tensor:
        # A ZipFile handle must not be shared across the loader's worker processes.
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.archive)
            self._pid = os.getpid()
        data = self._zip.read(self.names[index])
        name = f"{self.archive}:{self.names[index]}"
        return self.transform(decode(io.BytesIO(data), name, self.mode))

    def image_names(self) -> list[str]:
        """Each image's member name in the archive (messages name them)."""
        return list(self.names)

    def cache_key(self) -> str:
        """The archive's path, size and modification time, its members, and the transform."""
        stat = self.archive.stat()
        members = hashlib.sha256("\n".join(self.names).encode()).hexdigest()
        return self._key(f"{self.archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{members}")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = None  # open handles cannot be pickled to worker processes
        return state


def find_images(root: Path) -> list[Path]:
    """Every image file under ``root`` (recursively), sorted by path like ImageFolder.

    Symbolic links to folders are followed (a class folder may be a link), except a link to
    a folder it lies in, which would recurse for ever. Names that `is_os_metadata` are
    skipped. A link to an image that does not exist stops the run, naming it, as a corrupt
    image does: a data set that silently lost a file would train on other data.
    """
    found: list[Path] = []
    # Each folder to list, with the (device, inode) of it and of every folder above it.
    stack = [(root, frozenset({_identity(root)}))]
    while stack:
        folder, above = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise ganlab.GanlabError(
                f"data.params.root: cannot list {folder} ({exc.strerror}). Make it readable."
            ) from None
        for entry in entries:
            if is_os_metadata(entry.name):
                continue
            path = Path(entry.path)
            if entry.is_dir():  # follows a link
                identity = _identity(path)
                if identity not in above:
                    stack.append((path, above | {identity}))
            elif path.suffix.lower() in IMAGE_EXTENSIONS:
                if entry.is_file():
                    found.append(path)
                elif entry.is_symlink() and not path.exists():
                    raise ganlab.GanlabError(
                        f"{path}: a link to {os.readlink(path)}, which does not exist. "
                        "Restore its target or delete the link, then run again."
                    )
    return sorted(found)


def _identity(folder: Path) -> tuple[int, int]:
    """A folder's (device, inode): the same for every link to it."""
    stat = folder.stat()
    return stat.st_dev, stat.st_ino


def zip_image_names(archive: Path) -> list[str]:
    """The images in a zip, by member name, sorted; `is_os_metadata` names (``__MACOSX/``,
    AppleDouble ``._x.png``) are skipped, as the folder reader skips them."""
    try:
        with zipfile.ZipFile(archive) as z:
            return sorted(
                n
                for n in z.namelist()
                if n.lower().endswith(IMAGE_EXTENSIONS)
                and not any(is_os_metadata(part) for part in n.split("/"))
            )
    except (zipfile.BadZipFile, OSError) as exc:
        raise ganlab.GanlabError(
            f"{archive}: cannot read this zip file ({exc}). It may be incomplete: "
            "download it again."
        ) from None


def folder_classes(paths: Sequence[tuple[str, ...]], root: str) -> ganlab.Labels | None:
    """Each image's class, as torchvision's ImageFolder gives it: the first-level subfolder
    of ``root`` it lies in (at any depth below it), the classes numbered in sorted order.

    ``paths`` are the images' paths relative to ``root``, as tuples of parts. A folder whose
    images lie directly in it has no classes. Images directly in it beside class
    subfolders leave the data set without classes too (every image is still trained on):
    ImageFolder would drop them, and a data set that silently loses images when a model
    wants classes is worse than one that says it has none. A note says so.
    """
    loose = sum(1 for parts in paths if len(parts) == 1)
    if loose:
        if loose < len(paths):
            print(
                f"ganlab: note: {root} holds {loose} image(s) directly in it beside class "
                "subfolders, so its images have no classes (a conditional model refuses it). "
                "Move them into a class subfolder to train with classes.",
                file=sys.stderr,
            )
        return None
    names = tuple(sorted({parts[0] for parts in paths}))
    number = {name: k for k, name in enumerate(names)}
    values = torch.tensor([number[parts[0]] for parts in paths], dtype=torch.int64)
    return ganlab.Labels(values, names)


def archive_parts(names: list[str]) -> list[tuple[str, ...]]:
    """Members' paths inside a zip as parts, without the one folder that holds them all
    (``faces.zip`` made from ``faces/`` holds ``faces/cat/1.png``): the archive's root is
    that folder, as ``root`` would be after unzipping it."""
    parts = [tuple(name.split("/")) for name in names]
    tops = {p[0] for p in parts}
    if len(tops) == 1 and all(len(p) > 1 for p in parts):
        parts = [p[1:] for p in parts]
    return parts
