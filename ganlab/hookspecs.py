"""The hooks a ganlab plugin can implement.

Two families:

* Registration hooks (`ganlab_register_*`) are called once per plugin manager. Each receives
  a `register` callback; a plugin calls it once per component it provides::

      @ganlab.hookimpl
      def ganlab_register_losses(register):
          register("hinge", build_hinge, params=HingeParams)

* Event hooks (`ganlab_run_start`, ...) fire during a run on every callback and logger the
  recipe names (and on any plugin module that implements them). They observe the run; what
  they may change is said in each docstring.

Pluggy calls hooks with keyword arguments only and never fills in defaults, so an
implementation may accept any subset of the arguments below, by name, without defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from ganlab.registry import Register
    from ganlab.run import Run, StepStats

PROJECT = "ganlab"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration -------------------------------------------------------------------------


@hookspec
def ganlab_register_datasets(register: Register) -> None:
    """Register data sets: ``register(name, build, params=Model)``.

    ``build(params)`` returns an `ganlab.ImageDataset`: a sized, indexable collection of
    float32 images shaped ``(C, H, W)`` in ``[-1, 1]`` (or an `ganlab.TensorImages`, which
    holds every image in one uint8 tensor so the runner can slice batches without a loader).
    The runner owns batching, shuffling and workers.
    """


@hookspec
def ganlab_register_generators(register: Register) -> None:
    """Register generators: ``register(name, build, params=Model)``.

    ``build(params, image_shape)`` returns a ``torch.nn.Module`` mapping latent vectors of
    shape ``(N, *module.latent_shape)`` to images ``(N, *image_shape)`` in ``[-1, 1]``.
    ``image_shape`` is ``(C, H, W)`` of the recipe's data set.
    """


@hookspec
def ganlab_register_discriminators(register: Register) -> None:
    """Register discriminators: ``register(name, build, params=Model)``.

    ``build(params, image_shape)`` returns a ``torch.nn.Module`` mapping images
    ``(N, *image_shape)`` to one raw score (a logit, no final activation) per image, shaped
    ``(N,)`` or anything with N elements. The loss decides what the score means.
    """


@hookspec
def ganlab_register_losses(register: Register) -> None:
    """Register adversarial losses: ``register(name, build, params=Model)``.

    ``build(params)`` returns a `ganlab.GanLoss`, which turns discriminator scores into the
    D loss and the G loss, and says how scores read as "D(x)" in the console.
    """


@hookspec
def ganlab_register_callbacks(register: Register) -> None:
    """Register callbacks: ``register(name, build, params=Model)``.

    ``build(params)`` returns an object whose methods are event hooks (decorated with
    ``@ganlab.hookimpl``). The runner registers it for one run, so its hooks fire for that
    run only.
    """


@hookspec
def ganlab_register_metrics(register: Register) -> None:
    """Register quality metrics: ``register(name, build, params=Model)``.

    ``build(params)`` returns a callable ``metric(run) -> dict[str, float]``. The runner
    calls every metric of the recipe every ``train.eval_every`` steps and at the end, writes
    the values to ``metrics.jsonl`` and fires `ganlab_evaluation_end`. Keys are metric
    names as they should appear in logs, e.g. ``{"swd": 0.12}``.

    Declare them with ``register(..., results=("swd", "swd_*"))`` (``*``: any text), or a
    function of the params that returns them: a recipe in which a `ganlab.MetricKey` param
    (the ``best`` callback's ``metric``) names a key no metric of it produces is then refused
    when it is validated.
    """


@hookspec
def ganlab_register_loggers(register: Register) -> None:
    """Register experiment loggers: ``register(name, build, params=Model)``.

    ``build(params)`` returns an object with event hooks, like a callback; a logger
    usually implements `ganlab_log_metrics` to send values somewhere (W&B, a database).
    """


# --- events during a run -----------------------------------------------------------------


@hookspec
def ganlab_run_start(run: Run) -> None:
    """Fires once, after the models, optimizers and data are built and before the first step.

    ``run.step`` is 0. A hook may read anything on
    ``run`` and write files into ``run.dir``; it must not change the models or the data.
    """


@hookspec
def ganlab_step_end(run: Run, stats: StepStats) -> None:
    """Fires after every training step (``train.d_steps`` D updates and one G update).

    ``stats`` holds that step's losses and D statistics as tensors still on the device:
    call ``float()`` on them only when you need the number (say every 50 steps), since each
    call waits for the device. ``run.step`` is the number of steps done, ``stats.step`` too.
    A hook may generate images with ``run.generate`` (which leaves the models as they were);
    it must not change the models, optimizers or RNG state.
    """


@hookspec
def ganlab_epoch_end(run: Run, epoch: int) -> None:
    """Fires after the last step of each epoch; ``epoch`` counts from 0.

    Same rules as `ganlab_step_end`.
    """


@hookspec
def ganlab_log_metrics(run: Run, step: int, values: dict[str, float | int]) -> None:
    """Fires for every logged row, in step order: training statistics and metric results.

    Training statistics are buffered on the device and flushed every ``train.log_every``
    steps, so this hook fires in bursts; ``step`` tells which step each row belongs to.
    The same rows go to ``metrics.jsonl``. A hook must not change ``values``.
    """


@hookspec
def ganlab_log_file(run: Run, step: int, name: str, path: Path, kind: str) -> None:
    """Fires when a plugin or the core announces a file it wrote with ``run.log_file``.

    ``kind`` says what the file is: ``"image"`` (a PNG such as a sample grid or a plot),
    ``"video"`` (a GIF such as the fixed-noise progression) or ``"model"`` (a checkpoint).
    ``name`` is a stable key such as ``"samples"``; ``step`` is the step it belongs to.
    Loggers upload or index the file; they must not move or change it.
    """


@hookspec
def ganlab_evaluation_end(run: Run, results: dict[str, float]) -> None:
    """Fires after the recipe's metrics were computed at ``run.step``.

    ``results`` merges every metric's output. Use it to keep a best checkpoint or to stop
    early (set ``run.should_stop = True``); it must not change the models.
    """


@hookspec
def ganlab_run_end(run: Run) -> None:
    """Fires once after the last step, after the final checkpoint is written.

    Write final figures and summaries here. ``run.step`` is the total number of steps.
    ``run.json`` is written after this hook, so keys a plugin adds to ``run.info`` are kept.
    """


@hookspec
def ganlab_run_error(run: Run, error: BaseException) -> None:
    """Fires when the run stops on an exception (including Ctrl-C), before it propagates.

    Close files and connections here; do not raise. The exception is re-raised afterwards.
    """
