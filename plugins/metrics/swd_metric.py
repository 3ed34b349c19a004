"""Quality metrics, and keeping the best checkpoint by one of them.

``swd`` is the multi-scale sliced Wasserstein distance on Laplacian-pyramid patches (Karras et
al. 2018): it needs no pretrained network, so it works on every machine. Lower is better.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import click
import torch
from pydantic import Field

import ganlab
from ganlab_plugins.metrics.swd import swd


class SWDParams(ganlab.Params):
    images: int = Field(default=512, gt=0, description="real and generated images compared")
    seed: int = Field(default=0, ge=0, description="seed of the latent vectors and patches")
    per_class: bool = Field(
        default=False,
        description="also score each class of a conditional run on its own (`swd_class_<name>`: "
        "its real images against G's images of that class)",
    )


class SlicedWasserstein:
    """SWD between the run's first training images and G's images (eval mode) for a fixed
    set of latent vectors, so that scores at different steps compare."""

    def __init__(self, params: SWDParams) -> None:
        self.params = params
        self.real: dict[int | None, torch.Tensor] = {}  # decoded once per run, by class

    def __call__(self, run: ganlab.RunView) -> dict[str, float]:
        p = self.params
        results = self.score(run, None)
        if p.per_class and run.class_names is not None and run.g_takes_labels:
            for label, name in enumerate(run.class_names):
                results[f"swd_class_{name}"] = self.score(run, label)["swd"]
        return results

    def score(self, run: ganlab.RunView, label: int | None) -> dict[str, float]:
        """SWD of the whole data set (``label`` None), or of one class: of as many images
        as it has, when that is fewer than ``images`` (said once, on stderr)."""
        count = min(self.params.images, run.dataset_size)
        if label not in self.real:
            self.real[label] = ganlab.to_uint8(run.real_images(count, label=label))
            which = "the data set" if label is None else f"class {label} of the data set"
            note_fewer("swd", len(self.real[label]), self.params.images, which)
        real = self.real[label]
        fake = run.sample_images(len(real), self.params.seed, label=label)
        results = swd(real, fake, seed=self.params.seed)
        return results if finite_generator(run) else dict.fromkeys(results, math.nan)


def finite_generator(run: ganlab.RunView) -> bool:
    """Whether the generator the metrics score (``run.evaluated_generator``) has finite
    weights. Its images are made uint8 before a metric sees them, which turns NaN into
    black pixels; a metric of a generator that is not finite is NaN instead, never a score
    of those black images."""
    module = run.evaluated_generator
    tensors = itertools.chain(module.parameters(), module.buffers())
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def note_fewer(metric: str, count: int, asked: int, which: str = "the data set") -> None:
    """Say on stderr that a metric scores ``count`` real images, fewer than the ``asked``
    its ``images`` param names, because ``which`` has no more: scores compare only at
    equal counts."""
    if count < asked:
        click.echo(
            f"ganlab: {metric}: {which} has {count} images, fewer than images={asked}; "
            f"{metric} compares {count} real images (scores compare only at equal counts).",
            err=True,
        )


def build_swd(params: SWDParams) -> ganlab.Metric:
    """Sliced Wasserstein distance on Laplacian-pyramid patches (lower is better)."""
    return SlicedWasserstein(params)


class BestParams(ganlab.Params):
    metric: ganlab.MetricKey = Field(default="swd", description="the result key to rank by")
    mode: Literal["min", "max"] = Field(default="min", description="min: lower is better")


class KeepBest:
    """Writes ``checkpoints/best.pt`` whenever the chosen metric improves."""

    def __init__(self, params: BestParams) -> None:
        self.params = params
        self.best: float | None = None

    @ganlab.hookimpl
    def ganlab_evaluation_end(self, run: ganlab.RunView, results: dict[str, float]) -> None:
        value = results.get(self.params.metric)
        if value is None:
            return
        better = self.best is None or (
            value < self.best if self.params.mode == "min" else value > self.best
        )
        if not better:
            return
        self.best = value
        path = run.dir / "checkpoints" / "best.pt"
        run.save_checkpoint(path)
        run.info["best"] = {"metric": self.params.metric, "value": value, "step": run.step}
        run.log_file("best", path, kind="model")


def build_best(params: BestParams) -> KeepBest:
    """Keep checkpoints/best.pt: the state with the best value of one metric so far."""
    return KeepBest(params)


@ganlab.hookimpl
def ganlab_register_metrics(register: ganlab.Register) -> None:
    # One swd_<side> per pyramid level, which depends on the image size: a pattern.
    register("swd", build_swd, params=SWDParams, results=("swd", "swd_*"))


@ganlab.hookimpl
def ganlab_register_callbacks(register: ganlab.Register) -> None:
    register("best", build_best, params=BestParams)
