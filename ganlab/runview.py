"""`RunView`: what event hooks and metrics see of a run in progress, and `StepStats`, what
``ganlab_step_end`` sees of one step.

A hook or a metric is given the run as ``run``, a `RunView`: the facts it may read (the
recipe, where the run stands, its folder, its models, facts of its data) and the few things
it may do (log values, announce files, sample images with G, score images with D, save a
checkpoint, ask the run to stop). The engine's own state (optimizers, schedules, precision,
batches, the row stream, the hook relay) is not part of it, so the engine may change it
without breaking a plugin; a hook cannot move a step counter or an optimizer because the view
has no way to reach them.

Nothing a view does changes training: `generate`, `score` and `sample_images` leave the
models exactly as they were (training or eval mode, batch-norm statistics, spectral-norm
vectors) and draw in a forked random state, so a run trains the same whether a plugin looks
at it every step or never. docs/plugins.md (`RunView`) is the user's reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from ganlab.plugin_manager.logkeys import Better, KeyInfo
    from ganlab.recipe.models import Recipe


class RunView(Protocol):
    """A training run as event hooks and metrics see it (``run``): read-only facts and a few
    actions that cannot change training. Annotate a hook's argument as ``ganlab.RunView``."""

    # --- what the run is --------------------------------------------------------------------

    @property
    def recipe(self) -> Recipe:
        """The resolved recipe, every default filled in (component params as plain dicts).
        Read it; changing it changes nothing but what later readers see."""
        ...

    @property
    def name(self) -> str:
        """The recipe's name."""
        ...

    @property
    def seed(self) -> int:
        """The recipe's seed."""
        ...

    @property
    def dir(self) -> Path:
        """The run folder: a hook writes its files here (and announces them with `log_file`)."""
        ...

    @property
    def device(self) -> torch.device:
        """The training device."""
        ...

    # --- where it stands --------------------------------------------------------------------

    @property
    def step(self) -> int:
        """Steps done so far (in `ganlab_step_end`: counting the step that just ended)."""
        ...

    @property
    def epoch(self) -> int:
        """The current epoch, from 0."""
        ...

    @property
    def total_steps(self) -> int:
        """The step the run ends at (``train.steps``, or ``train.epochs`` worth)."""
        ...

    @property
    def steps_per_epoch(self) -> int:
        """Steps per epoch: the data set split into batches of ``train.batch_size`` times
        ``train.d_steps`` (times the processes of a torchrun run)."""
        ...

    @property
    def num_epochs(self) -> int:
        """Epochs the run touches (the last may be partial when ``train.steps`` ends it)."""
        ...

    @property
    def images_seen(self) -> int:
        """Real images trained on by all processes since this process started the run (every
        D update of every step): the count images per second come from."""
        ...

    @property
    def learning_rates(self) -> dict[str, float]:
        """The learning rate now of each optimizer with a schedule (``optimizers.<net>.
        schedule``), by the key ``metrics.jsonl`` logs it under (``lr_generator``,
        ``lr_discriminator``); empty without schedules."""
        ...

    @property
    def history(self) -> Sequence[Mapping[str, float]]:
        """Every row logged so far, as in ``metrics.jsonl`` (a copy: rows are flushed every
        ``train.log_every`` steps, so it lags behind `step`)."""
        ...

    @property
    def keys(self) -> Mapping[str, KeyInfo]:
        """What every logged key is: ``key -> KeyInfo(namespace, better)`` (``train`` for the
        step statistics, ``eval`` for metrics' results); ``run.json`` keeps them under
        ``keys``."""
        ...

    @property
    def info(self) -> dict[str, Any]:
        """What ``run.json`` holds. A plugin may add a key of its own (written at the start,
        when a logged key first appears, after `ganlab_run_end`, and on a failure before
        `ganlab_run_error`); the runner's keys are the runner's."""
        ...

    # --- the models ---------------------------------------------------------------------------

    @property
    def generator(self) -> nn.Module:
        """G as it trains (a `ganlab.Generator`). Read its weights and attributes; make images
        with `generate`, which leaves it as it was. Never change it."""
        ...

    @property
    def discriminator(self) -> nn.Module:
        """D as it trains. Read its weights and attributes; score images with `score`, which
        leaves it as it was. Never change it."""
        ...

    @property
    def evaluated_generator(self) -> nn.Module:
        """The generator that metrics and sampling use: the moving average of G's weights
        when the recipe keeps one (``train.ema``), else G itself. Never change it."""
        ...

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one of G's latent vectors."""
        ...

    @property
    def g_takes_labels(self) -> bool:
        """Whether G is conditional (registered with ``conditional=True``): `generate` then
        needs class labels."""
        ...

    @property
    def d_takes_labels(self) -> bool:
        """Whether D is conditional: `score` then needs class labels."""
        ...

    # --- the data -----------------------------------------------------------------------------

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape of one training image: ``(channels, height, width)``."""
        ...

    @property
    def dataset_size(self) -> int:
        """How many images the data set has."""
        ...

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The data set's classes by number (class ``k`` is ``class_names[k]``), or None for
        a data set without classes."""
        ...

    @property
    def fixed_latents(self) -> torch.Tensor:
        """The run's fixed latent vectors (64, seeded by ``recipe.seed``; a conditional G:
        one row of 8 per class), on the device: a copy, the same at every call."""
        ...

    @property
    def fixed_labels(self) -> torch.Tensor | None:
        """The class of each fixed latent vector for a conditional G (a copy), else None: pass
        it with `fixed_latents` to `generate`."""
        ...

    def real_images(
        self, n: int, seed: int | None = None, label: int | None = None
    ) -> torch.Tensor:
        """``n`` real images, on the CPU, in [-1, 1]: the first ``n`` of the run's first
        epoch, or with ``seed`` the first ``n`` of that seed's order, the same for every run
        on the data set whatever its own seed; with ``label``, the first ``n`` of that class
        (fewer if the class has fewer)."""
        ...

    # --- images from G, scores from D ---------------------------------------------------------

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        """``n`` latent vectors on the device, from their own generator seeded with ``seed``
        (never the training stream): the same vectors for the same seed."""
        ...

    def sample_labels(self, n: int, seed: int) -> torch.Tensor | None:
        """``n`` class labels drawn as often as the classes occur in the data set, from their
        own seeded generator; None when G takes no labels. Pair them with `sample_latents`."""
        ...

    def generate(
        self, latents: torch.Tensor, labels: torch.Tensor | None = None, eval_mode: bool = False
    ) -> torch.Tensor:
        """Images (float, in [-1, 1], no gradients) for ``latents`` and, for a conditional G,
        their ``labels``, leaving G exactly as it was and training's random streams alone.

        By default G in training mode, as the tutorial's progress grids (batch-norm uses the
        batch's statistics, put back afterwards); ``eval_mode`` uses `evaluated_generator` in
        eval mode, as `ganlab sample` and the metrics do.
        """
        ...

    def sample_images(
        self, n: int, seed: int, label: int | None = None, batch_size: int = 256
    ) -> torch.Tensor:
        """``n`` images of `evaluated_generator` (eval mode) for the seed's latent vectors, as
        uint8 on the CPU, made ``batch_size`` at a time: the same images at every call with
        the same seed, so scores at different steps compare. A conditional G gets labels as
        often as the classes occur in the data (`sample_labels`), or all ``label``."""
        ...

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's raw scores ``(N,)`` for ``images`` (and their ``labels``, for a conditional D),
        in eval mode and without gradients, leaving D exactly as it was (its training mode,
        batch-norm statistics, spectral-norm vectors) and training's random streams alone."""
        ...

    # --- what a hook may do -------------------------------------------------------------------

    def log(
        self,
        values: Mapping[str, float],
        step: int | None = None,
        *,
        namespace: str = "plugin",
        better: Better = None,
    ) -> None:
        """Log ``values`` (name -> number) at ``step`` (default: the current step) into the
        run's rows: ``metrics.jsonl``, the loggers (W&B files them under
        ``<namespace>/<name>``) and ``ganlab compare``, in step order with the runner's own.

        ``better`` says which way a value is better (``"lower"``, ``"higher"``, or None for
        neither, such as a diagnostic). A key keeps its namespace and direction for the whole
        run. The namespaces ``train`` and ``eval`` are the runner's; a step earlier than the
        rows already written is refused (ValueError).
        """
        ...

    def log_file(self, name: str, path: Path, kind: str) -> None:
        """Announce a file this run wrote to the loggers (`ganlab_log_file`); ``kind`` is
        ``"image"``, ``"video"`` or ``"model"``."""
        ...

    def save_checkpoint(self, path: Path) -> None:
        """Write the run's whole state to ``path`` as the runner's checkpoints are written
        (atomically; loadable by `ganlab sample`, `ganlab eval` and ``ganlab.load_generator``):
        how the built-in ``best`` callback keeps ``checkpoints/best.pt``."""
        ...

    def stop(self) -> None:
        """End the run after the current step: the loop finishes normally (the last
        evaluation, the final checkpoint and `ganlab_run_end` still happen)."""
        ...


@dataclass
class StepStats:
    """One training step's numbers, as 0-dim tensors still on the training device."""

    step: int  #: steps done, counting this one (1-based)
    epoch: int  #: epoch of this step, from 0
    index: int  #: batch index within the epoch, from 0
    loss_d: torch.Tensor
    loss_g: torch.Tensor
    d_real: torch.Tensor  #: mean readout of D on the real batch: the tutorial's D(x)
    d_fake: torch.Tensor  #: ... on the fakes before D's update: D(G(z)) "before"
    d_fake_after: torch.Tensor  #: ... on the fakes during G's update: D(G(z)) "after"
    #: the step's other statistics: each penalty's value (namespace train) and what the
    #: augmentations report (namespace aug, such as ADA's ``p``)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    #: The statistics' names: the columns of a training row in metrics.jsonl (after "step"
    #: and "epoch"), the keys W&B logs under train/, the curves `ganlab compare` plots.
    NAMES = ("loss_d", "loss_g", "d_real", "d_fake", "d_fake_after")

    def values(self) -> torch.Tensor:
        """The statistics stacked into one tensor, in the order of `NAMES`."""
        return torch.stack([getattr(self, n).detach().float() for n in self.NAMES])
