"""Seeds and random number generator states: what makes a run repeatable and resumable.

`seed_everything` seeds Python, NumPy and torch from the recipe's seed before anything is
built. `rng_state` / `set_rng_state` capture and restore all of them (checkpoints hold them),
and `rng_untouched` puts them back after work that must not change training: building a
metric's network, an evaluation, every event hook (`ganlab.engine.run.GuardedHooks`) and sampling
for a grid. Reproducibility is the engine's: no plugin can shift training's random streams.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device) from the recipe's seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


@contextlib.contextmanager
def rng_untouched() -> Iterator[None]:
    """Every RNG state as it was before the block, whatever the block draws, as
    `torch.random.fork_rng` does (for Python's and NumPy's too).

    Cheap enough to wrap every event hook of every step: the states are taken and put back
    as the libraries hold them (a few microseconds on the CPU, no device synchronisation;
    CUDA's generators are only touched once CUDA is initialised).
    """
    python, numpy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
