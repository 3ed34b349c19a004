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
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.nn import Module

from ganlab.assemble import Built
from ganlab.blame import blamed_on, broken_contract, called_code, describe
from ganlab.checkpoint import checkpoint_name, prune_checkpoints, save_checkpoint, step_checkpoints
from ganlab.device import memory_format
from ganlab.distributed import (
    average_gradients,
    gather_from_ranks,
    max_over_ranks,
    mean_over_ranks,
)
from ganlab.errors import GanlabError, RunInterrupted
from ganlab.folders import MetricsLog, write_json_atomic
from ganlab.graphs import graphed, step_begins
from ganlab.hookspecs import Metric
from ganlab.logkeys import AUG, EVAL, TRAIN, KeyInfo, key_infos
from ganlab.penalty import (
    GeneratorPass,
    GeneratorPenalty,
    Penalty,
    StepScores,
    generator_pass,
    given,
)
from ganlab.run import Run, StepStats
from ganlab.schedules import learning_rates, rate_key
from ganlab.seeding import rng_state, rng_untouched

#: Class labels of a batch, or None (no classes).
ClassLabels = torch.Tensor | None


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
        if run.cuda_graphs:
            self.generator, self.discriminator = graphed(run.generator), graphed(run.discriminator)
        elif run.eager_reason is not None and run.group.is_main:
            # Once per run, on the console: the option was asked for and is not in effect.
            print(f"ganlab: note: train.cuda_graphs is off: {run.eager_reason}.", file=sys.stderr)
        # Fakes get classes, on the device, as often as the data's (G or D takes them).
        self.class_weights = None
        if (run.g_takes_labels or run.d_takes_labels) and run.labels is not None:
            self.class_weights = run.labels.frequencies().float().to(run.device)
        # The recipe's penalties by the network they regularize.
        self.d_penalties = [(n, p) for n, p in run.penalties if isinstance(p, Penalty)]
        self.g_penalties = [(n, p) for n, p in run.penalties if isinstance(p, GeneratorPenalty)]
        # What reports statistics (logged as "<name>.<key>"), and the keys augmentations
        # reported (logged in their own namespace).
        reporting = [(run.recipe.loss.name, run.loss), *run.penalties]
        self.reporting: list[tuple[str, Callable[[], Mapping[str, torch.Tensor]]]] = []
        for name, obj in reporting:
            method = getattr(obj, "statistics", None)  # optional: a plugin may report none
            if callable(method):
                self.reporting.append((name, method))
        self.aug_keys: set[str] = set()
        self._critic = _Critic(self)  # one, given each D update's classes (`critic`)

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, index: int) -> StepStats:
        """Train on ``real`` (the step's real images, every D update's batch in a row) and
        their class ``labels`` (None: no classes), the batch ``index`` of the epoch; return
        the step's statistics."""
        run = self.run
        if run.cuda_graphs:
            step_begins()
        discriminator, loss = self.discriminator, run.loss
        precision, train = run.precision, run.recipe.train
        real = real.contiguous(memory_format=self.layout)
        extra: dict[str, torch.Tensor] = {}
        # G's penalties due at this step (lazily, every k-th step); none: nothing changes.
        g_penalties = [(n, p) for n, p in self.g_penalties if run.step % p.every == 0]

        # (1) D, on each real batch of the step and detached fakes.
        real_batches = real.split(train.batch_size)
        label_batches = labels.split(train.batch_size) if labels is not None else None
        for i, real_batch in enumerate(real_batches):
            real_labels = label_batches[i] if label_batches is not None else None
            last = i == len(real_batches) - 1
            with precision.autocast():
                real_scores = self.scores(discriminator, real_batch, real_labels)
                # Only the last fakes go on to G's update: the others need no graph through G.
                with torch.set_grad_enabled(last):
                    g_pass, fake_labels = self.fakes(len(real_batch), bool(g_penalties) and last)
                fake = g_pass.images
                fake_scores = self.scores(discriminator, fake.detach(), fake_labels)
                loss_d = loss.discriminator_loss(real_scores, fake_scores)
                self.check_scalar(loss_d, "discriminator_loss")
                # The plain D: a compiled one cannot take the penalty's double backward.
                critic = self.critic(real_labels)
                penalty = loss.discriminator_penalty(critic, real_batch, fake.detach())
                if penalty is not None:
                    self.check_scalar(penalty, "discriminator_penalty")
                    loss_d = loss_d + penalty
                step_scores = StepScores(
                    real_scores, fake_scores, real_batch, fake.detach(), real_labels, fake_labels
                )
                for name, term in self.d_penalties:
                    if run.step % term.every == 0:  # lazily, every k-th step (StyleGAN2)
                        args = (step_scores,) if term.reads_scores else ()  # the old form too
                        value = term.value(critic, real_batch, fake.detach(), *args)
                        self.check_scalar(value, "value", f"penalty {name!r}", term)
                        loss_d = loss_d + term.weight * term.every * value
                        extra[name] = value.detach()
            self.update(loss_d, run.opt_d, "discriminator")
            for augmentation in run.augmentations:
                augmentation.observe(real_scores.detach())

        # (2) G: the last fakes (or fresh ones, train.g_batch_size) through the updated D.
        if train.g_batch_size is not None:
            g_pass, fake_labels = self.fakes(train.g_batch_size, bool(g_penalties))
        fake = g_pass.images
        with precision.autocast():
            fake_scores_after = self.scores(discriminator, fake, fake_labels)
            if loss.needs_real_scores is None:
                loss_g = loss.generator_loss(fake_scores_after)
            else:
                reals = self.real_scores_for_g(real_scores, real_batch, real_labels)
                loss_g = loss.generator_loss(fake_scores_after, reals)
            self.check_scalar(loss_g, "generator_loss")
            for name, g_term in g_penalties:
                value = g_term.value(g_pass)
                self.check_scalar(value, "value", f"penalty {name!r}", g_term)
                loss_g = loss_g + g_term.weight * g_term.every * value
                extra[name] = value.detach()
        self.update(loss_g, run.opt_g, "generator")
        if run.generator_ema is not None:
            run.generator_ema.update_parameters(run.generator)
        for scheduler in run.schedulers.values():
            scheduler.step()

        run.step += 1
        run.images_seen += real.shape[0] * run.group.world  # every process's share
        for augmentation in run.augmentations:
            found = augmentation.statistics()
            self.aug_keys.update(found)
            extra.update(found)
        for name, statistics in self.reporting:
            for key, value in statistics().items():
                extra[f"{name}.{key}"] = value
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
                extra=extra,
            )

    def fakes(self, n: int, intermediates: bool = False) -> tuple[GeneratorPass, ClassLabels]:
        """``n`` fakes from fresh latent vectors, and their classes when G or D takes them:
        drawn (from the training RNG stream) as often as the classes occur in the data.

        With ``intermediates`` (a G penalty is due), the latents require gradients and the
        plain generator is run through `ExposesIntermediates` when it has it."""
        run = self.run
        latents = torch.randn((n, *run.generator.latent_shape), device=run.device)
        labels = None
        if self.class_weights is not None:
            labels = torch.multinomial(self.class_weights, n, replacement=True)
        g_labels = labels if run.g_takes_labels else None
        return generator_pass(
            run.generator, latents, g_labels, intermediates, self.generator
        ), labels

    def real_scores_for_g(
        self, last: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None
    ) -> torch.Tensor:
        """D's scores of the step's last real batch for a loss that needs them in G's
        update: those of D's last update, or (``"current"``) the batch scored again by D
        as it is now, without a graph (G's gradient does not go through them)."""
        if self.run.loss.needs_real_scores == "last":
            return last.detach()
        with torch.no_grad():
            return self.scores(self.discriminator, real, labels)

    def scores(
        self,
        discriminator: Callable[..., torch.Tensor],
        images: torch.Tensor,
        labels: torch.Tensor | None,
    ) -> torch.Tensor:
        """D's scores for ``images`` as D's updates see them: augmented by the recipe's
        ``augment:`` list, with their classes for a conditional D; flat, in float32."""
        for augmentation in self.run.augmentations:
            images = augmentation(images)
        d_labels = labels if self.run.d_takes_labels else None
        return discriminator(images, *given(d_labels)).reshape(-1).float()

    def critic(self, labels: torch.Tensor | None) -> _Critic:
        """D as penalties see it (`ganlab.penalty.Critic`): the plain module (a compiled one
        cannot take their double backward), augmented and given the real batch's classes
        (or the ones a penalty passes) as in D's update."""
        self._critic.labels = labels
        return self._critic

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, net: str) -> None:
        """Backward and one optimizer step in the run's precision; with several processes, on
        the gradients averaged over them."""
        model = getattr(self.run, net)
        self.run.precision.backward_and_step(
            loss, optimizer, net, before_step=lambda: average_gradients(model, self.run.group)
        )

    def check_scalar(
        self, value: Any, method: str, subject: str | None = None, owner: object = None
    ) -> None:
        """A loss or penalty method must return one number: a 0-dim tensor."""
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            return
        got = (
            f"a tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}"
        )
        raise broken_contract(
            subject or self.loss_subject,
            f"returned {got} from {method}; {'a penalty' if owner is not None else 'a loss'} "
            "must be one number, a 0-dim tensor (for example the .mean() of per-image values)",
            getattr(type(owner if owner is not None else self.run.loss), method),
        )


