"""The training loop: build the recipe's components, then alternate D and G steps.

The step is the DCGAN tutorial's, written once for any loss plugin:

1. D: scores on a real batch and on fakes ``G(z)`` (detached), ``loss.discriminator_loss``,
   one optimizer step.
2. G: D's scores on the same fakes, ``loss.generator_loss``, one optimizer step.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from ganlab.checkpoint import save_checkpoint
from ganlab.data import Batches, ImageDataset, TensorImages
from ganlab.errors import GanlabError
from ganlab.loss import GanLoss
from ganlab.plugins import Plugins
from ganlab.recipe import OptimizerSpec, Resolved, TrainSpec
from ganlab.registry import Component, singular
from ganlab.run import FIXED_LATENTS, Run, StepStats
from ganlab.rundir import MetricsLog, create_run_dir, run_info, write_json_atomic


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device) from the recipe's seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else mps, else cpu; anything else must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanlabError(
            f"device {name!r}: this machine has no CUDA GPU that torch can use. "
            "Use --device cpu (or device: auto in the recipe)."
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise GanlabError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GanlabError(f"device {name!r}: MPS is not available here. Use --device cpu.")
    return device


def total_steps(train: TrainSpec, steps_per_epoch: int) -> int:
    """The step a run ends at: ``train.steps`` or ``train.epochs`` worth, whichever is first."""
    limits = [train.steps] if train.steps else []
    if train.epochs:
        limits.append(train.epochs * steps_per_epoch)
    return min(limits)


def make_optimizer(spec: OptimizerSpec, params: Any) -> torch.optim.Optimizer:
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec.name]
    return kind(params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)


def _build(place: str, component: Component, params: BaseModel, *args: Any) -> Any:
    """Call a component's build function; a plugin bug names the plugin and the place."""
    try:
        return component.build(params, *args)
    except GanlabError:
        raise
    except Exception as exc:
        raise RuntimeError(
            f"{place}: building {singular(component.kind)} {component.name!r} "
            f"(from plugin {component.plugin!r}) failed: {exc}"
        ) from exc


