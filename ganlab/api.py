"""The Python API, for notebooks and scripts: load a recipe, train it, load a run's
generator, sample images, export a generator (docs/python.md).

Each function is a thin layer over the engine, and the commands are thin layers over the
same code (`prepare_recipe`, `ganlab.engine.lifecycle.train_recipe`,
`ganlab.engine.restore.restored_generator`, `ganlab.engine.sampling`), so a notebook and
``ganlab run``/``ganlab sample`` give the same runs and the same images. Every call loads its
own plugin manager: nothing is shared between calls.

A mistake raises `GanlabError` (never ``SystemExit``); an unexpected error arrives as the
`GanlabError` the command line would print, with the original exception as its cause.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ganlab.contracts import Generator
from ganlab.engine.device import pick_device
from ganlab.engine.lifecycle import train_recipe
from ganlab.engine.restore import restored_generator
from ganlab.engine.run import Run
from ganlab.engine.sampling import class_rows, images_of, latent_series, untouched
from ganlab.errors import GanlabError, RunInterrupted, did_you_mean
from ganlab.files.checkpoint import newest_checkpoint
from ganlab.files.metrics_log import read_metrics
from ganlab.plugin_manager.blame import as_ganlab_error
from ganlab.plugin_manager.loading import Plugins, load_plugins
from ganlab.recipe.models import Resolved
from ganlab.recipe.resolve import (
    check_components_kept,
    load_recipe_sourced,
    parse_recipe,
    resolve,
)

#: A recipe as the API takes it: a resolved one, a file, or a mapping as a YAML file holds.
RecipeLike = Resolved | str | os.PathLike[str] | Mapping[str, Any]
#: Overrides: ``{"train.steps": 20}`` or ``["train.steps=20"]`` (``--set``'s syntax).
Overrides = Mapping[str, Any] | Sequence[str] | None

#: The attribute the API sets on a generator it returns: the class names of a conditional
#: generator (class ``k`` is ``classes[k]``), or None for one that takes no labels.
CLASSES_ATTRIBUTE = "ganlab_classes"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Every error of an API call as a `GanlabError` (the one the CLI would print), with the
    original exception as its cause; a Ctrl-C (KeyboardInterrupt) passes as it is."""
    try:
        yield
    except GanlabError:
        raise
    except Exception as exc:
        raise as_ganlab_error(exc) from exc


def prepare_recipe(
    recipe_path: str,
    overrides: tuple[str, ...],
    plugin_specs: tuple[str, ...],
    *,
    resume: Path | None = None,
) -> tuple[Resolved, Plugins]:
    """Read the recipe, load the plugins it and the user name, resolve its components.

    What every command that reads a recipe does, and what a plugin's own command does with
    ``--set`` and ``-p`` (`ganlab.set_option`, `ganlab.plugin_option`). With ``resume`` (the
    run folder to continue), a recipe that names other components than the run's is refused
    first, before their params are checked against the new ones.
    """
    recipe, sources = load_recipe_sourced(recipe_path, overrides, extra_plugins=plugin_specs)
    if resume is not None:
        check_components_kept(resume, recipe)
    plugins = load_plugins(recipe.plugins)
    return resolve(recipe, plugins.registry, source=sources), plugins


def _override_strings(overrides: Overrides) -> tuple[str, ...]:
    """``{"train.steps": 20}`` as ``("train.steps=20",)``: each value written as JSON, which
    the overrides read as YAML, so a string stays a string and a list a list."""
    if overrides is None:
        return ()
    if isinstance(overrides, str):
        raise GanlabError(
            f"overrides={overrides!r}: give a dict such as {{'train.steps': 20}} or a list "
            "of 'KEY=VALUE' strings, not one string."
        )
    if isinstance(overrides, Mapping):
        return tuple(f"{key}={json.dumps(value)}" for key, value in overrides.items())
    return tuple(overrides)


