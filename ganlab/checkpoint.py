"""Checkpoints: everything a run needs to continue exactly, written atomically.

A checkpoint holds the models, both optimizers, the step and epoch (so the position in the
epoch's seeded data order), every RNG state, the fixed latent vectors, the logged history,
the resolved recipe and the versions. It holds only tensors, numbers, strings and
containers of them, so it loads with ``torch.load(weights_only=True)``, which cannot run
code hidden in a file.

Files: ``checkpoints/step_<N>.pt`` every ``train.checkpoint_every`` steps and at the end
(the newest ``train.keep_checkpoints`` are kept), and ``checkpoints/final.pt`` when a run
completes.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganlab.errors import GanlabError
from ganlab.rundir import write_atomic

if TYPE_CHECKING:
    from ganlab.run import Run

STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


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
    "scalers": ((dict,), "the fp16 gradient scalers", False),
    "generator_ema": ((dict, type(None)), "the moving average of the generator", False),
    "rng_by_rank": ((list,), "every process's random number generators", False),
    "processes": ((int,), "the number of processes", False),
    "versions": ((dict,), "the package versions", False),
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
    """The run's ``step_<N>.pt`` files, oldest first."""
    folder = run_dir / "checkpoints"
    found = (
        [p for p in folder.glob("step_*.pt") if STEP_FILE.match(p.name) and p.is_file()]
        if folder.is_dir()
        else []
    )
    return sorted(found, key=lambda p: int(STEP_FILE.match(p.name).group(1)))  # type: ignore[union-attr]


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints."""
    for old in step_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def publish_final(path: Path) -> Path:
    """Make ``checkpoints/final.pt`` the same file as ``path`` (a hard link where possible)."""
    final = path.with_name("final.pt")
    tmp = path.with_name("final.pt.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, final)
    return final


# --- RNG states -----------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's (CPU and CUDA) RNG states, as plain data and tensors."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": numpy_state["state"]["pos"],
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- a run's whole state ----------------------------------------------------------------------


def training_state(run: Run, rng_by_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything `restore_training_state` needs to continue ``run`` exactly.

    ``rng_by_rank`` holds every process's RNG states (one entry without torchrun).
    """
    return {
        "generator": run.generator.state_dict(),
        "discriminator": run.discriminator.state_dict(),
        "opt_g": run.opt_g.state_dict(),
        "opt_d": run.opt_d.state_dict(),
        "step": run.step,
        "epoch": run.epoch,
        "image_shape": list(run.dataset.image_shape),
        "fixed_latents": run.fixed_latents.cpu(),
        "history": run.history,
        "scalers": {net: scaler.state_dict() for net, scaler in run.scalers.items()},
        "generator_ema": (
            run.generator_ema.state_dict() if run.generator_ema is not None else None
        ),
        "rng": rng_by_rank[0],
        "rng_by_rank": rng_by_rank,
        "processes": len(rng_by_rank),
        "recipe": run.recipe.model_dump(mode="json"),
        "versions": run.info.get("versions", {}),
    }


def restore_training_state(run: Run, state: dict[str, Any], source: Path) -> None:
    """Put ``run`` back exactly where the checkpoint ``state`` (read from ``source``) was
    taken. A part that does not fit the run as its recipe builds it now is one clear error
    that names the part."""
    parts: dict[str, Callable[[], None]] = {
        "generator": lambda: run.generator.load_state_dict(state["generator"]),
        "discriminator": lambda: run.discriminator.load_state_dict(state["discriminator"]),
        "opt_g": lambda: run.opt_g.load_state_dict(state["opt_g"]),
        "opt_d": lambda: run.opt_d.load_state_dict(state["opt_d"]),
        "fixed_latents": lambda: _restore_latents(run, state["fixed_latents"]),
    }
    if run.scalers:
        parts["scalers"] = lambda: [
            scaler.load_state_dict(state["scalers"][net]) for net, scaler in run.scalers.items()
        ]
    if run.generator_ema is not None:
        parts["generator_ema"] = lambda: run.generator_ema.load_state_dict(  # type: ignore[union-attr]
            state["generator_ema"]
        )
    parts["rng"] = lambda: set_rng_state(state.get("rng_by_rank", [state["rng"]])[run.group.rank])
    for key, restore in parts.items():
        try:
            restore()
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise GanlabError(
                f"{source}: its {key!r} ({CONTENTS[key][1]}) does not fit this run as the "
                f"recipe's plugins build it now ({first_line}). Were the plugins or the "
                "checkpoint changed since the run? Use the versions that trained it."
            ) from None
    run.step = state["step"]
    run.epoch = state["epoch"]
    run.history = list(state["history"])


def _restore_latents(run: Run, latents: torch.Tensor) -> None:
    shape = tuple(run.generator.latent_shape)  # type: ignore[arg-type]
    if tuple(latents.shape[1:]) != shape:
        raise ValueError(f"latent vectors of shape {tuple(latents.shape[1:])}, G takes {shape}")
    run.fixed_latents = latents.to(run.device)