def build_models(
    resolved: Resolved, image_shape: tuple[int, int, int], device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """The recipe's generator and discriminator, on ``device``."""
    g_component, g_params = resolved.get("generator")
    generator = _build("generator", g_component, g_params, image_shape)
    if not hasattr(generator, "latent_shape"):
        raise RuntimeError(
            f"generator {g_component.name!r} (plugin {g_component.plugin!r}) has no "
            "`latent_shape` attribute; the runner needs it to draw latent vectors."
        )
    d_component, d_params = resolved.get("discriminator")
    discriminator = _build("discriminator", d_component, d_params, image_shape)
    return generator.to(device), discriminator.to(device)


def train(
    resolved: Resolved,
    plugins: Plugins,
    out: Path,
    recipe_path: Path | None = None,
) -> Run:
    """Run a resolved recipe to the end and return the finished `Run`."""
    recipe = resolved.recipe
    seed_everything(recipe.seed)
    device = pick_device(recipe.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest

    # Build everything before the run folder exists, so a mistake leaves nothing behind.
    dataset = _build("data", *resolved.get("data"))
    if not isinstance(dataset, (ImageDataset, TensorImages)):
        raise RuntimeError(f"data set {recipe.data.name!r} did not return an ImageDataset.")
    if len(dataset) == 0:
        raise GanlabError(f"data set {recipe.data.name!r} has no images.")
    image_shape = tuple(dataset.image_shape)
    generator, discriminator = build_models(resolved, image_shape, device)
    loss = _build("loss", *resolved.get("loss"))
    if not isinstance(loss, GanLoss):
        raise RuntimeError(f"loss {recipe.loss.name!r} did not return a ganlab.GanLoss.")
    opt_g = make_optimizer(recipe.optimizers.generator, generator.parameters())
    opt_d = make_optimizer(recipe.optimizers.discriminator, discriminator.parameters())
    batches = Batches(dataset, recipe.train.batch_size, recipe.seed, device, recipe.train.workers)
    # Pluggy calls the last registered first: loggers go in first, so that at every event
    # the callbacks run before the loggers that record what they produced.
    observers = [
        (f"{section}.{i}:{component.name}", _build(f"{section}.{i}", component, params))
        for section in ("loggers", "callbacks")
        for i, (component, params) in enumerate(resolved.listed(section))
    ]
    metrics = [
        _build(f"metrics.{i}", component, params)
        for i, (component, params) in enumerate(resolved.listed("metrics"))
    ]

    for name, observer in observers:
        plugins.register_for_run(observer, name)

    run_dir = create_run_dir(out, recipe.name, recipe.seed)
    (run_dir / "recipe.yaml").write_text(resolved.to_yaml(), encoding="utf-8")

    run = Run(
        recipe=recipe,
        dir=run_dir,
        device=device,
        generator=generator,
        discriminator=discriminator,
        opt_g=opt_g,
        opt_d=opt_d,
        loss=loss,
        dataset=dataset,
        batches=batches,
        fixed_latents=torch.empty(0),
        total_steps=total_steps(recipe.train, len(batches)),
        info=run_info(recipe.seed, str(device), recipe_path),
        hook=plugins.pm.hook,
    )
    run.fixed_latents = run.sample_latents(FIXED_LATENTS, recipe.seed)
    write_json_atomic(run_dir / "run.json", run.info)
    try:
        _Loop(run, plugins, metrics).train()
    finally:
        for _, observer in observers:
            plugins.pm.unregister(observer)
    return run


class _Loop:
    """One run's loop, with the bookkeeping (logging, evaluation, run.json) around the step."""

    def __init__(self, run: Run, plugins: Plugins, metrics: list[Any]) -> None:
        self.run = run
        self.hook = plugins.pm.hook
        self.metrics = metrics
        self.log = MetricsLog(run.dir / "metrics.jsonl")
        self.pending: list[StepStats] = []
        self.images_seen = 0
        train = run.recipe.train
        self.autocast = (
            torch.autocast(run.device.type, dtype=torch.bfloat16)
            if train.precision == "bf16"
            else contextlib.nullcontext()
        )

    def train(self) -> None:
        run, train = self.run, self.run.recipe.train
        started = time.perf_counter()
        try:
            self.hook.ganlab_run_start(run=run)
            while run.step < run.total_steps and not run.should_stop:
                start = run.step - run.epoch * run.steps_per_epoch
                for index, real in enumerate(run.batches.epoch(run.epoch, start), start):
                    stats = self.step(real, index)
                    self.hook.ganlab_step_end(run=run, stats=stats)
                    if run.step % train.log_every == 0:
                        self.flush()
                    if train.eval_every and run.step % train.eval_every == 0:
                        self.flush()  # rows reach the log in step order
                        self.evaluate()
                    if run.step >= run.total_steps or run.should_stop:
                        break
                if run.step == (run.epoch + 1) * run.steps_per_epoch:
                    self.hook.ganlab_epoch_end(run=run, epoch=run.epoch)
                    run.epoch += 1
            self.flush()
            if self.metrics and not (train.eval_every and run.step % train.eval_every == 0):
                self.evaluate()
            run.log_file("checkpoint", self.save("final.pt"), kind="model")
            self.finish("completed", started)
            self.hook.ganlab_run_end(run=run)
        except BaseException as exc:
            self.flush()
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.run.info["error"] = f"{type(exc).__name__}: {exc}"
            self.finish(status, started)
            self.hook.ganlab_run_error(run=run, error=exc)
            raise
        finally:
            self.log.close()

    def step(self, real: torch.Tensor, index: int) -> StepStats:
        """One D update and one G update: the tutorial's iteration, for any loss."""
        run = self.run
        generator, discriminator, loss = run.generator, run.discriminator, run.loss

        # (1) D: real batch and detached fakes.
        with self.autocast:
            real_scores = discriminator(real).reshape(-1).float()
            latents = torch.randn((real.shape[0], *generator.latent_shape), device=run.device)
            fake = generator(latents)
            fake_scores = discriminator(fake.detach()).reshape(-1).float()
            loss_d = loss.discriminator_loss(real_scores, fake_scores)
        run.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        run.opt_d.step()

        # (2) G: the same fakes through the updated D.
        with self.autocast:
            fake_scores_after = discriminator(fake).reshape(-1).float()
            loss_g = loss.generator_loss(fake_scores_after)
        run.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        run.opt_g.step()

        run.step += 1
        self.images_seen += real.shape[0]
        with torch.no_grad():
            stats = StepStats(
                step=run.step,
                epoch=run.epoch,
                index=index,
                loss_d=loss_d.detach(),
                loss_g=loss_g.detach(),
                d_real=loss.readout(real_scores.detach()).mean(),
                d_fake=loss.readout(fake_scores.detach()).mean(),
                d_fake_after=loss.readout(fake_scores_after.detach()).mean(),
            )
        self.pending.append(stats)
        return stats

    def flush(self) -> None:
        """Move buffered step statistics to the host in one transfer and log them."""
        if not self.pending:
            return
        values = torch.stack([s.values() for s in self.pending]).cpu().tolist()
        for stats, row_values in zip(self.pending, values, strict=True):
            row = {"step": stats.step, "epoch": stats.epoch}
            row.update(zip(StepStats.NAMES, row_values, strict=True))
            self.emit(row)
        self.pending.clear()
        self.log.flush()

    def evaluate(self) -> None:
        """Compute every metric of the recipe at the current step, and log the results."""
        run = self.run
        results: dict[str, float] = {}
        for metric in self.metrics:
            results.update({k: float(v) for k, v in metric(run).items()})
        if results:
            self.emit({"step": run.step, **results})
            self.log.flush()
        self.hook.ganlab_evaluation_end(run=run, results=results)

    def emit(self, row: dict[str, float]) -> None:
        self.run.history.append(row)
        self.log.write(row)
        values = {k: v for k, v in row.items() if k != "step"}
        self.hook.ganlab_log_metrics(run=self.run, step=row["step"], values=values)

    def save(self, filename: str) -> Path:
        run = self.run
        path = run.dir / "checkpoints" / filename
        save_checkpoint(
            path,
            {
                "generator": run.generator.state_dict(),
                "discriminator": run.discriminator.state_dict(),
                "opt_g": run.opt_g.state_dict(),
                "opt_d": run.opt_d.state_dict(),
                "step": run.step,
                "epoch": run.epoch,
                "image_shape": list(run.dataset.image_shape),
                "fixed_latents": run.fixed_latents.cpu(),
                "recipe": run.recipe.model_dump(mode="json"),
                "versions": run.info["versions"],
            },
        )
        return path

    def finish(self, status: str, started: float) -> None:
        run = self.run
        wall = time.perf_counter() - started
        run.info.update(
            status=status,
            steps=run.step,
            epochs_completed=run.epoch,
            images_seen=self.images_seen,
            wall_seconds=round(wall, 3),
            images_per_second=round(self.images_seen / wall, 1) if wall > 0 else None,
            ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        write_json_atomic(run.dir / "run.json", run.info)