def _prepared(
    recipe: RecipeLike, overrides: Overrides, plugins: Sequence[str], resume: Path | None = None
) -> tuple[Resolved, Plugins, Path | None]:
    """The recipe resolved, the plugin manager that resolved it, and its file (if any)."""
    specs = (plugins,) if isinstance(plugins, str) else tuple(plugins)  # one name, or several
    changes = _override_strings(overrides)
    if not isinstance(recipe, Resolved | Mapping):  # a file: as the commands read one
        path = Path(recipe)
        return (*prepare_recipe(str(path), changes, specs, resume=resume), path)
    # A mapping (or a resolved recipe, as its mapping): prepare_recipe's steps without a file.
    if isinstance(recipe, Resolved):
        raw, source = recipe.recipe.model_dump(mode="json"), "the resolved recipe"
    else:
        raw, source = dict(recipe), "the recipe dict"
    parsed = parse_recipe(raw, source, changes, specs, default_name="recipe")
    if resume is not None:
        check_components_kept(resume, parsed)
    loaded = load_plugins(parsed.plugins)
    return resolve(parsed, loaded.registry, source=source), loaded, None


def load_recipe(
    recipe: RecipeLike, overrides: Overrides = None, plugins: Sequence[str] = ()
) -> Resolved:
    """Read and check a recipe, as ``ganlab recipe validate`` does, and return it resolved
    (every component found, every default filled in; ``.to_yaml()`` is what a run folder's
    recipe.yaml will hold).

    ``recipe`` is a YAML file's path, a dict as a YAML file holds it, or a recipe already
    resolved. ``overrides`` apply in order, as ``--set`` does: ``{"train.steps": 20}`` or
    ``["train.steps=20"]``. ``plugins`` are module names or ``.py`` files to load besides
    those the recipe lists (as ``-p``).
    """
    with user_errors():
        return _prepared(recipe, overrides, plugins)[0]


@dataclass(frozen=True)
class TrainResult:
    """What `train` returns (and `TrainingInterrupted.result` holds)."""

    #: the run folder (recipe.yaml, run.json, metrics.jsonl, checkpoints/, samples/)
    run_dir: Path
    #: ``"completed"``, or ``"interrupted"`` (`TrainingInterrupted`)
    status: str
    #: steps trained (G updates)
    step: int
    #: the newest checkpoint (``checkpoints/final.pt`` for a completed run), or None
    checkpoint: Path | None
    #: every row of metrics.jsonl, in order
    rows: list[dict[str, Any]]
    #: the last value logged of every key in metrics.jsonl (training statistics at the last
    #: logged step, scores at the last evaluation), with ``step`` the last row's step
    metrics: dict[str, Any]
    #: the generator that sampling and metrics use, in eval mode, on the run's device: the
    #: moving average of G's weights when the recipe keeps one (``train.ema``), else G; the
    #: same weights `load_generator` gives for the run folder
    generator: nn.Module
    #: the discriminator, in eval mode, on the run's device
    discriminator: nn.Module
    #: a conditional generator's class names (class ``k`` is ``classes[k]``), else None
    classes: tuple[str, ...] | None


class TrainingInterrupted(RunInterrupted):
    """`train` stopped by Ctrl-C (SIGINT) or SIGTERM: the run finished its step, wrote a
    checkpoint and is marked ``interrupted``; ``result`` holds what was trained so far."""

    def __init__(self, message: str, signum: int, result: TrainResult) -> None:
        super().__init__(message, signum)
        self.result = result


def _result(run: Run, status: str) -> TrainResult:
    """A `TrainResult` for a run that ended (or stopped) with ``status``."""
    rows = read_metrics(run.dir / "metrics.jsonl") if (run.dir / "metrics.jsonl").exists() else []
    latest: dict[str, Any] = {}
    for row in rows:
        latest.update(row)
    if rows:
        latest["step"] = rows[-1]["step"]
    checkpoint = newest_checkpoint(run.dir)
    generator = run.evaluated_generator.eval()
    classes = tuple(run.labels.names) if run.g_takes_labels and run.labels is not None else None
    setattr(generator, CLASSES_ATTRIBUTE, classes)
    return TrainResult(
        run_dir=run.dir,
        status=status,
        step=run.step,
        checkpoint=checkpoint,
        rows=rows,
        metrics=latest,
        generator=generator,
        discriminator=run.discriminator.eval(),
        classes=classes,
    )


