"""Room on disk: a write that cannot fit is refused before it starts, with the estimate."""

from __future__ import annotations

import shutil
from pathlib import Path

from ganlab.errors import GanlabError


def human(nbytes: float) -> str:
    """``1.5 GiB``: a byte count as people read it."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    raise AssertionError("unreachable")


def free_disk(folder: Path) -> int:
    """Bytes free on the disk that holds ``folder`` (or its nearest existing parent)."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_disk(nbytes: int, folder: Path, what: str, fix: str) -> None:
    """Refuse to write ``nbytes`` into ``folder`` when its disk has less room."""
    free = free_disk(folder)
    if nbytes > free:
        raise GanlabError(
            f"{what} needs {human(nbytes)} on disk, but {folder} has {human(free)} free. {fix}"
        )
