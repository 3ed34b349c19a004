"""The training loop: build the recipe's components, then alternate D and G steps.

The step is the DCGAN tutorial's, written once for any loss plugin:

1. D: scores on a real batch and on fakes ``G(z)`` (detached), ``loss.discriminator_loss``
   (plus ``loss.discriminator_penalty`` if the loss has one), one optimizer step; repeated
   ``train.d_steps`` times (once in the tutorial), each time on the next real batch.
2. G: D's scores on the last fakes, ``loss.generator_loss``, one optimizer step; then the
   moving average of G's weights moves towards them (``train.ema``).
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from pydantic import BaseModel
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganlab.blame import (
    Suspect,
    blamed_on,
    broken_contract,
    code_home,
    describe,
    failure,
    find_culprit,
    is_out_of_memory,
    out_of_memory,
)
from ganlab.cache import CacheableImages, cached
from ganlab.checkpoint import (
    prune_checkpoints,
    publish_final,
    rng_state,
    save_checkpoint,
    set_rng_state,
    step_checkpoints,
    training_state,
)
from ganlab.data import Batches, ImageDataset, TensorImages
from ganlab.distributed import (
    Group,
    average_gradients,
    check_supported,
    from_main,
    gather_from_ranks,
    join,
    leave,
    max_over_ranks,
    mean_over_ranks,
    rank_seed,
)
from ganlab.errors import GanlabError, PluginError, RunInterrupted
from ganlab.hookspecs import PROJECT
from ganlab.loss import GanLoss
from ganlab.memory import check_memory
from ganlab.plugins import Plugins
from ganlab.recipe import OptimizerSpec, Resolved, TrainSpec
from ganlab.registry import Component
from ganlab.resume import open_resume
from ganlab.run import FIXED_LATENTS, Run, StepStats, untouched
from ganlab.rundir import (
    MetricsLog,
    json_text,
    run_info,
    start_run_dir,
    write_json_atomic,
)


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
    try:
        device = torch.device(name)
    except RuntimeError:  # not a device name at all
        raise GanlabError(
            f"device {name!r}: not a device. Use auto, cpu, cuda, cuda:N or mps."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanlabError(
            f"device {name!r}: this machine has no CUDA GPU that torch can use. "
            "Use --device cpu (or auto, which takes a GPU when there is one)."
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


def build_component(place: str, component: Component, params: BaseModel, *args: Any) -> Any:
    """Call a component's build function and check what it returned: a plugin bug is one
    error that names the component, its plugin and the plugin's line (`ganlab.blame`)."""
    with blamed_on(component, place, "while building it"):
        built = component.build(params, *args)
    problem = contract_problem(component.kind, built)
    if problem:
        raise broken_contract(describe(component, place), problem, component.build)
    return built


def contract_problem(kind: str, built: Any) -> str | None:
    """What is wrong with what a build function of ``kind`` returned (None: nothing)."""
    wanted = {
        "datasets": ((ImageDataset, TensorImages), "a data set (ganlab.ImageDataset)"),
        "generators": ((nn.Module,), "a torch.nn.Module"),
        "discriminators": ((nn.Module,), "a torch.nn.Module"),
        "losses": ((GanLoss,), "a ganlab.GanLoss"),
    }
    if kind in wanted and not isinstance(built, wanted[kind][0]):
        return f"returned {type(built).__name__} from its build function, not {wanted[kind][1]}"
    if kind == "generators" and not hasattr(built, "latent_shape"):
        return "has no `latent_shape` attribute; the runner needs it to draw latent vectors"
    if kind == "metrics" and not callable(built):
        return f"returned {type(built).__name__} from its build function, not a callable"
    if kind in ("callbacks", "loggers") and not has_hooks(built):
        return (
            f"returned {type(built).__name__} from its build function, which implements no "
            "ganlab hook (methods decorated with @ganlab.hookimpl): it would do nothing"
        )
    return None


def has_hooks(obj: Any) -> bool:
    """Whether ``obj`` has a method marked with ``@ganlab.hookimpl``."""
    marker = f"{PROJECT}_impl"
    return obj is not None and any(
        hasattr(getattr(obj, name, None), marker) for name in dir(obj) if name.startswith("ganlab_")
    )


