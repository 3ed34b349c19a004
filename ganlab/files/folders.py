"""Run folders: a new one made and named, its ``run.json`` and ``recipe.yaml`` written and
read back, and the run folders a command is given found.

``<out>/<recipe name>/<YYYYmmdd-HHMMSS>-s<seed>/`` holds ``recipe.yaml`` (resolved),
``run.json`` (versions, git commit, device, seed, timings, status), ``metrics.jsonl``
(`ganlab.files.metrics_log`) and ``checkpoints/`` (`ganlab.files.checkpoint`); callbacks add
their own files (``samples/`` ...). Every command that reads a run folder (``--resume``,
``compare``, ``runs``) finds and reads it here.
"""

from __future__ import annotations

import contextlib
import json
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
from ganlab.files.atomic import write_atomic
from ganlab.files.metrics_log import read_metrics
from ganlab.files.runlock import RunLock
from ganlab.recipe.yamlfile import load_yaml

#: The packages whose versions every run.json records (plugins add their own to run.info).
PACKAGES = ("ganlab", "torch", "torchvision", "numpy", "pluggy", "pydantic")

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


# --- finding run folders -----------------------------------------------------------------------


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
