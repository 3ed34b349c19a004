"""The training step and the loop around it.

`Step` is the DCGAN tutorial's step, written once for any loss plugin:

1. D: scores on a real batch and on fakes ``G(z)`` (detached), ``loss.discriminator_loss``
   (plus ``loss.discriminator_penalty`` if the loss has one), one optimizer step; repeated
   ``train.d_steps`` times (once in the tutorial), each time on the next real batch.
2. G: D's scores on the last fakes, ``loss.generator_loss``, one optimizer step; then the
   moving average of G's weights moves towards them (``train.ema``).

`Loop` runs steps over the seeded batches until the run's end, with what goes around them:
the step statistics flushed to ``metrics.jsonl`` and the loggers, evaluations, checkpoints,
the event hooks, and stopping at a step boundary when asked to.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganlab.assemble import Built
from ganlab.blame import blamed_on, broken_contract, called_code, describe
from ganlab.checkpoint import prune_checkpoints, save_checkpoint, step_checkpoints
from ganlab.device import memory_format
from ganlab.distributed import (
    average_gradients,
    gather_from_ranks,
    max_over_ranks,
    mean_over_ranks,
)
from ganlab.errors import GanlabError, RunInterrupted
from ganlab.folders import MetricsLog
from ganlab.hookspecs import Metric
from ganlab.logkeys import EVAL, TRAIN, KeyInfo
from ganlab.run import Run, StepStats
from ganlab.seeding import rng_state, rng_untouched


class Step:
    """One training step of ``run``: ``train.d_steps`` D updates and one G update.

    ``loss_subject`` names the loss component in messages (`ganlab.blame.describe`).
    """

    def __init__(self, run: Run, loss_subject: str = "the loss") -> None:
        self.run = run
        self.loss_subject = loss_subject
        self.layout = memory_format(run.recipe.train)
        # Compiled forward passes for the step; run.generator/discriminator stay the plain
        # modules, whose weights the compiled ones share (checkpoints and sampling use them).
        compiled = run.recipe.train.compile
        self.generator = torch.compile(run.generator) if compiled else run.generator
        self.discriminator = torch.compile(run.discriminator) if compiled else run.discriminator

    def __call__(self, real: torch.Tensor, index: int) -> StepStats:
        """Train on ``real`` (the step's real images, every D update's batch in a row), the
        batch ``index`` of the epoch; return the step's statistics."""
        run = self.run
        generator, discriminator, loss = self.generator, self.discriminator, run.loss
        precision = run.precision
        real = real.contiguous(memory_format=self.layout)

        # (1) D, on each real batch of the step and detached fakes.
        real_batches = real.split(run.recipe.train.batch_size)
        for i, real_batch in enumerate(real_batches):
            with precision.autocast():
                real_scores = discriminator(real_batch).reshape(-1).float()
                shape = (real_batch.shape[0], *run.generator.latent_shape)
                # Only the last fakes go on to G's update: the others need no graph through G.
                with torch.set_grad_enabled(i == len(real_batches) - 1):
                    fake = generator(torch.randn(shape, device=run.device))
                fake_scores = discriminator(fake.detach()).reshape(-1).float()
                loss_d = loss.discriminator_loss(real_scores, fake_scores)
                self.check_scalar(loss_d, "discriminator_loss")
                # The plain D: a compiled one cannot take the penalty's double backward.
                penalty = loss.discriminator_penalty(run.discriminator, real_batch, fake.detach())
                if penalty is not None:
                    self.check_scalar(penalty, "discriminator_penalty")
                    loss_d = loss_d + penalty
            self.update(loss_d, run.opt_d, "discriminator")

        # (2) G: the last fakes through the updated D.
        with precision.autocast():
            fake_scores_after = discriminator(fake).reshape(-1).float()
            loss_g = loss.generator_loss(fake_scores_after)
            self.check_scalar(loss_g, "generator_loss")
        self.update(loss_g, run.opt_g, "generator")
        if run.generator_ema is not None:
            run.generator_ema.update_parameters(run.generator)

        run.step += 1
        run.images_seen += real.shape[0] * run.group.world  # every process's share
        with torch.no_grad():
            return StepStats(
                step=run.step,
                epoch=run.epoch,
                index=index,
                loss_d=loss_d.detach(),
                loss_g=loss_g.detach(),
                d_real=loss.readout(real_scores.detach()).mean(),
                d_fake=loss.readout(fake_scores.detach()).mean(),
                d_fake_after=loss.readout(fake_scores_after.detach()).mean(),
            )

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, net: str) -> None:
        """Backward and one optimizer step in the run's precision; with several processes, on
        the gradients averaged over them."""
        model = getattr(self.run, net)
        self.run.precision.backward_and_step(
            loss, optimizer, net, before_step=lambda: average_gradients(model, self.run.group)
        )

    def check_scalar(self, value: Any, method: str) -> None:
        """A loss method must return one number: a 0-dim tensor."""
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            return
        got = (
            f"a tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}"
        )
        raise broken_contract(
            self.loss_subject,
            f"returned {got} from {method}; a loss must be one number, a 0-dim tensor (for "
            "example the .mean() of per-image losses)",
            getattr(type(self.run.loss), method),
        )