@dataclass(frozen=True)
class Built:
    """A built component of a list section (callbacks, metrics, loggers)."""

    place: str  #: where the recipe names it: "callbacks.0"
    component: Component
    obj: Any

    @property
    def name(self) -> str:
        """The name it is registered under for a run: ``callbacks.0:console``."""
        return f"{self.place}:{self.component.name}"


def build_listed(resolved: Resolved, section: str) -> list[Built]:
    """Build every component of a list section (loggers, callbacks, metrics)."""
    return [
        Built(f"{section}.{i}", component, build_component(f"{section}.{i}", component, params))
        for i, (component, params) in enumerate(resolved.listed(section))
    ]


def score(run: Run, metrics: list[Built]) -> dict[str, float]:
    """Every metric's results for ``run`` as it is now, merged into one mapping.

    A metric may draw random numbers (say, to build a network): the RNG states are put back
    afterwards, so training goes on as it would have without evaluations.
    """
    results: dict[str, float] = {}
    saved = rng_state()
    try:
        for metric in metrics:
            with blamed_on(metric.component, metric.place, f"at step {run.step}"):
                values = metric.obj(run)
            results.update(metric_values(metric, values))
    finally:
        set_rng_state(saved)
    return results


def metric_values(metric: Built, values: Any) -> dict[str, float]:
    """A metric's results as numbers; anything else is the metric's bug."""
    try:
        if isinstance(values, Mapping) and all(isinstance(k, str) for k in values):
            return {key: float(value) for key, value in values.items()}
    except (TypeError, ValueError, RuntimeError):
        pass
    code = metric.obj if inspect.isfunction(metric.obj) else type(metric.obj).__call__
    raise broken_contract(
        describe(metric.component, metric.place),
        f"returned {values!r:.80} instead of a mapping of result names to numbers",
        code,
    )


def build_models(
    resolved: Resolved, image_shape: tuple[int, int, int], device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """The recipe's generator and discriminator, on ``device``, checked on a test batch."""
    g_component, g_params = resolved.get("generator")
    generator = build_component("generator", g_component, g_params, image_shape)
    d_component, d_params = resolved.get("discriminator")
    discriminator = build_component("discriminator", d_component, d_params, image_shape)
    layout = memory_format(resolved.recipe.train)
    generator = generator.to(device, memory_format=layout)
    discriminator = discriminator.to(device, memory_format=layout)
    check_shapes(resolved, generator, discriminator, image_shape, device)
    return generator, discriminator


def check_shapes(
    resolved: Resolved,
    generator: nn.Module,
    discriminator: nn.Module,
    image_shape: tuple[int, int, int],
    device: torch.device,
) -> None:
    """One forward pass of G and D on two latent vectors, before training: a generator
    whose images do not have the data set's shape, or a discriminator that does not give one
    score per image, is found when the run is built, not in its first step.

    In eval mode, without gradients, with its own random numbers and every buffer put back:
    the models and the training RNG stream are exactly as they were.
    """
    g_component, d_component = resolved.get("generator")[0], resolved.get("discriminator")[0]
    with untouched(generator, train=False), untouched(discriminator, train=False):
        with blamed_on(g_component, "generator", "on a test batch of 2"), torch.no_grad():
            shape = tuple(generator.latent_shape)
            latents = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0))
            fake = generator(latents.to(device))
        if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != (2, *image_shape):
            made = tuple(fake.shape[1:]) if isinstance(fake, torch.Tensor) else type(fake)
            raise broken_contract(
                describe(g_component, "generator"),
                f"makes images of shape {made}, but the data set's images are {image_shape} "
                "(channels, height, width)",
                type(generator).forward,
            )
        with blamed_on(d_component, "discriminator", "on a test batch of 2"), torch.no_grad():
            scores = discriminator(fake)
        if not isinstance(scores, torch.Tensor) or scores.numel() != 2:
            count = scores.numel() if isinstance(scores, torch.Tensor) else type(scores)
            raise broken_contract(
                describe(d_component, "discriminator"),
                f"gives {count} scores for a batch of 2 images; it must give one per image",
                type(discriminator).forward,
            )


