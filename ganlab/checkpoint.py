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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganlab.errors import GanlabError

if TYPE_CHECKING:
    from ganlab.run import Run

STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file, fsync and rename.

    A crash (or a full disk) while writing leaves any previous file at ``path`` intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # Serialise in memory first: torch.save's own writer turns a full disk into an
    # obscure RuntimeError, a plain write gives the OSError (ENOSPC) that says what happened.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GanlabError(
            f"Could not write the checkpoint {path}: {exc.strerror or exc}. The previous "
            f"checkpoints are untouched; free disk space, then continue with "
            f"ganlab run --resume {path.parent.parent}"
        ) from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; a file that is not a ganlab checkpoint is a clear error."""
    if not path.is_file():
        raise GanlabError(
            f"Checkpoint {str(path)!r} not found. Give a .pt file from a run folder's "
            "checkpoints/ (or the run folder itself where a command accepts one)."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanlabError(
            f"{path} is not a checkpoint ganlab can load safely ({first_line}). Only files "
            "written by ganlab (tensors and plain data, no pickled code) are accepted."
        ) from None
    if not isinstance(state, dict) or "generator" not in state:
        raise GanlabError(f"{path} is not a ganlab checkpoint (no generator weights in it).")
    return state


def step_checkpoints(run_dir: Path) -> list[Path]:
    """The run's ``step_<N>.pt`` files, oldest first."""
    folder = run_dir / "checkpoints"
    found = (
        [p for p in folder.glob("step_*.pt") if STEP_FILE.match(p.name)] if folder.is_dir() else []
    )
    return sorted(found, key=lambda p: int(STEP_FILE.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest step checkpoint of a run folder; none is a clear error."""
    files = step_checkpoints(run_dir)
    if not files:
        raise GanlabError(
            f"{run_dir} has no checkpoint to resume from (no checkpoints/step_*.pt). "
            "A run writes one every train.checkpoint_every steps: start it again instead."
        )
    return files[-1]


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


def restore_training_state(run: Run, state: dict[str, Any]) -> None:
    """Put ``run`` back exactly where the checkpoint ``state`` was taken."""
    for net in ("generator", "discriminator"):
        try:
            getattr(run, net).load_state_dict(state[net])
        except RuntimeError as exc:
            component = getattr(run.recipe, net)
            raise GanlabError(
                f"The checkpoint's {net} weights do not fit {net} {component.name!r} as its "
                f"plugin builds it now ({str(exc).strip().splitlines()[0]}). The plugin has "
                "probably changed since the run; use the version that trained it."
            ) from None
    run.opt_g.load_state_dict(state["opt_g"])
    run.opt_d.load_state_dict(state["opt_d"])
    run.step = state["step"]
    run.epoch = state["epoch"]
    run.fixed_latents = state["fixed_latents"].to(run.device)
    run.history = list(state["history"])
    for net, scaler in run.scalers.items():
        scaler.load_state_dict(state["scalers"][net])
    if run.generator_ema is not None:
        run.generator_ema.load_state_dict(state["generator_ema"])
    set_rng_state(state.get("rng_by_rank", [state["rng"]])[run.group.rank])
