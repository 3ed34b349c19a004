"""The hooks a ganlab plugin can implement.

Two families:

* Registration hooks (`ganlab_register_*`) are called once per plugin manager. Each receives
  a `register` callback; a plugin calls it once per component it provides::

      @ganlab.hookimpl
      def ganlab_register_losses(register):
          register("hinge", build_hinge, params=HingeParams)

* Event hooks (`ganlab_run_start`, ...) fire during a run on every callback and logger the
  recipe names (and on any plugin module that implements them). They observe the run through
  ``run``, a `ganlab.RunView` (read-only facts, logging, sampling, scoring, files); what else
  they may do is said in each docstring.

Pluggy calls hooks with keyword arguments only and never fills in defaults, so an
implementation may accept any subset of the arguments below, by name, without defaults.

docs/plugins.md holds each hook's full explanation and an example; tests/test_docs.py keeps
its signatures and first lines in step with this file.

What the components that plugins register must be (`Metric`, `Observer`, ...) is in
`ganlab.contracts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from ganlab.plugin_manager.registry import Register
    from ganlab.runview import RunView, StepStats

PROJECT = "ganlab"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration -------------------------------------------------------------------------


@hookspec
def ganlab_register_datasets(register: Register) -> None:
    """Register data sets: ``register(name, build, params=Model)``.

    ``build(params)`` returns a `ganlab.ImageDataset` or a `ganlab.TensorImages`. See
    docs/plugins.md, `ganlab_register_datasets`.
    """


@hookspec
def ganlab_register_generators(register: Register) -> None:
    """Register generators: ``register(name, build, params=Model)``.

    ``build(params, image_shape)`` returns an ``nn.Module`` with a ``latent_shape`` attribute
    (a `ganlab.Generator`). See docs/plugins.md, `ganlab_register_generators`.
    """


@hookspec
def ganlab_register_discriminators(register: Register) -> None:
    """Register discriminators: ``register(name, build, params=Model)``.

    ``build(params, image_shape)`` returns an ``nn.Module`` giving one raw score per image. See
    docs/plugins.md, `ganlab_register_discriminators`.
    """


@hookspec
def ganlab_register_losses(register: Register) -> None:
    """Register adversarial losses: ``register(name, build, params=Model)``.

    ``build(params)`` returns a `ganlab.GanLoss`. See docs/plugins.md, `ganlab_register_losses`.
    """


@hookspec
def ganlab_register_augmentations(register: Register) -> None:
    """Register augmentations: ``register(name, build, params=Model)``.

    ``build(params)`` returns a `ganlab.Augmentation`, applied to real and fake images before
    every D call. See docs/plugins.md, `ganlab_register_augmentations`.
    """


@hookspec
def ganlab_register_penalties(register: Register) -> None:
    """Register penalties on D or on G: ``register(name, build, params=Model)``.

    ``build(params)`` returns a `ganlab.Penalty`, added to D's loss with its weight, or a
    `ganlab.GeneratorPenalty`, added to G's. See docs/plugins.md, `ganlab_register_penalties`.
    """


@hookspec
def ganlab_register_callbacks(register: Register) -> None:
    """Register callbacks: ``register(name, build, params=Model)``.

    ``build(params)`` returns an object with event hooks (an `Observer`), registered for one
    run. See docs/plugins.md, `ganlab_register_callbacks`.
    """


@hookspec
def ganlab_register_metrics(register: Register) -> None:
    """Register quality metrics: ``register(name, build, params=Model)``.

    ``build(params)`` returns ``metric(run) -> dict[str, float]``, a `Metric`; ``results=``
    declares its keys. See docs/plugins.md, `ganlab_register_metrics`.
    """


@hookspec
def ganlab_register_loggers(register: Register) -> None:
    """Register experiment loggers: ``register(name, build, params=Model)``.

    ``build(params)`` returns an object with event hooks, like a callback. See docs/plugins.md,
    `ganlab_register_loggers`.
    """


@hookspec
def ganlab_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``ganlab`` command line, or options to its commands.

    For the built-ins and installed plugins only, once per process. See docs/plugins.md,
    `ganlab_register_commands`.
    """


@hookspec
def ganlab_run_columns(folder: Path, info: dict[str, Any]) -> dict[str, str] | None:
    """Add columns to `ganlab runs` for one run folder: column name -> text.

    ``info`` is the folder's ``run.json``. Return None to add nothing. See docs/plugins.md,
    `ganlab_run_columns`.
    """


@hookspec
def ganlab_checkpoint_evaluated(
    folder: Path, info: dict[str, Any], step: int, path: Path, results: dict[str, float]
) -> None:
    """Fires after ``ganlab eval`` scored a checkpoint of the run folder ``folder``.

    ``path`` is the checkpoint, ``step`` its training step, ``info`` the folder's
    ``run.json`` ({} when it has none). Must not change the files ganlab wrote there. See
    docs/plugins.md, `ganlab_checkpoint_evaluated`.
    """


# --- events during a run -----------------------------------------------------------------


@hookspec
def ganlab_run_start(run: RunView) -> None:
    """Fires once, after the models, optimizers and data are built and before the first step.

    May write files into ``run.dir``; must not change the models or the data. See
    docs/plugins.md, `ganlab_run_start`.
    """


@hookspec
def ganlab_step_end(run: RunView, stats: StepStats) -> None:
    """Fires after every training step (``train.d_steps`` D updates and one G update).

    May call ``run.generate`` and ``run.stop()``; must not change the models or the RNG
    state. See docs/plugins.md, `ganlab_step_end`.
    """


@hookspec
def ganlab_epoch_end(run: RunView, epoch: int) -> None:
    """Fires after the last step of each epoch; ``epoch`` counts from 0.

    Complete epochs only; the same rules as `ganlab_step_end`. See docs/plugins.md,
    `ganlab_epoch_end`.
    """


@hookspec
def ganlab_log_metrics(run: RunView, step: int, values: dict[str, float | int]) -> None:
    """Fires for every logged row, in step order: training statistics and metric results.

    Must not change ``values``. See docs/plugins.md, `ganlab_log_metrics`.
    """


@hookspec
def ganlab_log_file(run: RunView, step: int, name: str, path: Path, kind: str) -> None:
    """Fires when a plugin or the core announces a file it wrote with ``run.log_file``.

    Loggers upload or index the file; they must not move or change it. See docs/plugins.md,
    `ganlab_log_file`.
    """


@hookspec
def ganlab_evaluation_end(run: RunView, results: dict[str, float]) -> None:
    """Fires after the recipe's metrics were computed at ``run.step``.

    May keep a best checkpoint or call ``run.stop()``; must not change the models.
    See docs/plugins.md, `ganlab_evaluation_end`.
    """


@hookspec
def ganlab_run_end(run: RunView) -> None:
    """Fires once after the last step, after the final checkpoint is written.

    May write final files and add keys to ``run.info`` (``run.json`` is written after this
    hook). See docs/plugins.md, `ganlab_run_end`.
    """


@hookspec
def ganlab_run_error(run: RunView, error: BaseException) -> None:
    """Fires when the run stops on an exception (including Ctrl-C), before it propagates.

    Close files and connections; do not raise. See docs/plugins.md, `ganlab_run_error`.
    """
