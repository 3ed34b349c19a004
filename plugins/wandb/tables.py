"""W&B Tables of generated samples: each image with its class, D's score and the seed that
makes it again, and for a conditional run a table per class (docs/outputs.md, W&B).

The wandb logger logs them every ``table_every`` steps and at the end (``table_every: end``:
at the end only; ``0``: never), ``table_rows`` rows each. Row ``i`` is the image of
`evaluated_generator` (eval mode) for the latent vector ``run.sample_latents(1, i)``, in
class ``i % classes`` for a conditional run: ``ganlab sample RUN --seed i -n 1`` (with
``--class <its class>``) makes it again from the checkpoint of that step. The rows are the
same seeds at every step, so tables of different steps (and runs) compare row by row.

Everything here goes through the run's view (`sample_latents`, `generate`, `score`), which
leaves G, D and training's random streams as they were: a run trains the same with tables
or without.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

import ganlab

#: ``table_every``: every N steps and at the end, ``end`` (the end only) or 0 (never).
TableEvery = int | Literal["end"]
#: The W&B keys of the tables (in the ``media`` section, on the step axis).
SAMPLE_TABLE = "media/sample_table"
CLASS_TABLE = "media/class_table"
#: Images made (and scored) at once, so a large table does not need a large batch's memory.
CHUNK = 32
#: How a metric names its value of one class (swd's ``per_class``: ``swd_class_<name>``).
CLASS_INFIX = "_class_"


class SampleTables:
    """When the logger makes a table, and what goes in it."""

    def __init__(self, every: TableEvery, rows: int) -> None:
        self.every = every
        self.rows = rows
        self.last_step = -1  # the step of the last table made

    def due(self, step: int, total_steps: int) -> bool:
        """A table at ``step`` of training (the last step's waits for the run's end, when
        its metrics have been computed)."""
        every = self.every
        return isinstance(every, int) and every > 0 and step % every == 0 and step < total_steps

    def due_at_end(self, step: int) -> bool:
        """A table at the run's end: unless tables are off, or one was made at that step."""
        return self.every != 0 and step != self.last_step

    def tables(self, run: ganlab.RunView) -> dict[str, Any]:
        """The tables of this step, by W&B key: the samples, and for a conditional run the
        classes."""
        import wandb

        self.last_step = run.step
        seeds = list(range(self.rows))
        names = run.class_names if run.g_takes_labels else None
        labels = None
        if names:
            labels = torch.tensor([s % len(names) for s in seeds], device=run.device)
        images, scores = make_and_score(run, seeds, labels)
        columns: list[str | int] = ["image", *(["class"] if names else []), "score", "seed"]
        samples = wandb.Table(columns=columns)
        for i, seed in enumerate(seeds):
            image = wandb.Image(hwc(images[i]))
            cells = [image, names[int(labels[i])]] if names and labels is not None else [image]
            samples.add_data(*cells, scores[i], seed)
        found: dict[str, Any] = {SAMPLE_TABLE: samples}
        if names and labels is not None:
            found[CLASS_TABLE] = class_table(names, labels.tolist(), scores, run.history)
        return found


def make_and_score(
    run: ganlab.RunView, seeds: Sequence[int], labels: torch.Tensor | None
) -> tuple[torch.Tensor, list[float]]:
    """uint8 images ``(N, C, H, W)`` on the CPU of `evaluated_generator` (eval mode) for the
    seeds' latent vectors (and labels), and D's raw score of each."""
    images, scores = [], []
    for start in range(0, len(seeds), CHUNK):
        chunk = seeds[start : start + CHUNK]
        latents = torch.cat([run.sample_latents(1, seed) for seed in chunk])
        these = None if labels is None else labels[start : start + CHUNK]
        made = run.generate(latents, these, eval_mode=True)
        # D scores what the table shows: the images as uint8, back in [-1, 1].
        shown = ganlab.to_uint8(made)
        scores += run.score(shown.float().div(127.5).sub(1), these).tolist()
        images.append(shown.cpu())
    return torch.cat(images), scores


def hwc(image: torch.Tensor) -> Any:
    """A uint8 ``(C, H, W)`` image as the array W&B takes: ``(H, W)`` or ``(H, W, C)``."""
    array = image.permute(1, 2, 0).numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def class_table(
    names: Sequence[str],
    labels: Sequence[int],
    scores: Sequence[float],
    history: Sequence[Mapping[str, float]],
) -> Any:
    """One row per class: its name, its rows in the sample table, D's mean score of them,
    and the latest value of each per-class metric (``<metric>_class_<name>``, such as swd's
    ``per_class``) logged so far; without such metrics, the count and the score only."""
    import wandb

    latest: dict[str, float] = {}
    for row in history:
        latest.update({k: v for k, v in row.items() if CLASS_INFIX in k})
    metrics = sorted(
        {k.split(CLASS_INFIX)[0] for k in latest if k.split(CLASS_INFIX, 1)[1] in names}
    )
    table = wandb.Table(columns=["class", "samples", "mean_score", *metrics])
    for label, name in enumerate(names):
        mine = [s for s, k in zip(scores, labels, strict=True) if k == label]
        mean = sum(mine) / len(mine) if mine else math.nan
        values = [latest.get(f"{metric}{CLASS_INFIX}{name}", math.nan) for metric in metrics]
        table.add_data(name, len(mine), mean, *values)
    return table