def generator_average(generator: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of G's weights and batch-norm statistics."""
    return AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def memory_format(train: TrainSpec) -> torch.memory_format:
    """channels_last (NHWC) runs convolutions faster on current CPUs and GPUs."""
    return torch.channels_last if train.channels_last else torch.contiguous_format


#: The autocast dtype of each ``train.precision`` that uses one.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

#: errno values that mean "no room left to write".
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """CPU runs are always repeatable; on CUDA, `deterministic` trades speed for it."""
    if deterministic:
        # cuBLAS needs this before its first use to pick reproducible kernels.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic


def train(
    resolved: Resolved,
    plugins: Plugins,
    out: Path,
    recipe_path: Path | None = None,
    resume: Path | None = None,
    on_start: Callable[[Run], None] | None = None,
) -> Run:
    """Run a resolved recipe to the end and return the finished `Run`.

    With ``resume`` (a run folder), continue that run in place from its newest checkpoint.
    ``on_start`` is called (on rank 0) once the run folder exists, before the first hook.
    """
    recipe = resolved.recipe
    group = join(recipe.device)
    try:
        check_supported(recipe.train.precision, group)
        device = pick_device(recipe.device)
        if group.distributed and device.type == "cuda":
            device = torch.device("cuda", group.local_rank)
        resumption = open_resume(resume, recipe, str(device)) if resume is not None else None
        seed_everything(recipe.seed)
        set_determinism(recipe.train.deterministic, device)

        # Build and check everything before a file is written: a mistake leaves nothing
        # behind, and a refused resume leaves the run folder as it was.
        run = build_run(resolved, device, group)
        if resumption is not None:
            resumption.restore(run)
        elif group.distributed:
            # The same models everywhere, then different latent vectors in each process.
            torch.manual_seed(rank_seed(recipe.seed, group.rank))
        # With several processes, rank 0 alone watches, logs and evaluates the run. Building
        # them may draw random numbers (a metric's network): training must not notice.
        saved = rng_state()
        observers: list[Built] = []
        metrics: list[Built] = []
        if group.is_main:
            # Pluggy calls the last registered first: loggers go in first, so that at every
            # event the callbacks run before the loggers that record what they produced.
            observers = build_listed(resolved, "loggers") + build_listed(resolved, "callbacks")
            metrics = build_listed(resolved, "metrics")
        set_rng_state(saved)

        # Registering checks the hook names of callbacks and loggers: still before any write.
        with registered(plugins, observers):
            if resumption is not None:
                run.dir, run.info = resumption.run_dir, resumption.info
                if group.is_main:
                    resumption.write(resolved)
            else:
                if group.is_main:
                    run.info = run_info(recipe.seed, str(device), recipe_path)
                    run.info["processes"] = group.world
                    files = {"recipe.yaml": resolved.to_yaml(), "run.json": json_text(run.info)}
                    run.dir = start_run_dir(out, recipe.name, recipe.seed, files)
                run.dir = from_main(run.dir if group.is_main else None, group)
            if group.is_main:
                run.hook = plugins.pm.hook
                if on_start is not None:
                    on_start(run)
            _Loop(run, plugins, resolved, observers, metrics).train()
    finally:
        leave(group)
    return run


@contextlib.contextmanager
def registered(plugins: Plugins, observers: list[Built]) -> Iterator[None]:
    """Callbacks and loggers registered with the plugin manager for one run."""
    try:
        for observer in observers:
            plugins.register_for_run(observer.obj, observer.name)
        yield
    finally:
        for observer in observers:
            if plugins.pm.is_registered(observer.obj):
                plugins.pm.unregister(observer.obj)


def build_run(resolved: Resolved, device: torch.device, group: Group | None = None) -> Run:
    """The recipe's data, models, loss and optimizers, assembled into a `Run` at step 0.

    The run has no folder yet (``run.dir`` is the current folder) and its hooks go nowhere.
    """
    recipe, group = resolved.recipe, group or Group()
    data_component, data_params = resolved.get("data")
    dataset = build_component("data", data_component, data_params)
    if len(dataset) == 0:
        raise GanlabError(f"data set {recipe.data.name!r} has no images.")
    image_shape = tuple(dataset.image_shape)
    batch = recipe.train.batch_size * recipe.train.d_steps
    check_memory(
        2 * batch * math.prod(image_shape) * 4,
        device,
        f"One step ({batch} real images of {'x'.join(map(str, image_shape))} and as many fakes, "
        "float32)",
        "Use a smaller train.batch_size or a smaller image size (the data set's image_size).",
    )
    if recipe.train.data_cache and isinstance(dataset, CacheableImages):
        with blamed_on(data_component, "data", "while decoding its images"):
            dataset = cached(dataset, workers=recipe.train.workers)
    generator, discriminator = build_models(resolved, image_shape, device)
    loss = build_component("loss", *resolved.get("loss"))
    batches = Batches(
        dataset,
        # One step's batch holds the real images of all its D updates.
        batch,
        recipe.seed,
        device,
        recipe.train.workers,
        layout=memory_format(recipe.train),
        rank=group.rank,
        world=group.world,
    )
    if len(batches) == 0:
        raise GanlabError(
            f"{len(dataset)} images are fewer than one batch for each of {group.world} "
            "processes: use a smaller train.batch_size or fewer processes."
        )
    run = Run(
        recipe=recipe,
        dir=Path(),
        device=device,
        generator=generator,
        discriminator=discriminator,
        opt_g=make_optimizer(recipe.optimizers.generator, generator.parameters()),
        opt_d=make_optimizer(recipe.optimizers.discriminator, discriminator.parameters()),
        loss=loss,
        dataset=dataset,
        batches=batches,
        fixed_latents=torch.empty(0),
        total_steps=total_steps(recipe.train, len(batches)),
        hook=_NoHooks(),
        group=group,
    )
    run.fixed_latents = run.sample_latents(FIXED_LATENTS, recipe.seed)
    if recipe.train.ema is not None:
        run.generator_ema = generator_average(generator, recipe.train.ema)
    if recipe.train.precision == "fp16":
        # One scaler per network: each loss overflows at its own scale.
        run.scalers = {n: torch.amp.GradScaler(device.type) for n in ("generator", "discriminator")}
    return run


class _NoHooks:
    """The hook relay of processes other than rank 0: every event goes nowhere."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda **kwargs: None


class _Loop:
    """One run's loop, with the bookkeeping (logging, evaluation, run.json) around the step."""

    def __init__(
        self,
        run: Run,
        plugins: Plugins,
        resolved: Resolved,
        observers: list[Built],
        metrics: list[Built],
    ) -> None:
        self.run = run
        self.hook = run.hook
        self.plugins = plugins
        self.resolved = resolved
        self.observers = observers
        self.metrics = metrics
        # Rank 0 alone writes the log; the other processes write to nowhere.
        self.log = MetricsLog(run.dir / "metrics.jsonl" if run.group.is_main else Path(os.devnull))
        self.last_checkpoint = run.step  # a resumed run starts from one
        self.pending: list[StepStats] = []
        self.images_seen = 0
        # A resumed run's wall time and images add to those of its earlier segments.
        self.earlier_wall = float(run.info.get("wall_seconds") or 0.0)
        self.earlier_images = int(run.info.get("images_seen") or 0)
        self.signal: int | None = None  # set by SIGINT/SIGTERM, acted on after the step
        self.previous_handlers: dict[int, Any] = {}
        self.layout = memory_format(run.recipe.train)
        # Compiled forward passes for the step; run.generator/discriminator stay the plain
        # modules, whose weights the compiled ones share (checkpoints and sampling use them).
        compiled = run.recipe.train.compile
        self.generator = torch.compile(run.generator) if compiled else run.generator
        self.discriminator = torch.compile(run.discriminator) if compiled else run.discriminator
        dtype = AUTOCAST_DTYPES.get(run.recipe.train.precision)
        self.autocast = (
            torch.autocast(run.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        )

    def train(self) -> None:
        run, train = self.run, self.run.recipe.train
        started = time.perf_counter()
        try:
            self.catch_signals()
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
                    if train.checkpoint_every and run.step % train.checkpoint_every == 0:
                        self.checkpoint()
                    self.agree_on_stopping()
                    if self.signal is not None:
                        self.stop_on_signal()
                    if run.step >= run.total_steps or run.should_stop:
                        break
                if run.step == (run.epoch + 1) * run.steps_per_epoch:
                    self.hook.ganlab_epoch_end(run=run, epoch=run.epoch)
                    run.epoch += 1
            self.flush()
            if self.metrics and not (train.eval_every and run.step % train.eval_every == 0):
                self.evaluate()
            last = self.checkpoint()
            if run.group.is_main:
                run.log_file("checkpoint", publish_final(last), kind="model")
            self.hook.ganlab_run_end(run=run)
            self.finish("completed", started)  # after run_end: plugins may add to run.info
        except BaseException as exc:
            with contextlib.suppress(OSError):  # best effort: the disk may be what failed
                self.flush(check=False)
                interrupted = isinstance(exc, (KeyboardInterrupt, RunInterrupted))
                run.info["error"] = f"{type(exc).__name__}: {exc}"
                self.finish("interrupted" if interrupted else "failed", started)
            try:
                self.hook.ganlab_run_error(run=run, error=exc)
            except Exception as hook_exc:  # must not hide the error that stopped the run
                click.echo(f"ganlab: while stopping: {self.explain(hook_exc)}", err=True)
            explained = self.explain(exc)
            if explained is not None:
                raise explained from exc
            raise
        finally:
            with contextlib.suppress(OSError):
                self.log.close()
            self.restore_signals()

    def explain(self, exc: BaseException) -> GanlabError | None:
        """The error to report for ``exc``, which stopped the run (None: ``exc`` itself):
        a file-system error or lack of memory says what to do; an error in a plugin's code
        names the plugin. Either way the message says what became of the run folder."""
        run = self.run
        if not isinstance(exc, Exception) or type(exc) is RunInterrupted:
            return None
        kept = step_checkpoints(run.dir)
        folder = f"{run.dir} is marked failed; " + (
            f"its newest checkpoint is {kept[-1].name}." if kept else "it has no checkpoint yet."
        )
        if isinstance(exc, GanlabError):
            return type(exc)(f"{exc} {folder}") if isinstance(exc, PluginError) else None
        if isinstance(exc, OSError):
            fix = "Free disk space" if exc.errno in DISK_FULL else "Fix the cause"
            where = f"{exc.filename}: " if exc.filename else ""
            return GanlabError(
                f"{where}{exc.strerror or exc}. The run stopped after step {run.step}; "
                f"{folder} {fix}, then continue with: ganlab run --resume {run.dir}"
            )
        if is_out_of_memory(exc):
            return out_of_memory(f"after step {run.step} (so {folder[:-1]})", exc)
        culprit = self.culprit(exc)
        if culprit is None:
            return None
        suspect, action = culprit
        error = failure(suspect.subject, action, exc, suspect.home)
        return type(error)(f"{error} {folder}")

    def culprit(self, exc: BaseException) -> tuple[Suspect, str] | None:
        """Whose code ``exc`` came from (`ganlab.blame.find_culprit`), and when."""
        run = self.run
        by_object: dict[int, Suspect] = {}

        def suspect(component: Component, place: str, *objects: Any) -> str:
            found = Suspect(describe(component, place), code_home(component.build))
            by_object.update({id(obj): found for obj in objects if obj is not None})
            return found.subject

        suspect(self.resolved.get("data")[0], "data", run.dataset, run.batches)
        suspect(self.resolved.get("loss")[0], "loss", run.loss)
        models = {
            "generator": (run.generator, self.generator, run.generator_ema),
            "discriminator": (run.discriminator, self.discriminator),
        }
        for place, objects in models.items():
            suspect(self.resolved.get(place)[0], place, *objects)
        names = {o.name: suspect(o.component, o.place, o.obj) for o in self.observers}
        by_code = {
            impl.function.__code__: Suspect(
                names.get(impl.plugin_name, f"plugin {impl.plugin_name!r}"),
                code_home(impl.function),
                hook,
            )
            for hook, impl in self.plugins.hook_implementations()
        }
        found = find_culprit(exc, by_object, by_code)
        if found is None:
            return None
        culprit, hook = found
        return culprit, f"in {hook} at step {run.step}" if hook else f"at step {run.step + 1}"

    # --- signals: finish the step, write a checkpoint, say how to resume ---------------------

    def catch_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous_handlers[signum] = signal.signal(signum, self.on_signal)

    def on_signal(self, signum: int, frame: Any) -> None:
        self.signal = signum
        # A second Ctrl-C stops at once, the usual way.
        signal.signal(signum, self.previous_handlers.get(signum, signal.SIG_DFL))

    def restore_signals(self) -> None:
        for signum, handler in self.previous_handlers.items():
            signal.signal(signum, handler)

    def agree_on_stopping(self) -> None:
        """With several processes, all stop at the same step when any one has to."""
        run = self.run
        if run.group.distributed:
            flags = torch.tensor([float(run.should_stop), float(self.signal or 0)])
            flags = max_over_ranks(flags, run.group)
            run.should_stop, self.signal = bool(flags[0]), int(flags[1]) or None

    def stop_on_signal(self) -> None:
        run = self.run
        path = self.checkpoint()
        name = signal.Signals(self.signal).name
        raise RunInterrupted(
            f"{name}: stopped after step {run.step} of {run.total_steps}; checkpoint "
            f"{path}. Continue with: ganlab run --resume {run.dir}",
            self.signal,
        )

    def step(self, real: torch.Tensor, index: int) -> StepStats:
        """``train.d_steps`` D updates (one, as in the tutorial) and one G update."""
        run = self.run
        generator, discriminator, loss = self.generator, self.discriminator, run.loss
        real = real.contiguous(memory_format=self.layout)

        # (1) D, on each real batch of the step and detached fakes.
        real_batches = real.split(run.recipe.train.batch_size)
        for i, real_batch in enumerate(real_batches):
            with self.autocast:
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
            self.update(loss_d, run.opt_d, run.discriminator, "discriminator")

        # (2) G: the last fakes through the updated D.
        with self.autocast:
            fake_scores_after = discriminator(fake).reshape(-1).float()
            loss_g = loss.generator_loss(fake_scores_after)
            self.check_scalar(loss_g, "generator_loss")
        self.update(loss_g, run.opt_g, run.generator, "generator")
        if run.generator_ema is not None:
            run.generator_ema.update_parameters(run.generator)

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
            describe(self.resolved.get("loss")[0], "loss"),
            f"returned {got} from {method}; a loss must be one number, a 0-dim tensor (for "
            "example the .mean() of per-image losses)",
            getattr(type(self.run.loss), method),
        )

    def update(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, model: nn.Module, net: str
    ) -> None:
        """Backward and one optimizer step; in fp16 through that network's gradient scaler;
        with several processes, on the gradients averaged over them."""
        optimizer.zero_grad(set_to_none=True)
        scaler = self.run.scalers.get(net)
        if scaler is None:
            loss.backward()
            average_gradients(model, self.run.group)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)  # skipped when the scaled gradients overflowed
            scaler.update()

    def flush(self, check: bool = True) -> None:
        """Move buffered step statistics to the host in one transfer and log them.

        With ``check``, a loss that is NaN or infinite stops the run (checking here costs no
        extra wait for the device, and every checkpoint is written after a flush, so none
        holds a diverged model).
        """
        if not self.pending:
            return
        stacked = torch.stack([s.values() for s in self.pending])
        values = mean_over_ranks(stacked, self.run.group).cpu().tolist()
        bad = None
        for stats, row_values in zip(self.pending, values, strict=True):
            row = {"step": stats.step, "epoch": stats.epoch}
            row.update(zip(StepStats.NAMES, row_values, strict=True))
            self.emit(row)
            if bad is None and not all(math.isfinite(v) for v in row_values):
                bad = row
        self.pending.clear()
        self.log.flush()
        if check and bad is not None:
            name = next(k for k in StepStats.NAMES if not math.isfinite(bad[k]))
            kept = step_checkpoints(self.run.dir)
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
            save_checkpoint(path, training_state(run, rng_by_rank))
            prune_checkpoints(run.dir, run.recipe.train.keep_checkpoints)
        return path

    def finish(self, status: str, started: float) -> None:
        run = self.run
        if not run.group.is_main:
            return
        # Every segment of a resumed run counts: its wall time and images are added up.
        wall = self.earlier_wall + time.perf_counter() - started
        images = self.earlier_images + self.images_seen * run.group.world  # every process's
        run.info.update(
            status=status,
            steps=run.step,
            epochs_completed=run.epoch,
            images_seen=images,
            wall_seconds=round(wall, 3),
            images_per_second=round(images / wall, 1) if wall > 0 else None,
            ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        write_json_atomic(run.dir / "run.json", run.info)
