"""The tutorial's console output, with progress: the seed, the stats line every N
iterations, and a progress bar (on a terminal, or Jupyter's widget in a notebook) or plain
progress lines (in logs and CI)."""

from __future__ import annotations

import sys
import time
from typing import Literal, NoReturn

import click
from pydantic import Field
from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm

import ganlab

#: tqdm.auto chose Jupyter's widget: running in a notebook kernel that has ipywidgets.
IN_NOTEBOOK = issubclass(tqdm, notebook_tqdm)


class ConsoleParams(ganlab.Params):
    every: int = Field(default=50, gt=0, description="print a stats line every N iterations")
    progress: Literal["auto", "bar", "lines", "off"] = Field(
        default="auto",
        description="auto: a bar on a terminal or in a notebook, else a plain line every 10% "
        "of the run",
    )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


class Console:
    """Prints ``[epoch/num_epochs][i/len(dataloader)] Loss_D ... D(G(z)): before / after``,
    and shows the run's progress."""

    def __init__(self, every: int, progress: str) -> None:
        self.every = every
        self.progress = progress
        self.bar: tqdm[NoReturn] | None = None  # a bar over no iterable, updated by hand
        self.started = 0.0
        self.first_step = 0
        self.first_images = 0  # run.images_seen when this session of the run started

    def _echo(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)  # keeps the bar below the printed lines
        else:
            click.echo(line)

    @ganlab.hookimpl
    def ganlab_run_start(self, run: ganlab.RunView) -> None:
        self.started = time.perf_counter()
        self.first_step = run.step
        self.first_images = run.images_seen
        click.echo(f"Random Seed: {run.seed}")
        click.echo(
            f"Device: {run.device}, {run.dataset_size} images of "
            f"{'x'.join(map(str, run.image_shape))}, {run.steps_per_epoch} iterations "
            f"per epoch, {run.total_steps} in all"
        )
        click.echo("Starting Training Loop...")
        mode = self.progress
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() or IN_NOTEBOOK else "lines"
        self.progress = mode
        if mode == "bar":
            self.bar = tqdm(
                total=run.total_steps,
                initial=run.step,
                unit="it",
                dynamic_ncols=True,
                file=sys.stdout,
            )

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.RunView, stats: ganlab.StepStats) -> None:
        if stats.index % self.every == 0:
            # float() waits for the device: only here, once every `every` iterations.
            loss_d, loss_g = float(stats.loss_d), float(stats.loss_g)
            # The step's other statistics (penalties, plugins' statistics) and the rates of
            # scheduled optimizers (as metrics.jsonl names them) after the tutorial's
            # columns, which stay as the tutorial prints them.
            values = {k: float(v) for k, v in stats.extra.items()}
            values |= run.learning_rates
            others = "".join(f"\t{k}: {v:.4g}" for k, v in sorted(values.items()))
            self._echo(
                f"[{stats.epoch}/{run.num_epochs}][{stats.index}/{run.steps_per_epoch}]\t"
                f"Loss_D: {loss_d:.4f}\tLoss_G: {loss_g:.4f}\t"
                f"D(x): {float(stats.d_real):.4f}\t"
                f"D(G(z)): {float(stats.d_fake):.4f} / {float(stats.d_fake_after):.4f}{others}"
            )
            if self.bar is not None:
                self.bar.set_postfix(
                    loss_d=f"{loss_d:.3f}",
                    loss_g=f"{loss_g:.3f}",
                    img_s=f"{self._images_per_second(run):.0f}",
                    refresh=False,
                )
        if self.bar is not None:
            self.bar.update(1)
        elif self.progress == "lines":
            tenth = max(1, run.total_steps // 10)
            if stats.step % tenth == 0 or stats.step == run.total_steps:
                self._progress_line(run, stats.step)

    @ganlab.hookimpl
    def ganlab_evaluation_end(self, run: ganlab.RunView, results: dict[str, float]) -> None:
        if results:
            scores = "  ".join(f"{name}: {value:.4g}" for name, value in results.items())
            self._echo(f"[eval] step {run.step}: {scores}")

    def _images_per_second(self, run: ganlab.RunView) -> float:
        """Since the run (or this session of it) started: the run's own count of images, the
        one run.json and `ganlab bench` use too."""
        elapsed = time.perf_counter() - self.started
        return (run.images_seen - self.first_images) / elapsed if elapsed > 0 else 0.0

    def _progress_line(self, run: ganlab.RunView, step: int) -> None:
        elapsed = time.perf_counter() - self.started
        done = step - self.first_step
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (run.total_steps - step) / rate if rate > 0 else 0.0
        click.echo(
            f"progress: {step}/{run.total_steps} iterations ({100 * step / run.total_steps:.0f}%)"
            f", {self._images_per_second(run):.0f} img/s, elapsed {_duration(elapsed)}, "
            f"ETA {_duration(left)}"
        )

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.RunView) -> None:
        self._close()
        seconds = time.perf_counter() - self.started
        click.echo(f"Finished {run.step} iterations in {seconds:.1f} s.")

    @ganlab.hookimpl
    def ganlab_run_error(self, run: ganlab.RunView, error: BaseException) -> None:
        self._close()


def build_console(params: ConsoleParams) -> Console:
    """Print the tutorial's training statistics line every N iterations, with progress."""
    return Console(params.every, params.progress)


@ganlab.hookimpl
def ganlab_register_callbacks(register: ganlab.Register) -> None:
    register("console", build_console, params=ConsoleParams)