class _Critic(Module):
    """The plain D as the step calls it, for penalties: augmented, with the batch's labels."""

    def __init__(self, step: Step) -> None:
        super().__init__()
        self.step = step
        self.labels: torch.Tensor | None = None  # the real batch's, set at each D update

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        chosen = self.labels if labels is None else labels
        return self.step.scores(self.step.run.discriminator, images, chosen)


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
        self.hook.ganlab_run_start(run=run)
        while run.step < run.total_steps and not run.should_stop:
            start = run.step - run.epoch * run.steps_per_epoch
            for index, (real, labels) in enumerate(run.batches.epoch(run.epoch, start), start):
                stats = self.step(real, labels, index)
                self.pending.append(stats)
                if run.schedulers:
                    self.rates[stats.step] = learning_rates(run.schedulers)
                self.hook.ganlab_step_end(run=run, stats=stats)
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
                self.hook.ganlab_epoch_end(run=run, epoch=run.epoch)
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
        self.hook.ganlab_evaluation_end(run=run, results=results)

    def emit(self, row: dict[str, float]) -> None:
        """One row to the run's history, metrics.jsonl and the loggers."""
        self.record_keys()
        self.run.logged_through = int(row["step"])
        self.run.history.append(row)
        self.log.write(row)
        values = {k: v for k, v in row.items() if k != "step"}
        self.hook.ganlab_log_metrics(run=self.run, step=row["step"], values=values)

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