def train(
    recipe: RecipeLike,
    overrides: Overrides = None,
    plugins: Sequence[str] = (),
    *,
    out: str | os.PathLike[str] = "runs",
    resume: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train ``recipe`` (see `load_recipe` for it, ``overrides`` and ``plugins``) as
    ``ganlab run`` does, into a new run folder under ``out``, and return a `TrainResult`.

    ``resume`` (a run folder) continues that stopped run in place, as ``ganlab run --resume``.

    Ctrl-C (in a notebook: interrupt the kernel) finishes the current step, writes a
    checkpoint and raises `TrainingInterrupted`, whose ``result`` holds the run so far;
    control returns to the caller. Before the first step, Ctrl-C stops at once with a
    `RunInterrupted` and leaves no run folder.
    """
    with user_errors():
        run_dir = Path(resume) if resume is not None else None
        resolved, loaded, path = _prepared(recipe, overrides, plugins, run_dir)
        started: list[Run] = []
        try:
            run = train_recipe(
                resolved,
                loaded,
                Path(out),
                recipe_path=path,
                resume=run_dir,
                on_start=started.append,
            )
        except RunInterrupted as exc:
            if not started:
                raise
            signum = exc.exit_code - 128
            raise TrainingInterrupted(
                str(exc), signum, _result(started[0], "interrupted")
            ) from None
        return _result(run, "completed")


def load_generator(
    run_or_checkpoint: str | os.PathLike[str], device: str = "cpu", ema: bool = True
) -> nn.Module:
    """The generator of a run folder (its ``checkpoints/final.pt``, else its newest
    checkpoint) or of a checkpoint file, rebuilt as ``ganlab sample`` rebuilds it: in eval
    mode, on ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``), with the moving
    average of G's weights when the run kept one and ``ema`` (``ema=False``: G's own).

    A conditional generator's class names are its ``ganlab_classes`` attribute (None for one
    that takes no labels), which `sample` reads.
    """
    with user_errors():
        generator, _, _, classes = restored_generator(
            Path(run_or_checkpoint), pick_device(device), ema
        )
        setattr(generator, CLASSES_ATTRIBUTE, classes)
        return generator


def _class_index(label: int | str, classes: tuple[str, ...] | None) -> int:
    if classes is None:
        if isinstance(label, str):
            raise GanlabError(
                f"label={label!r}: this generator has no class names; give a class number."
            )
        return label
    if isinstance(label, str):
        if label in classes:
            return classes.index(label)
        raise GanlabError(
            f"label={label!r} is not a class of this generator.{did_you_mean(label, classes)} "
            f"Its classes: {', '.join(classes[:20])}{', ...' if len(classes) > 20 else ''}."
        )
    if not 0 <= label < len(classes):
        raise GanlabError(
            f"label={label}: give a class number from 0 to {len(classes) - 1} (or its name)."
        )
    return label


def sample(
    generator_or_run: nn.Module | str | os.PathLike[str],
    n: int,
    seed: int = 0,
    label: int | str | None = None,
) -> torch.Tensor:
    """``n`` images as a float tensor ``(n, C, H, W)`` in [-1, 1] on the CPU, from a
    generator (`train`'s or `load_generator`'s, or any generator module) or from a run folder
    or checkpoint (loaded with `load_generator`).

    The same ``seed`` gives the same images, the images ``ganlab sample --seed SEED`` draws
    (image ``i`` is the same whatever ``n``). The generator runs in eval mode and is left as
    it was (its mode and buffers); random numbers it draws itself (StyleGAN2's noise inputs)
    come from ``seed`` too, and the caller's random state is untouched.

    A conditional generator: ``label`` (a class number or name) gives ``n`` images of that
    class; without it, ``n`` images of every class, ``(K * n, C, H, W)`` class by class (class
    ``k``'s are ``[k * n : (k + 1) * n]``), image ``j`` of every class from the same latent
    vector.
    """
    with user_errors():
        if n < 1:
            raise GanlabError(f"n={n}: give a number of images of at least 1.")
        if not isinstance(generator_or_run, nn.Module):
            generator_or_run = load_generator(generator_or_run)
        if not hasattr(generator_or_run, "latent_shape"):
            raise GanlabError(
                f"{type(generator_or_run).__name__} has no latent_shape: give a ganlab generator "
                "(from ganlab.train or ganlab.load_generator), a run folder or a checkpoint."
            )
        generator = cast(Generator, generator_or_run)  # a module with latent_shape
        classes = getattr(generator, CLASSES_ATTRIBUTE, None)
        labels = None
        if label is not None:
            latents = latent_series(generator, n, seed)
            labels = torch.full((n,), _class_index(label, classes), dtype=torch.int64)
        elif classes is not None:
            latents, labels = class_rows(generator, list(range(len(classes))), n, seed)
        else:
            latents = latent_series(generator, n, seed)
        device = next(generator.parameters(), torch.empty(0)).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            with untouched(generator, train=False):
                return torch.cat(list(images_of(generator, latents, device, labels)))
