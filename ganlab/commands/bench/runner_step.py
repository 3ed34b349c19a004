"""ganlab's own training step, for `ganlab bench` to time and to count: no copy of it.

The bench's minimal loop and its FLOP count run `ganlab.engine.step.Step`, built by the
runner's own assembly (`ganlab.engine.assemble.assemble_run`) from the recipe, so that any
change to the step shows up in both. What they leave out is the loop around the step
(`ganlab.engine.loop.Loop`): reading batches, hooks, logging, checkpoints, evaluations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ganlab.engine.assemble import NoHooks, assemble_run
from ganlab.engine.step import Step
from ganlab.plugin_manager.blame import describe
from ganlab.recipe.models import Resolved


@contextlib.contextmanager
def runner_step(
    resolved: Resolved, device: torch.device, steps: int, **train: Any
) -> Iterator[Step]:
    """The runner's `Step` for ``resolved`` on ``device``, for a run of ``steps`` steps (the
    length its learning-rate schedules are given), with the ``train:`` fields in ``train``
    changed (``batch_size=...``, ``precision=...``).

    It runs eagerly (no ``train.compile``, no ``train.cuda_graphs``), and its run reads no
    batches (no data cache is built, no loader worker started): the caller gives the step its
    images. The run's folder is a temporary one, removed when the block ends, and its events
    go nowhere (`NoHooks`): nothing of the user's is written.
    """
    recipe = resolved.recipe
    eager = {"compile": False, "cuda_graphs": False, "data_cache": False, "workers": 0}
    spec = recipe.train.model_copy(update={**eager, "epochs": None, "steps": steps, **train})
    changed = dataclasses.replace(resolved, recipe=recipe.model_copy(update={"train": spec}))
    with tempfile.TemporaryDirectory(prefix="ganlab-bench-") as folder:
        run = assemble_run(changed, device, Path(folder), NoHooks())
        yield Step(run, describe(resolved.get("loss")[0], "loss"))


def data_labels(step: Step, count: int) -> torch.Tensor | None:
    """The classes of the first ``count`` images of the step's data set (repeated when it has
    fewer), on the step's device, as the runner's batches carry them; None without classes."""
    labels = step.run.labels
    if labels is None:
        return None
    return labels.values[torch.arange(count) % len(labels.values)].to(step.run.device)
