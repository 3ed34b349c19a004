"""The run folder: where it goes, and the files the core writes into it.

``<out>/<recipe name>/<YYYYmmdd-HHMMSS>-s<seed>/`` holds ``recipe.yaml`` (resolved),
``run.json`` (versions, git commit, device, seed, timings, status), ``metrics.jsonl`` and
``checkpoints/``; callbacks add their own files (``samples/`` ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from ganlab.errors import GanlabError

PACKAGES = ("ganlab", "torch", "torchvision", "numpy", "pluggy", "pydantic", "wandb")


#: What to do when the run folder cannot be written.
WRITABLE_OUT = "Give --out a folder you can write to, on a disk with free space."


def create_run_dir(out: Path, recipe_name: str, seed: int) -> Path:
    """Make a new, empty run folder; never reuses an existing one."""
    parent = out / recipe_name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanlabError(
            f"Cannot create the run folder under {str(out)!r}: {exc.strerror or exc} "
            f"({exc.filename or parent}). {WRITABLE_OUT}"
        ) from None
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"-{attempt}"
        path = parent / f"{stamp}-s{seed}{suffix}"
        try:
            path.mkdir()  # atomic: two runs started in the same second get different folders
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise GanlabError(
                f"Cannot create the run folder {path}: {exc.strerror or exc}. {WRITABLE_OUT}"
            ) from None
    raise GanlabError(f"Too many runs in {parent} within one second.")


def start_run_dir(out: Path, recipe_name: str, seed: int, files: dict[str, str]) -> Path:
    """A new run folder holding ``files`` (name -> text), or none at all: when a folder or
    file cannot be made (a full disk, say), every folder made here is removed again."""
    parent = out / recipe_name
    # The outermost folder this call creates, if any: all of it is new.
    first_new = next((p for p in [*reversed(parent.parents), parent] if not p.exists()), None)
    path = None
    try:
        path = create_run_dir(out, recipe_name, seed)
        for name, text in files.items():
            write_atomic(path / name, text)
    except (OSError, GanlabError) as exc:
        made = first_new or path
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        if isinstance(exc, GanlabError):
            raise
        raise GanlabError(
            f"Cannot write {exc.filename or path}: {exc.strerror or exc}. Nothing was kept "
            f"of the new run folder. {WRITABLE_OUT}"
        ) from None
    return path


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


def versions() -> dict[str, str]:
    """Installed versions of Python and the packages a run depends on."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit(where: Path) -> dict[str, Any] | None:
    """The git commit (and whether the tree had changes) of the repository around ``where``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def run_info(seed: int, device: str, recipe_path: Path | None) -> dict[str, Any]:
    """The starting contents of ``run.json``."""
    return {
        "status": "running",
        "seed": seed,
        "device": device,
        "command": sys.argv,
        "recipe_source": str(recipe_path) if recipe_path else None,
        "git": git_commit(recipe_path.parent if recipe_path else Path.cwd()),
        "versions": versions(),
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class MetricsLog:
    """``metrics.jsonl``: one JSON object per logged row, appended and flushed as it comes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def keep_rows_until(path: Path, step: int) -> None:
    """Drop the rows of ``metrics.jsonl`` after ``step`` (atomically)."""
    if path.exists():
        rows = [r for r in read_metrics(path) if r["step"] <= step]
        write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_run_info(path: Path) -> dict[str, Any]:
    """A run folder's ``run.json`` as a mapping."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GanlabError(f"{path}: missing; every run folder holds its run.json.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GanlabError(
            f"{path}: cannot be read as JSON ({' '.join(str(exc).split())})."
        ) from None
    if not isinstance(info, dict):
        raise GanlabError(f"{path}: expected a JSON object.")
    return info


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's ``metrics.jsonl``.

    A last line without its newline that does not parse is a row cut off by a run that was
    killed mid-write; it is left out. Any other line that is not a JSON object with a
    ``step`` is an error that names the file and line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GanlabError(f"{path}: missing; every run folder holds its metrics.jsonl.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GanlabError(f"{path}: cannot be read ({' '.join(str(exc).split())}).") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: cut off mid-write
                continue
            raise GanlabError(f"{path}, line {number}: not JSON ({exc.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise GanlabError(f"{path}, line {number}: expected a JSON object with a step.")
        rows.append(row)
    return rows
