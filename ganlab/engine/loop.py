"""The loop around the training step.

`Loop` runs steps (`ganlab.engine.step.Step`) over the seeded batches until the run's end,
with what goes around them: the step statistics flushed to ``metrics.jsonl`` and the
loggers, evaluations, checkpoints, the event hooks, and stopping at a step boundary when
asked to.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Mapping
from pathlib import Path

import torch

from ganlab.contracts import Metric
from ganlab.engine.components import Built
from ganlab.engine.distributed import (
    gather_from_ranks,
    max_over_ranks,
    mean_over_ranks,
)
from ganlab.engine.run import Run
from ganlab.engine.seeding import rng_state, rng_untouched
from ganlab.engine.step import Step
from ganlab.errors import GanlabError, RunInterrupted
from ganlab.files.atomic import write_json_atomic
from ganlab.files.checkpoint import (
    checkpoint_name,
    prune_checkpoints,
    save_checkpoint,
    step_checkpoints,
)
from ganlab.files.metrics_log import MetricsLog
from ganlab.plugin_manager.blame import blamed_on, broken_contract, called_code, describe
from ganlab.plugin_manager.logkeys import AUG, EVAL, TRAIN, KeyInfo, key_infos
from ganlab.recipe.schedules import learning_rates, rate_key
from ganlab.runview import StepStats

#: Class labels of a batch, or None (no classes).
ClassLabels = torch.Tensor | None


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
        #: the scheduled optimizers' learning rates after each pending step, by step (host
        #: floats; none without schedules, so such a run's rows are as they always were)
        self.rates: dict[int, dict[str, float]] = {}
        self.stop_signal: int | None = None  # set by `request_stop`, acted on after a step
        # A resumed run's keys keep what its earlier sessions logged them as (run.json's
        # `keys`, recorded as they appeared): its history holds their rows.
        for key, info in key_infos(run.info).items():
            run.keys.setdefault(key, info)
        rates = [rate_key(net) for net in run.schedulers]  # a scheduled optimizer's rate
        run.describe_keys(("epoch", *StepStats.NAMES, *rates), KeyInfo(TRAIN))
        run.logged_through = run.step  # a resumed run's rows reach its checkpoint's step

    def request_stop(self, signum: int) -> None:
        """Stop after the current step, writing a checkpoint (from a signal handler)."""
        self.stop_signal = signum

    def run_to_end(self) -> Path:
        """Train until ``run.total_steps`` (or until a hook sets ``run.should_stop``), then
        evaluate and write the final checkpoint, whose path is returned."""
        run, train = self.run, self.run.recipe.train
        first = run.step  # a resume that only finishes a run trains (and evaluates) nothing
        self.hook.ganlab_run_start(run=run.view)
        while run.step < run.total_steps and not run.should_stop:
            start = run.step - run.epoch * run.steps_per_epoch
            for index, (real, labels) in enumerate(run.batches.epoch(run.epoch, start), start):
                stats = self.step(real, labels, index)
                self.pending.append(stats)
                if run.schedulers:
                    self.rates[stats.step] = learning_rates(run.schedulers)
                self.hook.ganlab_step_end(run=run.view, stats=stats)
                if run.step % train.log_every == 0:
                    self.flush()
                if train.eval_every and run.step % train.eval_every == 0:
                    self.flush()  # rows reach the log in step order
                    self.evaluate()
                # The last step's checkpoint is written after the last evaluation, below.
                last = run.step >= run.total_steps
                if train.checkpoint_every and run.step % train.checkpoint_every == 0 and not last:
                    self.checkpoint()
                self.agree_on_stopping()
                if self.stop_signal is not None and not last:
                    self.stop_on_signal()
                if run.step >= run.total_steps or run.should_stop:
                    break
            if run.step == (run.epoch + 1) * run.steps_per_epoch:
                self.hook.ganlab_epoch_end(run=run.view, epoch=run.epoch)
                run.epoch += 1
        self.flush()
        evaluated = train.eval_every and run.step % train.eval_every == 0
        if self.metrics and run.step > first and not evaluated:
            self.evaluate()
        # Written after the last evaluation: a run stopped (or killed) from here on has only
        # its end-of-run work left, which `ganlab run --resume` does (`Resumption.finishing`).
        path = self.checkpoint()
        self.agree_on_stopping()
        if self.stop_signal is not None:
            self.stop_on_signal()
        return path

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
            extras = self.extra_values()
            for stats, row_values in zip(self.pending, values, strict=True):
                row: dict[str, float] = {"step": stats.step, "epoch": stats.epoch}
                row.update(zip(StepStats.NAMES, row_values, strict=True))
                row.update(extras.get(stats.step, {}))
                row.update(self.rates.pop(stats.step, {}))
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
            kept = step_checkpoints(run.dir)
            last = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint yet"
            what, advice = divergence(run, bad)
            raise GanlabError(
                f"Training diverged at step {int(bad['step'])}: {what}; {last}. {advice}"
            )

    def extra_values(self) -> dict[int, dict[str, float]]:
        """The pending steps' other statistics (penalties, augmentations), by step, moved to
        the host in one transfer like the rest; each key described once (`Run.keys`)."""
        run = self.run
        found = [(s.step, key, value) for s in self.pending for key, value in s.extra.items()]
        if not found:
            return {}
        for _, key, _ in found:
            if key not in run.keys:
                run.describe_keys([key], KeyInfo(AUG if key in self.step.aug_keys else TRAIN))
        stacked = torch.stack([value.detach().float() for _, _, value in found])
        values = mean_over_ranks(stacked, run.group).cpu().tolist()
        by_step: dict[int, dict[str, float]] = {}
        for (step, key, _), value in zip(found, values, strict=True):
            by_step.setdefault(step, {})[key] = value
        return by_step

    def evaluate(self) -> None:
        """Compute every metric of the recipe at the current step, and log the results."""
        run = self.run
        results = score(run, self.metrics)
        if results:
            self.emit({"step": run.step, **results})
            self.log.flush()
        self.hook.ganlab_evaluation_end(run=run.view, results=results)

    def emit(self, row: dict[str, float]) -> None:
        """One row to the run's history, metrics.jsonl and the loggers."""
        self.record_keys()
        self.run.logged_through = int(row["step"])
        self.run.history.append(row)
        self.log.write(row)
        values = {k: v for k, v in row.items() if k != "step"}
        self.hook.ganlab_log_metrics(run=self.run.view, step=row["step"], values=values)

    def record_keys(self) -> None:
        """Rewrite run.json (atomically) when the run has keys its ``keys`` do not hold yet,
        before their first row reaches the log or a logger: a session killed outright
        (SIGKILL), which never writes run.json at its end, still leaves what each key it
        logged is, for the session that resumes it (W&B files a key under its namespace,
        with its direction) and for `ganlab compare`."""
        run = self.run
        if not run.group.is_main:
            return
        recorded = run.info.get("keys")
        if isinstance(recorded, dict) and run.keys.keys() <= recorded.keys():
            return
        run.info["keys"] = {key: info.as_json() for key, info in run.keys.items()}
        write_json_atomic(run.dir / "run.json", run.info)

    def checkpoint(self) -> Path:
        """Write ``checkpoints/step_<N>.pt`` (after logging every step up to N), keep the
        newest ``train.keep_checkpoints``."""
        run = self.run
        self.flush()
        path = run.dir / "checkpoints" / checkpoint_name(run.step)
        if self.last_checkpoint == run.step:  # already written (e.g. a signal right after)
            return path
        self.last_checkpoint = run.step
        rng_by_rank = gather_from_ranks(rng_state(), run.group)  # every process takes part
        if run.group.is_main:
            save_checkpoint(path, run.state_dict(rng_by_rank))
            prune_checkpoints(run.dir, run.recipe.train.keep_checkpoints)
        return path


