"""The tutorial's console output: the seed, then a stats line every N iterations."""

from __future__ import annotations

import time

import click
from pydantic import Field

import ganlab


class ConsoleParams(ganlab.Params):
    every: int = Field(default=50, gt=0, description="print a stats line every N iterations")


class Console:
    """Prints ``[epoch/num_epochs][i/len(dataloader)] Loss_D ... D(G(z)): before / after``."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.started = 0.0

    @ganlab.hookimpl
    def ganlab_run_start(self, run: ganlab.Run) -> None:
        self.started = time.perf_counter()
        click.echo(f"Random Seed: {run.seed}")
        click.echo(
            f"Run folder: {run.dir}\nDevice: {run.device}, {len(run.dataset)} images of "
            f"{'x'.join(map(str, run.dataset.image_shape))}, {run.steps_per_epoch} iterations "
            f"per epoch, {run.total_steps} in all"
        )
        click.echo("Starting Training Loop...")

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.Run, stats: ganlab.StepStats) -> None:
        if stats.index % self.every != 0:
            return
        # float() waits for the device: only here, once every `every` iterations.
        click.echo(
            f"[{stats.epoch}/{run.num_epochs}][{stats.index}/{run.steps_per_epoch}]\t"
            f"Loss_D: {float(stats.loss_d):.4f}\tLoss_G: {float(stats.loss_g):.4f}\t"
            f"D(x): {float(stats.d_real):.4f}\t"
            f"D(G(z)): {float(stats.d_fake):.4f} / {float(stats.d_fake_after):.4f}"
        )

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.Run) -> None:
        seconds = time.perf_counter() - self.started
        click.echo(f"Finished {run.step} iterations in {seconds:.1f} s.")


def build_console(params: ConsoleParams) -> Console:
    """Print the tutorial's training statistics line every N iterations."""
    return Console(params.every)


@ganlab.hookimpl
def ganlab_register_callbacks(register: ganlab.Register) -> None:
    register("console", build_console, params=ConsoleParams)