class Loop:
    """Steps over the seeded batches until the run's end, and what goes around them."""

    def __init__(self, run: Run, step: Step, metrics: list[Built[Metric]]) -> None:
        self.run = run
        self.step = step
        self.metrics = metrics
        self.hook = run.hook
        # Rank 0 alone writes the log; the other processes write to nowhere.
        self.log = MetricsLog(run.dir / "metrics.jsonl" if run.group.is_main else Path(os.devnull))
        self.last_checkpoint = run.step  # a resumed run starts from one
        self.pending: list[StepStats] = []  # statistics not yet logged, still on the device
        self.stop_signal: int | None = None  # set by `request_stop`, acted on after a step
        run.describe_keys(("epoch", *StepStats.NAMES), KeyInfo(TRAIN))
        run.logged_through = run.step  # a resumed run's rows reach its checkpoint's step

    def request_stop(self, signum: int) -> None:
        """Stop after the current step, writing a checkpoint (from a signal handler)."""
        self.stop_signal = signum

    def run_to_end(self) -> Path:
        """Train until ``run.total_steps`` (or until a hook sets ``run.should_stop``), then
        evaluate and write the final checkpoint, whose path is returned."""
        run, train = self.run, self.run.recipe.train
        self.hook.ganlab_run_start(run=run)
        while run.step < run.total_steps and not run.should_stop:
            start = run.step - run.epoch * run.steps_per_epoch
            for index, real in enumerate(run.batches.epoch(run.epoch, start), start):
                stats = self.step(real, index)
                self.pending.append(stats)
                self.hook.ganlab_step_end(run=run, stats=stats)
                if run.step % train.log_every == 0:
                    self.flush()
                if train.eval_every and run.step % train.eval_every == 0:
                    self.flush()  # rows reach the log in step order
                    self.evaluate()
                if train.checkpoint_every and run.step % train.checkpoint_every == 0:
                    self.checkpoint()
                self.agree_on_stopping()
                if self.stop_signal is not None:
                    self.stop_on_signal()
                if run.step >= run.total_steps or run.should_stop:
                    break
            if run.step == (run.epoch + 1) * run.steps_per_epoch:
                self.hook.ganlab_epoch_end(run=run, epoch=run.epoch)
                run.epoch += 1
        self.flush()
        if self.metrics and not (train.eval_every and run.step % train.eval_every == 0):
            self.evaluate()
        return self.checkpoint()

    def agree_on_stopping(self) -> None:
        """With several processes, all stop at the same step when any one has to."""
        run = self.run
        if run.group.distributed:
            flags = torch.tensor([float(run.should_stop), float(self.stop_signal or 0)])
            flags = max_over_ranks(flags, run.group)
            run.should_stop, self.stop_signal = bool(flags[0]), int(flags[1]) or None

    def stop_on_signal(self) -> None:
        run, signum = self.run, self.stop_signal
        assert signum is not None
        path = self.checkpoint()
        raise RunInterrupted(
            f"{signal.Signals(signum).name}: stopped after step {run.step} of "
            f"{run.total_steps}; checkpoint {path}. Continue with: ganlab run --resume {run.dir}",
            signum,
        )

    def flush(self, check: bool = True) -> None:
        """Move buffered step statistics to the host in one transfer and log them, with the
        rows plugins gave `Run.log`, in step order.

        With ``check``, a loss that is NaN or infinite stops the run (checking here costs no
        extra wait for the device, and every checkpoint is written after a flush, so none
        holds a diverged model).
        """
        run = self.run
        rows: list[dict[str, float]] = []
        bad = None
        if self.pending:
            stacked = torch.stack([s.values() for s in self.pending])
            values = mean_over_ranks(stacked, run.group).cpu().tolist()
            for stats, row_values in zip(self.pending, values, strict=True):
                row: dict[str, float] = {"step": stats.step, "epoch": stats.epoch}
                row.update(zip(StepStats.NAMES, row_values, strict=True))
                rows.append(row)
                if bad is None and not all(math.isfinite(v) for v in row_values):
                    bad = row
            self.pending.clear()
        rows += run.logged
        run.logged.clear()
        if not rows:
            return
        # Stable: a step's training row comes before the rows logged at that step.
        for row in sorted(rows, key=lambda r: r["step"]):
            self.emit(row)
        self.log.flush()
        if check and bad is not None:
            name = next(k for k in StepStats.NAMES if not math.isfinite(bad[k]))
            kept = step_checkpoints(run.dir)
            last = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint yet"
            raise GanlabError(
                f"Training diverged at step {bad['step']}: {name} is {bad[name]}; {last}. "
                "Try a lower learning rate (optimizers.*.lr) or fp32 precision."
            )

    def evaluate(self) -> None:
        """Compute every metric of the recipe at the current step, and log the results."""
        run = self.run
        results = score(run, self.metrics)
        if results:
            self.emit({"step": run.step, **results})
            self.log.flush()
        self.hook.ganlab_evaluation_end(run=run, results=results)

    def emit(self, row: dict[str, float]) -> None:
        """One row to the run's history, metrics.jsonl and the loggers."""
        self.run.logged_through = int(row["step"])
        self.run.history.append(row)
        self.log.write(row)
        values = {k: v for k, v in row.items() if k != "step"}
        self.hook.ganlab_log_metrics(run=self.run, step=row["step"], values=values)

    def checkpoint(self) -> Path:
        """Write ``checkpoints/step_<N>.pt`` (after logging every step up to N), keep the
        newest ``train.keep_checkpoints``."""
        run = self.run
        self.flush()
        path = run.dir / "checkpoints" / f"step_{run.step:06d}.pt"
        if self.last_checkpoint == run.step:  # already written (e.g. a signal right after)
            return path
        self.last_checkpoint = run.step
        rng_by_rank = gather_from_ranks(rng_state(), run.group)  # every process takes part
        if run.group.is_main:
            save_checkpoint(path, run.state_dict(rng_by_rank))
            prune_checkpoints(run.dir, run.recipe.train.keep_checkpoints)
        return path


def score(run: Run, metrics: list[Built[Metric]]) -> dict[str, float]:
    """Every metric's results for ``run`` as it is now, merged into one mapping.

    A metric may draw random numbers (say, to build a network): the RNG states are put back
    afterwards, so training goes on as it would have without evaluations.
    """
    results: dict[str, float] = {}
    with rng_untouched():
        for metric in metrics:
            with blamed_on(metric.component, metric.place, f"at step {run.step}"):
                values = metric_values(metric, metric.obj(run))
            run.describe_keys(values, KeyInfo(EVAL, metric.component.better))
            results.update(values)
    return results


def metric_values(metric: Built[Metric], values: object) -> dict[str, float]:
    """A metric's results as numbers; anything else is the metric's bug (a plugin's
    metric is checked here, whatever its annotations say)."""
    try:
        if isinstance(values, Mapping) and all(isinstance(k, str) for k in values):
            return {key: float(value) for key, value in values.items()}
    except (TypeError, ValueError, RuntimeError):
        pass
    raise broken_contract(
        describe(metric.component, metric.place),
        f"returned {values!r:.80} instead of a mapping of result names to numbers",
        called_code(metric.obj),
    )
