"""Outputs that appear whole or not at all: files and folders written in a hidden staging
folder beside their place, then moved into it (`ganlab sample`, `ganlab export`)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from ganlab.errors import GanlabError
from ganlab.files.runlock import process_alive

#: The staging folder of one call, beside its outputs (``{}``: its pid).
STAGING = ".ganlab-sample-{}.partial"


def never_overwrite(path: Path) -> None:
    """Refuse an output that already exists (what `staged` does when one appears while it
    writes, unless told otherwise)."""
    if path.exists():
        raise GanlabError(
            f"{path} already exists; ganlab never overwrites it. Choose another path, or move "
            "the old one away."
        )


def _remove_stale_staging(parent: Path) -> None:
    """Remove the staging folders that calls killed before they could clean up (SIGKILL,
    SIGTERM, a power cut) left in ``parent``; those of calls still running are theirs."""
    for leftover in parent.glob(STAGING.format("*")):
        pid = leftover.name.split("-")[-1].split(".")[0]
        if pid.isdigit() and (int(pid) == os.getpid() or not process_alive(int(pid))):
            shutil.rmtree(leftover, ignore_errors=True)


def _publish(staged: Path, target: Path, refuse: Callable[[Path], None]) -> None:
    """Move a finished file or folder into place, never over one that appeared meanwhile
    (a hard link fails on an existing name; a folder renames only onto an empty one)."""
    try:
        if staged.is_dir():
            os.rename(staged, target)
        else:
            os.link(staged, target)
    except FileExistsError:
        refuse(target)
        raise
    except OSError as exc:
        if exc.errno == errno.ENOTEMPTY:
            refuse(target)
        if staged.is_dir() or target.exists():
            raise
        os.replace(staged, target)  # a file system without hard links


@contextlib.contextmanager
def staged(
    *targets: Path, refuse: Callable[[Path], None] = never_overwrite
) -> Iterator[list[Path]]:
    """Paths to write ``targets`` at, in a hidden staging folder beside them; when the block
    ends, each is moved into place, so an output is there whole or not at all. On any
    exception (Ctrl-C included) the staging folder is removed and nothing is published; a
    call killed outright leaves its staging folder, which the next call removes.

    A target that appears meanwhile is never overwritten: ``refuse(target)`` raises the
    caller's own message for it.
    """
    parent = targets[0].parent
    staging = parent / STAGING.format(os.getpid())
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(parent)
        staging.mkdir()
    except OSError as exc:  # name the output asked for, not the staging folder behind it
        raise OSError(exc.errno, exc.strerror, str(targets[0])) from exc
    published: list[Path] = []
    try:
        paths = [staging / target.name for target in targets]
        yield paths
        for path, target in zip(paths, targets, strict=True):
            _publish(path, target, refuse)
            published.append(target)
    except BaseException:
        for target in published:  # whole or nothing: the outputs of this call only
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
