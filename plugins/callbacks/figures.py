"""The tutorial's result figures: real images before training, the loss curves, and real
beside fake at the end."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in any process
from pydantic import Field

import ganlab


class FiguresParams(ganlab.Params):
    every: int = Field(
        default=1000, gt=0, description="redraw the figures every N iterations (and at the end)"
    )
    images: int = Field(default=64, gt=0, description="real and fake images per grid")


def save_figure(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG that appears whole or not at all, even if the run is
    killed while it is written: to a temporary file, then renamed over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        figure.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def plot_losses(history: Sequence[Mapping[str, float]], path: Path) -> Path:
    """G's and D's loss against the iteration, as in the tutorial."""
    rows = [r for r in history if "loss_g" in r]
    figure = Figure(figsize=(10, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title("Generator and Discriminator Loss During Training")
    steps = [r["step"] for r in rows]
    axes.plot(steps, [r["loss_g"] for r in rows], label="G", linewidth=0.8)
    axes.plot(steps, [r["loss_d"] for r in rows], label="D", linewidth=0.8)
    axes.set_xlabel("iterations")
    axes.set_ylabel("Loss")
    axes.legend()
    return save_figure(figure, path)


def plot_real_vs_fake(real: torch.Tensor, fake: torch.Tensor, path: Path) -> Path:
    """Two image grids side by side: real training images and G's images."""
    figure = Figure(figsize=(15, 7.5), layout="constrained")
    for i, (title, images) in enumerate((("Real Images", real), ("Fake Images", fake))):
        axes = figure.add_subplot(1, 2, i + 1)
        axes.axis("off")
        axes.set_title(title)
        axes.imshow(ganlab.grid(images, nrow=8, padding=5).permute(1, 2, 0).numpy())
    return save_figure(figure, path)


class Figures:
    """Writes ``figures/real_images.png`` at the start, and ``figures/losses.png`` and
    ``figures/real_vs_fake.png`` every N iterations and at the end."""

    def __init__(self, every: int, images: int) -> None:
        self.every = every
        self.images = images

    @ganlab.hookimpl
    def ganlab_run_start(self, run: ganlab.RunView) -> None:
        path = ganlab.save_grid(
            run.real_images(self.images), run.dir / "figures" / "real_images.png"
        )
        run.log_file("real_images", path, kind="image")

    def _draw(self, run: ganlab.RunView) -> tuple[Path, Path]:
        # run.history holds the rows flushed so far (every train.log_every steps).
        figures = run.dir / "figures"
        labels = None if run.fixed_labels is None else run.fixed_labels[: self.images]
        fake = run.generate(run.fixed_latents[: self.images], labels).cpu()
        return (
            plot_losses(run.history, figures / "losses.png"),
            plot_real_vs_fake(run.real_images(len(fake)), fake, figures / "real_vs_fake.png"),
        )

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.RunView, stats: ganlab.StepStats) -> None:
        if stats.step % self.every == 0:
            self._draw(run)  # long runs have up-to-date figures while they train

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.RunView) -> None:
        losses, real_vs_fake = self._draw(run)
        run.log_file("losses", losses, kind="image")
        run.log_file("real_vs_fake", real_vs_fake, kind="image")


def build_figures(params: FiguresParams) -> Figures:
    """The tutorial's figures: real images, loss curves, real beside fake."""
    return Figures(params.every, params.images)


@ganlab.hookimpl
def ganlab_register_callbacks(register: ganlab.Register) -> None:
    register("figures", build_figures, params=FiguresParams)
