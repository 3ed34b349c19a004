"""G's output on the run's fixed latent vectors, saved as a grid as training goes on."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field
from torchvision.utils import save_image

import ganlab


class SamplesParams(ganlab.Params):
    every: int = Field(default=500, gt=0, description="save a grid every N iterations")
    nrow: int = Field(default=8, gt=0, description="images per row of the grid")


def save_grid(images: torch.Tensor, path: Path, nrow: int) -> None:
    """Save images in [-1, 1] as one PNG grid (the tutorial's make_grid, padding 2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


class Samples:
    """Writes ``samples/step_<N>.png`` after the first iteration, every N, and at the end
    (also as ``samples/final.png``)."""

    def __init__(self, every: int, nrow: int) -> None:
        self.every = every
        self.nrow = nrow
        self.last_saved = -1

    def _save(self, run: ganlab.Run) -> Path:
        path = run.dir / "samples" / f"step_{run.step:06d}.png"
        save_grid(run.generate(run.fixed_latents).cpu(), path, self.nrow)
        self.last_saved = run.step
        return path

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.Run, stats: ganlab.StepStats) -> None:
        # As in the tutorial: right after the first iteration, then every `every`.
        if stats.step == 1 or stats.step % self.every == 0:
            self._save(run)

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.Run) -> None:
        if self.last_saved != run.step:
            self._save(run)
        final = run.dir / "samples" / f"step_{run.step:06d}.png"
        (run.dir / "samples" / "final.png").write_bytes(final.read_bytes())


def build_samples(params: SamplesParams) -> Samples:
    """Save G's images for the fixed latent vectors every N iterations and at the end."""
    return Samples(params.every, params.nrow)


@ganlab.hookimpl
def ganlab_register_callbacks(register: ganlab.Register) -> None:
    register("samples", build_samples, params=SamplesParams)
