"""Checkpoint files: written atomically, loaded safely, checked before they are used.

A checkpoint is what `ganlab.engine.run.Run.state_dict` returns: the models, both optimizers,
the step and epoch (so the position in the epoch's seeded data order), every RNG state, the
fixed latent vectors, the logged history, the resolved recipe and the versions. It holds only
tensors, numbers, strings and containers of them, so it loads with
``torch.load(weights_only=True)``, which cannot run code hidden in a file.

Files: ``checkpoints/step_<N>.pt`` every ``train.checkpoint_every`` steps and at the end
(the newest ``train.keep_checkpoints`` are kept), and ``checkpoints/final.pt`` when a run
completes. Every command finds a run's checkpoints here (`step_checkpoints`,
`newest_checkpoint`, `find_checkpoint`).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import GanlabError
from ganlab.files.atomic import write_atomic

STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
#: The checkpoint a finished run folder is sampled and evaluated from.
FINAL = "final.pt"


def checkpoint_name(step: int) -> str:
    """The file name ganlab gives the checkpoint of ``step``: ``step_000042.pt``."""
    return f"step_{step:06d}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file, fsync and rename.

    A crash (or a full disk) while writing leaves any previous file at ``path`` intact.
    """
    # Serialise in memory first: torch.save's own writer turns a full disk into an
    # obscure RuntimeError, a plain write gives the OSError (ENOSPC) that says what happened.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, buffer.getvalue())
    except OSError as exc:
        raise GanlabError(
            f"Could not write the checkpoint {path}: {exc.strerror or exc}. The previous "
            f"checkpoints are untouched; free disk space, then continue with "
            f"ganlab run --resume {path.parent.parent}"
        ) from None


class UnreadableCheckpoint(GanlabError):
    """A checkpoint file that cannot be read at all: truncated, corrupt or not a checkpoint
    file (``--resume`` goes back to the newest one that can be read)."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely and check its contents (`check_checkpoint`).

    A file that cannot be read raises `UnreadableCheckpoint`; one that holds pickled Python
    objects, which could run code when loaded, or that is not a ganlab checkpoint raises
    `GanlabError`.
    """
    if not path.is_file():
        raise GanlabError(
            f"Checkpoint {str(path)!r} not found. Give a .pt file from a run folder's "
            "checkpoints/ (or the run folder itself where a command accepts one)."
        )
    kind = not_a_torch_file(path)
    if kind is not None:
        raise UnreadableCheckpoint(
            f"{path}: not a readable checkpoint; {kind}. Give a .pt "
            "file from a run folder's checkpoints/ (or the run folder itself where a command "
            "accepts one)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols
            state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as exc:
        raise UnreadableCheckpoint(f"{path}: cannot be read ({exc.strerror}).") from None
    except Exception as exc:
        # torch's message goes on to advise weights_only=False, the very thing that would
        # run such code: only the reason is kept.
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsafe:
            raise GanlabError(
                f"{path} is not a checkpoint ganlab can load safely: it holds a pickled "
                f"Python object ({unsafe.group(1)}), and loading it could run code. Only files "
                "written by ganlab (tensors and plain data) are accepted."
            ) from None
        raise UnreadableCheckpoint(
            f"{path}: not a readable checkpoint; it is truncated or corrupt ({_reason(exc)})."
        ) from None
    check_checkpoint(state, path)
    return state


#: How the files people mistake for checkpoints begin: magic bytes -> what the file is.
OTHER_FILES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"\x1f\x8b": "a gzip archive",
}
#: How a file torch.save writes begins: a zip archive, or (before torch 1.6) a pickle.
TORCH_STARTS = (b"PK\x03\x04", b"\x80")


def not_a_torch_file(path: Path) -> str | None:
    """What ``path`` is (``it is a PNG image, not a torch file``), from its first bytes,
    when it is plainly not a file torch.save wrote (an empty file, an image, a YAML
    recipe, other text ...); None when it may be one
    (a truncated or damaged checkpoint is left to torch.load to find out)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None  # torch.load says why
    if not head:
        return "it is empty (0 bytes): its writing was cut off"
    if head.startswith(TORCH_STARTS):
        return None
    for magic, what in OTHER_FILES.items():
        if head.startswith(magic):
            return f"it is {what}, not a torch file"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "it is a WebP image, not a torch file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not a torch file (nor an image)"
    if path.suffix.lower() in (".yaml", ".yml") or re.search(
        r"^(generator|discriminator|data|train|loss|base):", text, re.MULTILINE
    ):
        return (
            "it is a YAML recipe, not a torch file (`ganlab run RECIPE` trains a recipe and "
            "writes the checkpoints)"
        )
    return "it is a text file, not a torch file"


def _reason(exc: Exception) -> str:
    """The first sentence of a loading error, without torch's advice that follows it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation")[0]
    return text.strip().split(". ")[0].rstrip(".")[:200]


