"""Atomic file writes: a file is replaced whole or not at all, never left half written.

Every file ganlab writes into a run folder (``run.json``, ``recipe.yaml``, a rewritten
``metrics.jsonl``, checkpoints, images) goes through `write_atomic`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a file through a temporary file, fsync and a rename, so that a crash or a full
    disk never leaves half a file (the old one, if any, stays intact)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # on a read-only disk even this fails
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):  # name the file meant, not the temporary one
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def json_text(data: Any) -> str:
    """The text of a JSON file ganlab writes (``run.json``)."""
    return json.dumps(data, indent=2) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (see `write_atomic`)."""
    write_atomic(path, json_text(data))
