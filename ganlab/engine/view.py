"""`View`: the engine's `ganlab.RunView`, what hooks and metrics are given of a `Run`.

One view per run (`assemble_run` makes it; ``run.view``), so a plugin that keys on the run
object sees the same one at every event. It reads the run through properties without setters
and has no attribute of its own to set (``__slots__``): a hook that sets ``run.step`` or
``run.should_stop`` gets an AttributeError that says what to do instead. Its members'
docstrings are `ganlab.RunView`'s (`_share_docstrings`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganlab.data.batches import epoch_order
from ganlab.engine.run import Run
from ganlab.engine.sampling import seeded_latents, untouched
from ganlab.engine.seeding import rng_untouched
from ganlab.files.images import to_uint8
from ganlab.plugin_manager.logkeys import Better, KeyInfo
from ganlab.recipe.models import Recipe
from ganlab.recipe.schedules import learning_rates
from ganlab.runview import RunView


class View:
    """A `Run` as a `ganlab.RunView`: its facts read-only, and actions that leave training
    as it was."""

    __slots__ = ("__weakref__", "_run")
    _run: Run

    def __init__(self, run: Run) -> None:
        object.__setattr__(self, "_run", run)

    # Hidden from the type checker: to it, a view has exactly RunView's members, and
    # setting one is an error there too.
    if not TYPE_CHECKING:

        def __setattr__(self, name: str, value: object) -> None:
            how = "call run.stop()" if name == "should_stop" else "a hook only reads the run"
            raise AttributeError(
                f"run.{name} cannot be set: hooks and metrics see the run as a ganlab.RunView; "
                f"{how} (docs/plugins.md, RunView)"
            )

        def __getattr__(self, name: str) -> Any:
            # Only for names that are not the view's: the engine's state is not a plugin's.
            raise AttributeError(
                f"run.{name}: hooks and metrics see the run as a ganlab.RunView, which has no "
                f"{name!r} (docs/plugins.md, RunView, lists what it has)"
            )

    def __repr__(self) -> str:
        return f"<RunView {self._run.recipe.name} step {self._run.step} in {self._run.dir}>"

    # --- what the run is ------------------------------------------------------------------

    @property
    def recipe(self) -> Recipe:
        return self._run.recipe

    @property
    def name(self) -> str:
        return self._run.name

    @property
    def seed(self) -> int:
        return self._run.seed

    @property
    def dir(self) -> Path:
        return self._run.dir

    @property
    def device(self) -> torch.device:
        return self._run.device

    # --- where it stands ------------------------------------------------------------------

    @property
    def step(self) -> int:
        return self._run.step

    @property
    def epoch(self) -> int:
        return self._run.epoch

    @property
    def total_steps(self) -> int:
        return self._run.total_steps

    @property
    def steps_per_epoch(self) -> int:
        return self._run.steps_per_epoch

    @property
    def num_epochs(self) -> int:
        return self._run.num_epochs

    @property
    def images_seen(self) -> int:
        return self._run.images_seen

    @property
    def learning_rates(self) -> dict[str, float]:
        return learning_rates(self._run.schedulers)

    @property
    def history(self) -> Sequence[Mapping[str, float]]:
        return tuple(self._run.history)

    @property
    def keys(self) -> Mapping[str, KeyInfo]:
        return MappingProxyType(self._run.keys)

    @property
    def info(self) -> dict[str, Any]:
        return self._run.info

    # --- the models -----------------------------------------------------------------------

    @property
    def generator(self) -> nn.Module:
        return self._run.generator

    @property
    def discriminator(self) -> nn.Module:
        return self._run.discriminator

    @property
    def evaluated_generator(self) -> nn.Module:
        return self._run.evaluated_generator

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self._run.generator.latent_shape)

    @property
    def g_takes_labels(self) -> bool:
        return self._run.g_takes_labels

    @property
    def d_takes_labels(self) -> bool:
        return self._run.d_takes_labels

    # --- the data -------------------------------------------------------------------------

    @property
    def image_shape(self) -> tuple[int, int, int]:
        channels, height, width = self._run.dataset.image_shape
        return channels, height, width

    @property
    def dataset_size(self) -> int:
        return len(self._run.dataset)

    @property
    def class_names(self) -> tuple[str, ...] | None:
        labels = self._run.labels
        return None if labels is None else tuple(labels.names)

    @property
    def fixed_latents(self) -> torch.Tensor:
        return self._run.fixed_latents.clone()

    @property
    def fixed_labels(self) -> torch.Tensor | None:
        labels = self._run.fixed_labels
        return None if labels is None else labels.clone()

    def real_images(
        self, n: int, seed: int | None = None, label: int | None = None
    ) -> torch.Tensor:
        run = self._run
        order = epoch_order(len(run.dataset), run.seed if seed is None else seed, 0)
        if label is not None and run.labels is not None:
            order = order[run.labels.values[order] == label]
        return torch.stack([run.dataset[i].cpu() for i in order[:n].tolist()])

    # --- images from G, scores from D -----------------------------------------------------

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        return seeded_latents(self._run.generator, n, seed).to(self._run.device)

    def sample_labels(self, n: int, seed: int) -> torch.Tensor | None:
        run = self._run
        if not run.g_takes_labels or run.labels is None:
            return None
        rng = torch.Generator().manual_seed(seed)
        return torch.multinomial(run.labels.frequencies(), n, True, generator=rng).to(run.device)

    @torch.no_grad()
    def generate(
        self, latents: torch.Tensor, labels: torch.Tensor | None = None, eval_mode: bool = False
    ) -> torch.Tensor:
        run = self._run
        model = run.evaluated_generator if eval_mode else run.generator
        # Sampling is never training's own draw: a generator that draws in training mode
        # (noise inputs, dropout) must not shift training's random streams.
        with untouched(model, train=not eval_mode), rng_untouched():
            return model(*_with_labels(latents, labels, run.g_takes_labels)).float()

    def sample_images(
        self, n: int, seed: int, label: int | None = None, batch_size: int = 256
    ) -> torch.Tensor:
        latents = self.sample_latents(n, seed)
        labels = self.sample_labels(n, seed)
        if labels is not None and label is not None:
            labels = torch.full_like(labels, label)
        chunks = [
            self.generate(z, None if labels is None else labels[i : i + batch_size], True)
            for i, z in zip(range(0, n, batch_size), latents.split(batch_size), strict=True)
        ]
        return torch.cat([to_uint8(chunk).cpu() for chunk in chunks])

    @torch.no_grad()
    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        run = self._run
        with untouched(run.discriminator, train=False), rng_untouched():
            scores = run.discriminator(*_with_labels(images, labels, run.d_takes_labels))
            return scores.reshape(-1).float()

    # --- what a hook may do ---------------------------------------------------------------

    def log(
        self,
        values: Mapping[str, float],
        step: int | None = None,
        *,
        namespace: str = "plugin",
        better: Better = None,
    ) -> None:
        self._run.log(values, step, namespace=namespace, better=better)

    def log_file(self, name: str, path: Path, kind: str) -> None:
        self._run.log_file(name, path, kind)

    def save_checkpoint(self, path: Path) -> None:
        self._run.save_checkpoint(path)

    def stop(self) -> None:
        self._run.should_stop = True


def _with_labels(
    inputs: torch.Tensor, labels: torch.Tensor | None, takes_labels: bool
) -> tuple[torch.Tensor, ...]:
    """A model's arguments: ``inputs``, and ``labels`` when it takes them (then required)."""
    if not takes_labels:
        return (inputs,)
    if labels is None:
        raise ValueError(
            "this run's model takes class labels: pass labels (run.fixed_labels with "
            "run.fixed_latents, or run.sample_labels(n, seed) with run.sample_latents)"
        )
    return inputs, labels


def _share_docstrings() -> None:
    """Give each of `View`'s members `ganlab.RunView`'s docstring: one text, written once
    where plugin authors read it, and shown by ``help(run.score)`` in a notebook too."""
    for name, member in vars(RunView).items():
        own = vars(View).get(name)
        if not name.startswith("_") and own is not None:
            own.__doc__ = member.__doc__


_share_docstrings()