#: What a checkpoint holds: key -> (accepted types, what it is, required). Keys that later
#: versions of ganlab added (the scalers, the EMA generator, the RNG states by rank ...) are
#: optional, so older checkpoints still load.
CONTENTS: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "generator": ((dict,), "the generator's weights", True),
    "discriminator": ((dict,), "the discriminator's weights", True),
    "opt_g": ((dict,), "the generator's optimizer state", True),
    "opt_d": ((dict,), "the discriminator's optimizer state", True),
    "step": ((int,), "the steps done", True),
    "epoch": ((int,), "the current epoch", True),
    "fixed_latents": ((torch.Tensor,), "the fixed latent vectors", True),
    "history": ((list,), "the logged rows", True),
    "rng": ((dict,), "the random number generators' states", True),
    "recipe": ((dict,), "the resolved recipe", True),
    "image_shape": ((list, tuple), "the images' shape", False),
    "class_names": ((list, type(None)), "the data set's class names", False),
    "scalers": ((dict,), "the fp16 gradient scalers", False),
    "generator_ema": ((dict, type(None)), "the moving average of the generator", False),
    "rng_by_rank": ((list,), "every process's random number generators", False),
    "processes": ((int,), "the number of processes", False),
    "versions": ((dict,), "the package versions", False),
    "augmentations": ((list,), "the augmentations' states (ADA's probability)", False),
    "schedulers": ((dict,), "the learning-rate schedules", False),
    "plugins": ((dict,), "the states of the loss, penalties and callbacks", False),
}


def check_checkpoint(state: Any, path: Path) -> None:
    """Refuse a checkpoint whose contents are not what ganlab writes, naming the key."""
    advice = "Use a checkpoint that `ganlab run` wrote, or an older one of the same run."
    if not isinstance(state, dict):
        raise GanlabError(
            f"{path} is not a ganlab checkpoint: it holds a {type(state).__name__}, not the "
            f"mapping ganlab writes. {advice}"
        )
    for key, (types, what, required) in CONTENTS.items():
        if key not in state:
            if required:
                raise GanlabError(
                    f"{path} is not a complete ganlab checkpoint: it has no {key!r} ({what}). "
                    f"{advice}"
                )
            continue
        value = state[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise GanlabError(
                f"{path}: {key!r} ({what}) is a {type(value).__name__}, which ganlab never "
                f"writes there. {advice}"
            )
    least = {"step": 0, "epoch": 0, "processes": 1}
    for key, bound in least.items():
        if state.get(key, bound) < bound:
            raise GanlabError(
                f"{path}: {key!r} ({CONTENTS[key][1]}) is {state[key]}; it is never below "
                f"{bound}. {advice}"
            )
    shape = state.get("image_shape", [1, 1, 1])
    if len(shape) != 3 or not all(type(side) is int and side > 0 for side in shape):
        raise GanlabError(f"{path}: 'image_shape' is not (channels, height, width). {advice}")
    if state["fixed_latents"].dim() < 2:
        raise GanlabError(f"{path}: 'fixed_latents' is not a batch of latent vectors. {advice}")
    if not all(
        isinstance(row, dict) and isinstance(row.get("step"), int) for row in state["history"]
    ):
        raise GanlabError(
            f"{path}: 'history' holds a row that is not a mapping with a step. {advice}"
        )


def step_checkpoints(run_dir: Path) -> list[Path]:
    """The run's ``step_<N>.pt`` files, oldest first: those ganlab wrote (`checkpoint_name`),
    never another file that looks like one, so rotation deletes only ganlab's own."""
    folder = run_dir / "checkpoints"
    found: list[tuple[int, Path]] = []
    for path in folder.glob("step_*.pt") if folder.is_dir() else ():
        match = STEP_FILE.match(path.name)
        # Only the names ganlab writes: a step_7.pt the user put there is not the run's.
        if match and path.name == checkpoint_name(int(match.group(1))) and path.is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, key=lambda step_and_path: step_and_path[0])]


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints."""
    for old in step_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def publish_final(path: Path) -> Path:
    """Make ``checkpoints/final.pt`` the same file as ``path`` (a hard link where possible)."""
    final = path.with_name(FINAL)
    tmp = path.with_name(FINAL + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, final)
    return final


def newest_checkpoint(run_dir: Path) -> Path | None:
    """A run folder's newest checkpoint: ``final.pt`` once the run completed, else its
    newest step checkpoint; None when it has none yet."""
    final = run_dir / "checkpoints" / FINAL
    if final.is_file():
        return final
    kept = step_checkpoints(run_dir)
    return kept[-1] if kept else None


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
