"""Checkpoints: everything needed to use (and later continue) a run, written atomically.

A checkpoint holds only tensors, numbers, strings and containers of them, so it loads with
``torch.load(weights_only=True)``, which cannot run code hidden in a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import GanlabError


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file, fsync and rename.

    A crash (or a full disk) while writing leaves any previous file at ``path`` intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GanlabError(
            f"Could not write the checkpoint {path}: {exc}. The previous checkpoint, if any, "
            "is untouched; free disk space and resume."
        ) from exc


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; a file that is not a ganlab checkpoint is a clear error."""
    if not path.is_file():
        raise GanlabError(f"Checkpoint {str(path)!r} not found.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GanlabError(
            f"{path} is not a checkpoint ganlab can load safely ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Only files written by ganlab "
            "(tensors and plain data, no pickled code) are accepted."
        ) from None
    if not isinstance(state, dict) or "generator" not in state:
        raise GanlabError(f"{path} is not a ganlab checkpoint (no generator weights in it).")
    return state
