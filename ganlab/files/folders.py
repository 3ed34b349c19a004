"""Run folders: where they go, the files the core writes into them, and reading them back.

``<out>/<recipe name>/<YYYYmmdd-HHMMSS>-s<seed>/`` holds ``recipe.yaml`` (resolved),
``run.json`` (versions, git commit, device, seed, timings, status), ``metrics.jsonl`` and
``checkpoints/``; callbacks add their own files (``samples/`` ...). Every command that reads a
run folder (``--resume``, ``compare``, ``sample``, ``eval``) finds and reads it here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ganlab.errors import GanlabError
from ganlab.files.runlock import RunLock
from ganlab.recipe.yamlfile import load_yaml

#: The packages whose versions every run.json records (plugins add their own to run.info).
PACKAGES = ("ganlab", "torch", "torchvision", "numpy", "pluggy", "pydantic")
#: The checkpoint a finished run folder is sampled and evaluated from.
FINAL = "final.pt"


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


@dataclass(frozen=True)
class NewRunDir:
    """A run folder made for a new run, the outermost folder made with it, and the run
    folder's lock (`RunLock`), taken before anything was written into it."""

    path: Path
    made: Path  #: ``path``, or the ``--out`` or recipe folder above it that was made for it
    lock: RunLock

    @contextlib.contextmanager
    def removed_on_error(self) -> Iterator[None]:
        """Remove everything made for the run if the block fails: it holds nothing else."""
        try:
            yield
        except BaseException:
            self.lock.release()  # first: Windows deletes no file that is open
            shutil.rmtree(self.made, ignore_errors=True)
            raise


def new_run_dir(out: Path, recipe_name: str, seed: int, files: dict[str, str]) -> NewRunDir:
    """A new run folder holding ``files`` (name -> text), or none at all: when a folder or
    file cannot be made (a full disk, say), every folder made here is removed again."""
    parent = out / recipe_name
    # The outermost folder this call creates, if any: all of it is new.
    first_new = next((p for p in [*reversed(parent.parents), parent] if not p.exists()), None)
    path = None
    try:
        path = create_run_dir(out, recipe_name, seed)
        try:
            lock = RunLock.take(path)  # a new folder: only a file system without locks refuses
        except BaseException:
            shutil.rmtree(first_new or path, ignore_errors=True)
            raise
        made = NewRunDir(path, first_new or path, lock)
        with made.removed_on_error():
            for name, text in files.items():
                write_atomic(path / name, text)
    except OSError as exc:
        raise GanlabError(
            f"Cannot write {exc.filename or path}: {exc.strerror or exc}. Nothing was kept "
            f"of the new run folder. {WRITABLE_OUT}"
        ) from None
    except GanlabError:
        if first_new is not None:
            shutil.rmtree(first_new, ignore_errors=True)
        raise
    return made


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