def divergence(run: Run, row: Mapping[str, float]) -> tuple[str, str]:
    """What went non-finite first in the step of ``row`` (its training row, with its
    penalties' values), and what to do about it, judged from what the step computes in order:
    a penalty's weighted term, then D's scores, G's images (through D's scores of them), the
    loss's value from finite scores, and D after its update (its gradient)."""
    for i, (name, term) in enumerate(run.penalties):
        if name not in row:
            continue  # a lazy penalty, not computed at this step
        value = row[name]
        weighted = term.weight * term.every * value
        # The step adds it in float32: past float32's largest number it is inf there.
        if not (math.isfinite(weighted) and abs(weighted) <= torch.finfo(torch.float32).max):
            shown = (
                f"its value is {value}"
                if not math.isfinite(value)
                else f"its weight {term.weight:g} times its value {value:.4g} is "
                f"{weighted:.3g}, past float32's largest number"
            )
            return (
                f"penalty {name!r} (penalties.{i}) went non-finite first: {shown}",
                f"Lower penalties.{i}.params.weight, or fix the penalty's value.",
            )
    lr = "a lower learning rate (optimizers.{}.lr)"
    fp32 = "" if run.recipe.train.precision == "fp32" else ", or fp32 precision"
    if not math.isfinite(row["d_real"]):
        return (
            f"D's scores of real images went non-finite first (d_real is {row['d_real']}): a "
            "gradient in D's update made its weights non-finite",
            f"Try {lr.format('discriminator')}{fp32}.",
        )
    if not math.isfinite(row["d_fake"]):
        return (
            f"D's scores of G's images went non-finite first (d_fake is {row['d_fake']}): a "
            "gradient in G's update made G's weights (its images) non-finite",
            f"Try {lr.format('generator')}{fp32}.",
        )
    loss = run.recipe.loss.name
    for key in ("loss_d", "loss_g"):
        if not math.isfinite(row[key]):
            return (
                f"{key} went non-finite first ({row[key]}) from finite scores: loss {loss!r} "
                "(or a penalty it adds) made it so",
                f"Check loss {loss!r} and its params; or try {lr.format('*')}{fp32}.",
            )
    return (
        f"D's scores after its update went non-finite first (d_fake_after is "
        f"{row['d_fake_after']}): a gradient in D's update made its weights non-finite",
        f"Try {lr.format('discriminator')}{fp32}.",
    )


def score(run: Run, metrics: list[Built[Metric]]) -> dict[str, float]:
    """Every metric's results for ``run`` as it is now, merged into one mapping.

    A metric may draw random numbers (say, to build a network): the RNG states are put back
    afterwards, so training goes on as it would have without evaluations.
    """
    results: dict[str, float] = {}
    with rng_untouched():
        for metric in metrics:
            with blamed_on(metric.component, metric.place, f"at step {run.step}"):
                values = metric_values(metric, metric.obj(run.view))
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
