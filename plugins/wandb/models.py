"""Checkpoints as W&B model artifacts: one artifact per run, ``model-<run id>`` (as
Lightning names them), whose versions are the checkpoints the run announced, aliased by role
(``final``, ``best``), by step (``step-<N>``) and ``latest``.

W&B reads an artifact's files when it uploads them, which for an offline run is at
``wandb sync``. By default it first copies each file into its staging folder,
``$WANDB_DATA_DIR/artifacts/staging`` (``~/.local/share/wandb/artifacts/staging``), outside the
run folder (wandb 0.31, ``wandb/sdk/artifacts/artifact.py``, ``_add_local_file``, policy
``"mutable"``). Here each checkpoint is instead kept as it was when announced in
``<run>/wandb/models/`` (a hard link, so no copy: ``best.pt`` and ``final.pt`` are replaced
later, the files there are not) and added with policy ``"immutable"``, which records that file
as it is. Everything ``wandb sync`` reads is then in the run folder. The metadata names files
relative to the run folder (`run_relative`), never by a path of the machine that trained.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ganlab

#: Where a run's checkpoints wait, as they were, until ``wandb sync`` uploads them.
MODELS = Path("wandb") / "models"


def alias(text: str) -> str:
    """``text`` as a W&B artifact alias (letters, digits, ``-``, ``_``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:128] or "model"


def freeze(path: Path, target: Path) -> Path:
    """A file at ``target`` that keeps ``path``'s present contents, however ``path`` changes
    later: a hard link (no copy) where the file system allows, else a copy. A different file
    at ``target`` already (an earlier session's, with other contents) is kept, and the new
    one gets a numbered name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = target, 1
    while candidate.exists():
        if filecmp.cmp(candidate, path, shallow=False):
            return candidate
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    try:
        os.link(path, candidate)
    except OSError:
        shutil.copyfile(path, candidate)
    return candidate


def run_relative(run_dir: Path, path: Path) -> str:
    """``path`` relative to the run folder, with ``/`` (``checkpoints/best.pt``; ``../x.pt``
    outside it): what artifact metadata records of a file, so that it names the same file
    wherever the run folder is later, never a path of the machine that trained. Either
    may be relative to the working directory or absolute."""
    try:
        return Path(os.path.relpath(path.absolute(), run_dir.absolute())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return path.name


@dataclass(frozen=True)
class ModelVersion:
    """One version of ``model-<run id>``: the file, its aliases and its metadata."""

    file: Path  #: the frozen checkpoint, in ``<run>/wandb/models/``
    name: str  #: its name in the artifact (``model.pt``: the same in every version)
    aliases: list[str]
    metadata: dict[str, Any]


def model_version(
    run: ganlab.RunView, step: int, name: str, path: Path, group: str
) -> ModelVersion:
    """The checkpoint ``path``, announced as ``name`` at ``step``, as a version: ``final``
    for the core's final checkpoint, ``best`` for the ``best`` callback's (with the metric and
    its value), else its name; and every metric's value at that step. Frozen now."""
    role = "final" if name == "checkpoint" else alias(name)
    folder = run.dir.absolute() / MODELS  # absolute: W&B records the path as given
    frozen = freeze(path, folder / f"step_{step:06d}-{role}{path.suffix}")
    metadata: dict[str, Any] = {
        "step": step,
        "role": role,
        "seed": run.seed,
        "recipe": run.name,
        "group": group,
        "file": run_relative(run.dir, path),
    }
    best = run.info.get("best")
    if name == "best" and isinstance(best, dict):
        metadata.update(metric=best.get("metric"), value=best.get("value"))
    evals = {
        key: value
        for row in run.history
        if row["step"] == step
        for key, value in row.items()
        if key in run.keys and run.keys[key].namespace == "eval"
    }
    if evals:
        metadata["metrics"] = evals
    return ModelVersion(frozen, f"model{path.suffix}", ["latest", role, f"step-{step}"], metadata)


def log_model(wb: Any, version: ModelVersion) -> None:
    """Log ``version`` as a version of ``model-<wb.id>``. The same contents logged twice make
    one version with both sets of aliases (W&B versions by content)."""
    import wandb

    artifact = wandb.Artifact(f"model-{wb.id}", type="model", metadata=version.metadata)
    artifact.add_file(str(version.file), name=version.name, policy="immutable")
    wb.log_artifact(artifact, aliases=version.aliases)
