"""G's output on the run's fixed latent vectors as training goes on: the tutorial's 8x8
grids, and an animation of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pydantic import Field

import ganlab


class SamplesParams(ganlab.Params):
    every: int = Field(default=500, gt=0, description="save a grid every N iterations")
    nrow: int = Field(
        default=8,
        gt=0,
        description="images per row of the grid (a conditional run's grid has one row per "
        "class instead, of the images of that class)",
    )


class Samples:
    """Writes ``samples/step_<N>.png`` after the first iteration, every N and at the end
    (also as ``samples/final.png``), and ``samples/progress.gif`` of all of them."""

    def __init__(self, every: int, nrow: int) -> None:
        self.every = every
        self.nrow = nrow
        self.frames: list[torch.Tensor] = []  # uint8 grids, small: one per `every` steps
        self.last_saved = -1

    def _save(self, run: ganlab.RunView) -> Path:
        labels = run.fixed_labels
        # A conditional run's fixed latents come a row per class: as many columns as class 0 has.
        nrow = self.nrow if labels is None else int((labels == labels[0]).sum())
        frame = ganlab.grid(run.generate(run.fixed_latents, labels), nrow)
        path = ganlab.save_png(frame, run.dir / "samples" / f"step_{run.step:06d}.png")
        self.frames.append(frame)
        self.last_saved = run.step
        run.log_file("samples", path, kind="image")
        # Rewritten at each save so a long run always has an up-to-date animation.
        ganlab.save_gif(self.frames, run.dir / "samples" / "progress.gif")
        return path

    @ganlab.hookimpl
    def ganlab_run_start(self, run: ganlab.RunView) -> None:
        # A resumed run continues the animation with the grids it already saved.
        for path in sorted((run.dir / "samples").glob("step_*.png")):
            if int(path.stem.removeprefix("step_")) <= run.step:
                self.frames.append(torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1))

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.RunView, stats: ganlab.StepStats) -> None:
        # As in the tutorial: right after the first iteration, then every `every`.
        if stats.step == 1 or stats.step % self.every == 0:
            self._save(run)

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.RunView) -> None:
        if self.last_saved != run.step:
            self._save(run)
        ganlab.save_png(self.frames[-1], run.dir / "samples" / "final.png")  # the last grid
        run.log_file("progress", run.dir / "samples" / "progress.gif", kind="video")


def build_samples(params: SamplesParams) -> Samples:
    """Save G's images for the fixed latent vectors every N iterations and at the end."""
    return Samples(params.every, params.nrow)


@ganlab.hookimpl
def ganlab_register_callbacks(register: ganlab.Register) -> None:
    register("samples", build_samples, params=SamplesParams)
