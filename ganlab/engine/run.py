"""The engine's state of a run in progress (`Run`), one step's numbers (`StepStats`), and
the hook relay every event goes through (`GuardedHooks`).

A `Run` is everything a training run is made of: the recipe, its folder, the models, their
optimizers, the loss, the data, where it stands (step, epoch, history). `Run.state_dict` and
`Run.load_state_dict` are how it is saved and restored, as in torch; `ganlab.files.checkpoint`
writes and reads the files. It is the engine's own: hooks and metrics are given ``run.view``
(`ganlab.engine.view.View`, a `ganlab.RunView`), never the `Run`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel

from ganlab.contracts import (
    Augmentation,
    GanLoss,
    Generator,
    GeneratorPenalty,
    ImageDataset,
    Penalty,
)
from ganlab.data.batches import Batches
from ganlab.data.types import Labels, TensorImages
from ganlab.engine.distributed import Group
from ganlab.engine.precision import Precision
from ganlab.engine.seeding import rng_state, rng_untouched, set_rng_state
from ganlab.errors import GanlabError
from ganlab.files.checkpoint import CONTENTS, save_checkpoint
from ganlab.plugin_manager.logkeys import EVAL, TRAIN, Better, KeyInfo, check_key_info
from ganlab.recipe.models import Recipe
from ganlab.recipe.schedules import fit_to_run
from ganlab.runview import RunView, StepStats


class Hooks(Protocol):
    """What ``run.hook`` is: the plugin manager's hook relay, or a relay where events go
    nowhere (`ganlab.engine.assemble.NoHooks`). An event hook is called by its name, with keyword
    arguments only: ``run.hook.ganlab_step_end(run=run.view, stats=stats)``."""

    def __getattr__(self, name: str) -> Callable[..., object]: ...


class GuardedHooks:
    """A hook relay whose every event runs in a forked random state (`rng_untouched`):
    whatever a callback, logger or metric draws (a sample grid from a generator with noise
    inputs or dropout, a metric's network), training's random streams go on as if it had
    not run, so a run is the same whether a plugin watches it every step or never.

    An event no plugin implements is called directly: the guard costs nothing there. A
    hook is given the run's view (``run=run.view``); the `Run` itself, passed by mistake, is
    refused, so the engine's state never reaches a plugin.
    """

    def __init__(self, relay: Hooks) -> None:
        self._relay = relay

    def __getattr__(self, name: str) -> Callable[..., object]:
        caller = getattr(self._relay, name)
        implementations = getattr(caller, "get_hookimpls", None)
        if implementations is not None and not implementations():
            return caller

        def guarded(**kwargs: object) -> object:
            if isinstance(kwargs.get("run"), Run):
                raise TypeError(f"{name}: hooks are given run.view, not the engine's Run")
            with rng_untouched():
                return caller(**kwargs)

        return guarded


@dataclass
class Run:
    """A training run in progress: the engine's state. Hooks and metrics get `view`."""

    recipe: Recipe  #: the resolved recipe, every default filled in
    dir: Path  #: the run folder; hooks write their files here
    device: torch.device
    generator: Generator
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: GanLoss
    dataset: ImageDataset | TensorImages
    batches: Batches
    fixed_latents: torch.Tensor  #: FIXED_LATENTS latent vectors, on the device
    total_steps: int  #: the step the run ends at
    hook: Hooks = field(repr=False)  #: the plugin manager's hook relay (rank 0), else a no-op
    #: this process's place among the processes of a torchrun run (alone: rank 0 of 1)
    group: Group = field(default_factory=Group)
    #: autocast and each network's update for ``train.precision`` (fp16: its scalers)
    precision: Precision = field(default_factory=lambda: Precision("fp32", torch.device("cpu")))
    #: the moving average of G's weights (``train.ema``), a torch ``AveragedModel`` whose
    #: ``.module`` is a generator; None without ``train.ema``
    generator_ema: AveragedModel | None = None
    #: the data set's classes (None for a data set without them)
    labels: Labels | None = None
    #: whether the generator and the discriminator take class labels (registered with
    #: ``conditional=True``): the runner then calls ``G(z, y)`` and ``D(x, y)``
    g_takes_labels: bool = False
    d_takes_labels: bool = False
    #: the class of each fixed latent vector (a conditional G: one row of the grid per class)
    fixed_labels: torch.Tensor | None = None
    #: the recipe's ``augment:`` list, applied in order to every image D sees
    augmentations: list[Augmentation] = field(default_factory=list)
    #: the recipe's ``penalties:`` list: (its statistic's name, the penalty on D or on G)
    penalties: list[tuple[str, Penalty | GeneratorPenalty]] = field(default_factory=list)
    #: the plugin objects whose state checkpoints keep (a loss, penalty, callback or logger
    #: with ``state_dict`` and ``load_state_dict``), by the name the checkpoint files them
    #: under: ``loss:<name>``, ``penalties.<i>:<name>``, ``callbacks.<i>:<name>``
    plugin_states: dict[str, Any] = field(default_factory=dict)
    #: learning-rate schedules by network ("generator", "discriminator"), stepped per step
    schedulers: dict[str, LRScheduler] = field(default_factory=dict)
    #: ``train.cuda_graphs``: whether the step runs through CUDA graphs, and when it was asked
    #: for but cannot, why the run trains eagerly instead (`ganlab.engine.graphs.eager_reason`)
    cuda_graphs: bool = False
    eager_reason: str | None = None
    #: what ``run.json`` holds; a plugin may add a key of its own (written at the start, when
    #: a logged key first appears, and after `ganlab_run_end` or `ganlab_run_error`)
    info: dict[str, Any] = field(default_factory=dict)
    step: int = 0  #: steps done so far
    epoch: int = 0  #: current epoch, from 0
    should_stop: bool = False  #: a hook sets this to end the run after the current step
    history: list[dict[str, float]] = field(default_factory=list)  #: every logged row
    #: real images trained on by all processes in this process's session of the run
    #: (every D update of every step): the one count that images per second come from
    images_seen: int = 0
    #: what every logged key is: its namespace and which way is better (`log`; run.json
    #: keeps them under ``keys``)
    keys: dict[str, KeyInfo] = field(default_factory=dict)
    #: rows given to `log` that have not yet joined the row stream (the runner merges them
    #: with its own rows in step order), and the last step the stream has reached
    logged: list[dict[str, float]] = field(default_factory=list, repr=False)
    logged_through: int = 0
    #: what hooks and metrics are given of this run: one `ganlab.RunView` for the run's
    #: life (a `ganlab.engine.view.View`, which `assemble_run` sets)
    view: RunView = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Every event of the run goes through the guard, whoever calls it (the loop, the
        # run's life, `log_file`): no plugin can shift training's random streams.
        if not isinstance(self.hook, GuardedHooks):
            self.hook = GuardedHooks(self.hook)

    # --- logging -----------------------------------------------------------------------------

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
        neither, such as a diagnostic); compare reports a best value only for keys that have
        one. A key keeps its namespace and direction for the whole run. The namespaces
        ``train`` and ``eval`` are the runner's: training statistics and metrics' results.
        """
        info = check_key_info(namespace, better)
        if namespace in (TRAIN, EVAL):
            raise ValueError(f"namespace {namespace!r} is the runner's own: choose another")
        step = self.step if step is None else step
        if not isinstance(step, int) or step < self.logged_through:
            raise ValueError(
                f"step={step!r}: the run's rows have reached step {self.logged_through}; log at "
                "that step or later (by default, the current step)"
            )
        row: dict[str, float] = {"step": step}
        for key, value in values.items():
            if not isinstance(key, str) or key in ("step", "epoch", *StepStats.NAMES):
                raise ValueError(f"{key!r} cannot be logged: it is not a name, or the runner's")
            row[key] = float(value)
        self.describe_keys(row.keys() - {"step"}, info)
        self.logged.append(row)

    def describe_keys(self, keys: Iterable[str], info: KeyInfo) -> None:
        """Record what ``keys`` are; a key that was described otherwise before is an error."""
        for key in keys:
            known = self.keys.setdefault(key, info)
            if known != info:
                raise ValueError(
                    f"{key!r} is logged as {info}, but was logged before as {known}; a key "
                    "keeps its namespace and direction for the whole run"
                )

    # --- saving and restoring, as torch modules do ---------------------------------------

    def state_dict(self, rng_by_rank: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything `load_state_dict` needs to continue the run exactly: a checkpoint.

        ``rng_by_rank`` holds every process's RNG states (default: this process's).
        """
        rng_by_rank = rng_by_rank or [rng_state()]
        ema = self.generator_ema
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "image_shape": list(self.dataset.image_shape),
            # A conditional generator is rebuilt from these (`ganlab sample`), without data.
            "class_names": list(self.labels.names) if self.labels is not None else None,
            "fixed_latents": self.fixed_latents.cpu(),
            "history": self.history,
            "scalers": self.precision.state_dict(),
            "generator_ema": ema.state_dict() if ema is not None else None,
            "augmentations": [augmentation.state_dict() for augmentation in self.augmentations],
            "schedulers": {net: s.state_dict() for net, s in self.schedulers.items()},
            "plugins": {name: obj.state_dict() for name, obj in self.plugin_states.items()},
            "rng": rng_by_rank[0],
            "rng_by_rank": rng_by_rank,
            "processes": len(rng_by_rank),
            "recipe": self.recipe.model_dump(mode="json"),
            "versions": self.info.get("versions", {}),
        }

    def load_state_dict(self, state: dict[str, Any], source: Path | str = "the checkpoint") -> None:
        """Put the run back exactly where ``state`` (a checkpoint, read from ``source``) was
        taken. A part that does not fit the run as its recipe builds it now is one clear
        error that names the part."""
        parts: dict[str, Any] = {
            "generator": lambda: self.generator.load_state_dict(state["generator"]),
            "discriminator": lambda: self.discriminator.load_state_dict(state["discriminator"]),
            "opt_g": lambda: self.opt_g.load_state_dict(state["opt_g"]),
            "opt_d": lambda: self.opt_d.load_state_dict(state["opt_d"]),
            "fixed_latents": lambda: self._load_latents(state["fixed_latents"]),
        }
        if self.precision.scalers:
            parts["scalers"] = lambda: self.precision.load_state_dict(state["scalers"])
        if self.generator_ema is not None:
            ema = self.generator_ema
            parts["generator_ema"] = lambda: ema.load_state_dict(state["generator_ema"])
        if any(a.state_dict() for a in self.augmentations):
            parts["augmentations"] = lambda: self._load_augmentations(state["augmentations"])
        if self.schedulers:
            parts["schedulers"] = lambda: self._load_schedulers(state["schedulers"], state["step"])
        if self.plugin_states:
            parts["plugins"] = lambda: self._load_plugins(state["plugins"])
        by_rank = state.get("rng_by_rank", [state["rng"]])
        parts["rng"] = lambda: set_rng_state(by_rank[self.group.rank])
        for key, restore in parts.items():
            try:
                restore()
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise GanlabError(
                    f"{source}: its {key!r} ({CONTENTS[key][1]}) does not fit this run as the "
                    f"recipe's plugins build it now ({first_line}). Were the plugins or the "
                    "checkpoint changed since the run? Use the versions that trained it."
                ) from None
        self.step = state["step"]
        self.epoch = state["epoch"]
        self.history = list(state["history"])

    def _load_schedulers(self, states: dict[str, Any], steps_done: int) -> None:
        for net, scheduler in self.schedulers.items():
            scheduler.load_state_dict(states[net])
            # A length that follows the run follows a resume's new train.steps too.
            spec = getattr(self.recipe.optimizers, net).schedule
            if spec is not None:
                fit_to_run(scheduler, spec.name, spec.params, self.total_steps, steps_done)

    def _load_plugins(self, states: dict[str, Any]) -> None:
        for name, obj in self.plugin_states.items():
            if name not in states:
                raise ValueError(f"it holds no state of {name}")
            obj.load_state_dict(states[name])

    def _load_augmentations(self, states: list[dict[str, Any]]) -> None:
        if len(states) != len(self.augmentations):
            raise ValueError(f"{len(states)} augmentations' states for {len(self.augmentations)}")
        for augmentation, state in zip(self.augmentations, states, strict=True):
            augmentation.load_state_dict(state)

    def _load_latents(self, latents: torch.Tensor) -> None:
        shape = tuple(self.generator.latent_shape)
        if tuple(latents.shape[1:]) != shape:
            raise ValueError(f"latent vectors of shape {tuple(latents.shape[1:])}, G takes {shape}")
        self.fixed_latents = latents.to(self.device)

    def save_checkpoint(self, path: Path) -> None:
        """Write the run's whole state to ``path`` as the runner's checkpoints are written
        (atomically, loadable by `ganlab sample` and `ganlab eval`)."""
        save_checkpoint(path, self.state_dict())

    # --- what the view reads ----------------------------------------------------------------

    def log_file(self, name: str, path: Path, kind: str) -> None:
        """Announce a file this run wrote to the loggers (`ganlab_log_file`).

        ``kind`` is ``"image"``, ``"video"`` or ``"model"``.
        """
        self.hook.ganlab_log_file(run=self.view, step=self.step, name=name, path=path, kind=kind)

    @property
    def name(self) -> str:
        """The recipe's name."""
        return self.recipe.name

    @property
    def seed(self) -> int:
        """The recipe's seed."""
        return self.recipe.seed

    @property
    def steps_per_epoch(self) -> int:
        """Steps per epoch: the seeded batch source's length."""
        return len(self.batches)

    @property
    def num_epochs(self) -> int:
        """Epochs the run touches (the last may be partial when ``train.steps`` ends it)."""
        return -(-self.total_steps // self.steps_per_epoch)

    @property
    def evaluated_generator(self) -> nn.Module:
        """The generator that metrics and sampling use: the moving average of G's weights
        when the recipe keeps one (``train.ema``), else G itself."""
        return self.generator_ema.module if self.generator_ema is not None else self.generator