def run_info(
    seed: int, device: str, recipe_path: Path | None, plugins: list[dict[str, Any]]
) -> dict[str, Any]:
    """The starting contents of ``run.json``; ``plugins`` says where each loaded plugin came
    from (`ganlab.plugin_manager.loading.Plugins.sources`)."""
    return {
        "status": "running",
        "seed": seed,
        "device": device,
        "command": sys.argv,
        "recipe_source": str(recipe_path) if recipe_path else None,
        "git": git_commit(recipe_path.parent if recipe_path else Path.cwd()),
        "versions": versions(),
        "plugins": plugins,
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


#: How ``metrics.jsonl`` spells the numbers that JSON has no literal for (a diverged run's
#: losses and scores): as strings, which strict readers (jq, JavaScript) accept, and which
#: `read_metrics` turns back into floats. Finite numbers are written as ``json.dumps`` does.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def metrics_line(row: dict[str, Any]) -> str:
    """One row of ``metrics.jsonl`` as its line of strict JSON (with the newline)."""
    try:
        return json.dumps(row, allow_nan=False) + "\n"
    except ValueError:  # a value that is not finite: spelled as `NON_FINITE` says
        spelled = {key: _spelled(value) for key, value in row.items()}
        return json.dumps(spelled, allow_nan=False) + "\n"


def _spelled(value: Any) -> Any:
    """A value of a metrics row, a number that is not finite spelled as `NON_FINITE` says."""
    if not isinstance(value, float) or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


class MetricsLog:
    """``metrics.jsonl``: one JSON object per logged row (`metrics_line`), appended and
    flushed as it comes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(metrics_line(row))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_metrics(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``metrics.jsonl`` with ``rows`` (atomically)."""
    write_atomic(path, "".join(metrics_line(row) for row in rows))


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
    """The rows of a run folder's ``metrics.jsonl``; values spelled as `NON_FINITE` says
    (and the bare ``NaN`` of files from before ganlab wrote strict JSON) are floats again.

    A last line without its newline that does not parse is a row cut off by a run that was
    killed mid-write: it is left out, and one line on stderr names the file. Any other line
    that is not a JSON object with a ``step`` is an error that names the file and line.
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
                print(
                    f"ganlab: {path}, line {number}: the last row is cut off (the run was "
                    "stopped while writing it); it is left out.",
                    file=sys.stderr,
                )
                continue
            raise GanlabError(f"{path}, line {number}: not JSON ({exc.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise GanlabError(f"{path}, line {number}: expected a JSON object with a step.")
        rows.append({key: _number(value) for key, value in row.items()})
    return rows


def _number(value: Any) -> Any:
    """A value of a metrics row, with the spellings of `NON_FINITE` read as floats."""
    return NON_FINITE.get(value, value) if isinstance(value, str) else value


def read_recipe(path: Path) -> dict[str, Any]:
    """The resolved recipe in ``path`` (a run folder's ``recipe.yaml``) as a mapping."""
    try:
        recipe = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GanlabError(f"{path}: missing; every run folder holds its recipe.yaml.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GanlabError(
            f"{path}: cannot be read as YAML ({' '.join(str(exc).split())})."
        ) from None
    if not isinstance(recipe, dict):
        raise GanlabError(f"{path}: not a recipe (expected a mapping of keys to values).")
    return recipe


@dataclass(frozen=True)
class RunFolder:
    """What a finished or stopped run folder holds, read back."""

    path: Path
    recipe: dict[str, Any]  #: recipe.yaml
    info: dict[str, Any]  #: run.json
    rows: list[dict[str, Any]]  #: metrics.jsonl


def read_run_folder(path: Path) -> RunFolder:
    """Read one run folder: its resolved recipe, its run.json and its metrics rows."""
    return RunFolder(
        path=path,
        recipe=read_recipe(path / "recipe.yaml"),
        info=read_run_info(path / "run.json"),
        rows=read_metrics(path / "metrics.jsonl"),
    )


# --- finding run folders and their checkpoints ------------------------------------------------


def is_run_dir(path: Path) -> bool:
    """A run folder is a folder that holds ``run.json``."""
    return (path / "run.json").is_file()


def find_run_dirs(paths: Iterable[Path]) -> list[Path]:
    """The run folders named by ``paths``, in the order given, each once.

    A path that holds ``run.json`` is a run; any other folder stands for every folder under
    it (at any depth) that holds ``run.json``, sorted by path.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise GanlabError(
                f"{path}: no such file or folder. Give run folders (each holds run.json) "
                "or a folder with runs under it, such as runs/quickstart."
            )
        if is_run_dir(path):
            runs = [path]
        elif path.is_dir():
            runs = sorted(p.parent for p in path.rglob("run.json") if p.is_file())
        else:
            runs = []
        if not runs:
            raise GanlabError(
                f"{path}: no run folders found (a run folder holds run.json). Give run folders "
                "or a folder with runs under it, such as runs/quickstart; `ganlab run` makes them."
            )
        for run in runs:
            key = run.resolve()
            if key not in seen:
                seen.add(key)
                found.append(run)
    return found


def resumable_folder(path: Path) -> Path:
    """``path``, if it is a run folder that ``--resume`` can continue."""
    if not is_run_dir(path) or not (path / "recipe.yaml").is_file():
        raise GanlabError(
            f"--resume {path}: not a run folder (it needs run.json and recipe.yaml). Give a "
            "folder such as runs/<recipe>/<time>-s<seed>, or --resume auto."
        )
    return path


def newest_unfinished(parent: Path) -> Path:
    """The most recently started run under ``parent`` that did not complete and that no
    live process trains (`RunLock.holder`): one that failed, was interrupted or was killed."""
    unfinished = []
    live = []
    for path in parent.glob("*/run.json"):
        try:
            info = read_run_info(path)
        except GanlabError:
            continue  # not readable: not a run we can resume
        if info.get("status") == "completed":
            continue
        holder = RunLock.holder(path.parent)
        if holder is not None:
            live.append(f"{path.parent} (trained by {holder})")
            continue
        unfinished.append((info.get("started", ""), path.stat().st_mtime, path.parent))
    if unfinished:
        return max(unfinished)[2]
    training = f" (being trained now: {'; '.join(live)})" if live else ""
    raise GanlabError(
        f"--resume auto: no unfinished run under {parent} that no other process "
        f"trains{training}. Start a new run without --resume."
    )


def find_checkpoint(path: Path) -> Path:
    """The checkpoint file for ``path``: the file itself, or a run folder's checkpoint.

    In a run folder (or its ``checkpoints/`` folder) that is ``final.pt``, else the newest
    ``*.pt`` there.
    """
    if path.is_file():
        return path
    if not path.exists():
        raise GanlabError(
            f"{str(path)!r} not found. Give a checkpoint file (.pt) or the folder of a "
            "finished run (runs/<recipe>/<time>-s<seed>/)."
        )
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if (folder / FINAL).is_file():
        return folder / FINAL
    found = [p for p in folder.glob("*.pt") if p.is_file()]
    if not found:
        raise GanlabError(
            f"No checkpoint in {folder}: no {FINAL} and no other .pt file. Give the folder "
            "of a run that finished (runs/<recipe>/<time>-s<seed>/) or the path to a .pt file."
        )
    return max(found, key=lambda p: (p.stat().st_mtime, p.name))


def folder_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to (the checkpoint's folder if it is elsewhere)."""
    folder = checkpoint.parent
    return folder.parent if folder.name == "checkpoints" else folder
