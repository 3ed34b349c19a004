"""A run's life: it starts (a new run folder, or a stopped run resumed in place), trains
(`ganlab.engine.loop`), and ends: completed, interrupted by a signal, or failed, with ``run.json``
saying which and, on failure, one message that says what went wrong and what to do.

`train_recipe` is what ``ganlab run`` calls.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click
import torch

from ganlab.contracts import Metric, Observer
from ganlab.engine.assemble import Built, NoHooks, assemble_run, build_listed
from ganlab.engine.device import pick_device, set_determinism
from ganlab.engine.distributed import Group, check_supported, from_main, join, leave, rank_seed
from ganlab.engine.loop import Loop, Step
from ganlab.engine.restore import Resumption, open_resume
from ganlab.engine.run import Hooks, Run
from ganlab.engine.seeding import rng_untouched, seed_everything
from ganlab.errors import GanlabError, PluginError, RunInterrupted
from ganlab.files.atomic import json_text, write_atomic, write_json_atomic
from ganlab.files.checkpoint import publish_final, step_checkpoints
from ganlab.files.fingerprint import fingerprint_of, record
from ganlab.files.folders import NewRunDir, new_run_dir, run_info
from ganlab.files.runlock import RunLock
from ganlab.plugin_manager.blame import (
    Suspect,
    code_home,
    describe,
    failure,
    find_culprit,
    is_out_of_memory,
    out_of_memory,
)
from ganlab.plugin_manager.loading import Plugins
from ganlab.plugin_manager.registry import Component
from ganlab.recipe.models import Resolved

#: errno values that mean "no room left to write".
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def train_recipe(
    resolved: Resolved,
    plugins: Plugins,
    out: Path,
    recipe_path: Path | None = None,
    resume: Path | None = None,
    on_start: Callable[[Run], None] | None = None,
    accept_changed_data: bool = False,
) -> Run:
    """Run a resolved recipe to the end and return the finished `Run`.

    With ``resume`` (a run folder), continue that run in place from its newest checkpoint
    (on data other than the run's own only with ``accept_changed_data``).
    ``on_start`` is called (on rank 0) once the run folder exists, before the first hook.
    Nothing is written before everything is built and checked: a mistake leaves no run
    folder behind, and a refused resume leaves the run folder as it was. One process at a
    time trains a run folder: it holds the folder's `RunLock` from before it reads the
    folder until it ends. SIGINT or SIGTERM before the first step stops the command at once
    (`interrupted_at_once`), with the same guarantees.
    """
    recipe = resolved.recipe
    # What a signal leaves behind, as the message says it; it changes as the run goes on.
    left = "stopped before the run's first step; " + (
        f"{resume} is as it was; continue with: ganlab run --resume {resume}"
        if resume is not None
        else "no run folder was kept"
    )
    with interrupted_at_once(lambda: left), contextlib.ExitStack() as held:
        group = join(recipe.device)
        held.callback(leave, group)
        # Everything that guards the time before the first step, undone once it has come.
        with contextlib.ExitStack() as before_start:
            if resume is not None:
                lock = run_lock(resume, group)  # before anything in the folder is read
                if lock is not None:
                    held.callback(lock.release)
                    before_start.enter_context(kept_as_found(resume, lock))
            check_supported(recipe.train.precision, group)
            device = pick_device(recipe.device)
            if group.distributed and device.type == "cuda":
                device = torch.device("cuda", group.local_rank)
            resumption = (
                open_resume(resume, recipe, str(device), accept_changed_data)
                if resume is not None
                else None
            )
            seed_everything(recipe.seed)
            set_determinism(recipe.train.deterministic, device)
            observers, metrics = watchers(resolved, group)
            hook: Hooks = plugins.pm.hook if group.is_main else NoHooks()
            # Registering checks the hook names of callbacks and loggers: still before any write.
            held.enter_context(registered(plugins, observers))
            if resumption is not None:
                run = resumed(resolved, device, group, hook, resumption, observers)
            else:
                made, folder, info = new_folder(resolved, plugins, device, group, out, recipe_path)
                if made is not None:
                    held.callback(made.lock.release)
                    before_start.enter_context(made.removed_on_error())
                run = started(resolved, device, group, hook, folder, info, observers)
            if group.is_main and on_start is not None:
                on_start(run)
            life = Life(run, plugins, resolved, observers, metrics)
        left = (
            f"stopped at once (a second signal); {run.dir} is marked interrupted; continue "
            f"with: ganlab run --resume {run.dir}"
        )
        life.live()
    return run


def watchers(resolved: Resolved, group: Group) -> tuple[list[Built[Observer]], list[Built[Metric]]]:
    """The run's callbacks and loggers, and its metrics. With several processes, rank 0
    alone watches, logs and evaluates the run (the others get none). Building them may draw
    random numbers (a metric's network): training must not notice."""
    if not group.is_main:
        return [], []
    with rng_untouched():
        # Pluggy calls the last registered first: loggers go in first, so that at every
        # event the callbacks run before the loggers that record what they saw.
        observers = build_listed(resolved, "loggers") + build_listed(resolved, "callbacks")
        return observers, build_listed(resolved, "metrics")


def run_lock(run_dir: Path, group: Group) -> RunLock | None:
    """``run_dir``'s lock, taken by rank 0 (None on the other ranks); when another process
    holds it, every process stops with the error that names that process."""
    lock, refused = None, None
    if group.is_main:
        try:
            lock = RunLock.take(run_dir)
        except GanlabError as exc:
            refused = exc
    refused = from_main(refused, group)
    if refused is not None:
        raise refused
    return lock


@contextlib.contextmanager
def kept_as_found(run_dir: Path, lock: RunLock) -> Iterator[None]:
    """A resume that stops before its first step leaves ``run.json`` as it found it (the
    resume may have rewritten it already), except that one that said ``running`` (a killed
    session's, or this one's) then says ``interrupted`` or ``failed``, with the error; the
    lock file gets back the record it held. A refused resume that had written nothing
    leaves the folder byte for byte."""
    path = run_dir / "run.json"
    try:
        found = path.read_bytes()
    except OSError:
        found = None  # open_resume says what is wrong with it
    try:
        yield
    except BaseException as exc:
        if found is not None:
            with contextlib.suppress(OSError, ValueError):  # best effort on the way out
                info = json.loads(found)
                changed = path.read_bytes() != found
                stopped = isinstance(exc, KeyboardInterrupt)  # Signalled among them
                if isinstance(info, dict) and info.get("status") == "running":
                    if changed or stopped:
                        why = f"{exc}" if stopped else f"{type(exc).__name__}: {exc}"
                        info.update(
                            status="interrupted" if stopped else "failed",
                            error=f"{why} (before the resumed run's first step)",
                        )
                        write_json_atomic(path, info)
                elif changed:
                    write_atomic(path, found)
        with contextlib.suppress(OSError):
            lock.put_back()
        raise


def new_folder(
    resolved: Resolved,
    plugins: Plugins,
    device: torch.device,
    group: Group,
    out: Path,
    recipe_path: Path | None,
) -> tuple[NewRunDir | None, Path, dict[str, Any]]:
    """A new run's folder, locked, holding the resolved recipe and run.json: rank 0 makes
    it (and returns it as a `NewRunDir`, with run.json's contents); every rank gets its
    path."""
    recipe = resolved.recipe
    info: dict[str, Any] = {}
    made = None
    if group.is_main:
        info = run_info(recipe.seed, str(device), recipe_path, plugins.sources)
        info["processes"] = group.world
        files = {"recipe.yaml": resolved.to_yaml(), "run.json": json_text(info)}
        made = new_run_dir(out, recipe.name, recipe.seed, files)
    folder = from_main(made.path if made else None, group)
    return made, folder, info


def started(
    resolved: Resolved,
    device: torch.device,
    group: Group,
    hook: Hooks,
    folder: Path,
    info: dict[str, Any],
    observers: list[Built[Observer]],
) -> Run:
    """A new run assembled in its new folder (`new_folder`)."""
    run = assemble_run(resolved, device, folder, hook, group, info, observers)
    if group.is_main:
        # The data set's classes and fingerprint are known once it is built: into run.json
        # now, where loggers find them (W&B's config) and a resume compares them.
        if run.labels is not None:
            run.info["classes"] = list(run.labels.names)
        fingerprint = fingerprint_of(run.dataset)
        if fingerprint is not None:
            record(folder, fingerprint, run.info)
        write_json_atomic(folder / "run.json", run.info)
    if group.distributed:
        # The same models everywhere, then different latent vectors in each process.
        torch.manual_seed(rank_seed(resolved.recipe.seed, group.rank))
    return run


def resumed(
    resolved: Resolved,
    device: torch.device,
    group: Group,
    hook: Hooks,
    resumption: Resumption,
    observers: list[Built[Observer]],
) -> Run:
    """A stopped run assembled in its own folder and put back where its checkpoint left it
    (with its callbacks' and loggers' states); its files are rewritten only once everything
    has been checked."""
    run = assemble_run(
        resolved, device, resumption.run_dir, hook, group, resumption.info, observers
    )
    resumption.restore(run)
    if group.is_main:
        resumption.write(resolved)
    return run


@contextlib.contextmanager
def registered(plugins: Plugins, observers: list[Built[Observer]]) -> Iterator[None]:
    """Callbacks and loggers registered with the plugin manager for one run."""
    try:
        for observer in observers:
            plugins.register_for_run(observer.obj, observer.name)
        yield
    finally:
        for observer in observers:
            if plugins.pm.is_registered(observer.obj):
                plugins.pm.unregister(observer.obj)


#: The signals that stop a run: Ctrl-C and a scheduler's (or `kill`'s) polite request.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any] | int | None


class Signalled(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised at once where the main thread is (`interrupted_at_once`).

    A KeyboardInterrupt (what Ctrl-C raises without ganlab's handlers), so that no
    ``except Exception`` on the way (in a plugin's code, say) swallows it, every clean-up
    (``finally``, ``except BaseException``) runs, and a plugin's ``ganlab_run_error`` sees
    what it always saw for a signal that stops a run at once.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def handling_signals(
    handler: Callable[[int, FrameType | None], Any],
) -> Iterator[dict[int, Handler]]:
    """`STOP_SIGNALS` go to ``handler`` in the block (and to the handlers before it after);
    yields the handlers it replaced. Handlers can only be set from the main thread: in
    another thread the block runs with the signals as they are."""
    previous: dict[int, Handler] = {}
    if threading.current_thread() is not threading.main_thread():
        yield previous
        return
    owner = os.getpid()

    def dispatch(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            # A forked child (a data loader worker) inherits the handler: there the signal
            # does what it does without one, so that such a worker ends as it always did.
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        handler(signum, frame)

    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, dispatch)
        yield previous
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


@contextlib.contextmanager
def interrupted_at_once(left: Callable[[], str]) -> Iterator[None]:
    """Until a run trains (plugins loading, the data set decoding, the models building),
    SIGINT and SIGTERM stop the command at once: `Signalled` is raised wherever the main
    thread is, so that what guards each phase runs on the way out (a new run folder is
    removed, a resumed run's run.json is not left ``running``, temporary files go), then it
    becomes one `RunInterrupted` (exit 128 + signal: 130, 143) whose message is the signal's
    name and ``left()``: when it stopped and what it left behind. `signals_stop` takes over
    while the run trains.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Signalled(signum)

    try:
        with handling_signals(on_signal):
            yield
    except Signalled as exc:
        raise RunInterrupted(f"{exc}: {left()}.", exc.signum) from None


@contextlib.contextmanager
def signals_stop(stop: Callable[[int], None]) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM call ``stop(signum)`` instead of stopping at once, so the
    run can finish its step and write a checkpoint; a second one goes to the handler that
    was there before (`interrupted_at_once`'s, which stops at once)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop(signum)
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))

    with handling_signals(on_signal) as previous:
        yield


class Life:
    """One run from its first step to its end, and the run.json and message that end it."""

    def __init__(
        self,
        run: Run,
        plugins: Plugins,
        resolved: Resolved,
        observers: list[Built[Observer]],
        metrics: list[Built[Metric]],
    ) -> None:
        self.run = run
        self.plugins = plugins
        self.resolved = resolved
        self.observers = observers
        self.step = Step(run, describe(resolved.get("loss")[0], "loss"))
        self.loop = Loop(run, self.step, metrics)
        # A resumed run's wall time and images add to those of its earlier segments.
        self.earlier_wall = float(run.info.get("wall_seconds") or 0.0)
        self.earlier_images = int(run.info.get("images_seen") or 0)

    def live(self) -> None:
        run = self.run
        started = time.perf_counter()
        try:
            with signals_stop(self.loop.request_stop):
                last = self.loop.run_to_end()
                if run.group.is_main:
                    run.log_file("checkpoint", publish_final(last), kind="model")
                run.hook.ganlab_run_end(run=run)
                self.finish("completed", started)  # after run_end: plugins may add to info
        except BaseException as exc:
            with contextlib.suppress(OSError):  # best effort: the disk may be what failed
                self.loop.flush(check=False)
                interrupted = isinstance(exc, (KeyboardInterrupt, RunInterrupted))
                run.info["error"] = f"{type(exc).__name__}: {exc}"
                self.finish("interrupted" if interrupted else "failed", started)
            try:
                run.hook.ganlab_run_error(run=run, error=exc)
            except Exception as hook_exc:  # must not hide the error that stopped the run
                click.echo(f"ganlab: while stopping: {self.explain(hook_exc)}", err=True)
            explained = self.explain(exc)
            if explained is not None:
                raise explained from exc
            raise
        finally:
            with contextlib.suppress(OSError):
                self.loop.log.close()

    def finish(self, status: str, started: float) -> None:
        """Write run.json as the run ends (rank 0)."""
        run = self.run
        if not run.group.is_main:
            return
        # Every segment of a resumed run counts: its wall time and images are added up.
        wall = self.earlier_wall + time.perf_counter() - started
        images = self.earlier_images + run.images_seen
        run.info.update(
            status=status,
            keys={key: info.as_json() for key, info in run.keys.items()},
            steps=run.step,
            epochs_completed=run.epoch,
            images_seen=images,
            wall_seconds=round(wall, 3),
            images_per_second=round(images / wall, 1) if wall > 0 else None,
            ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        write_json_atomic(run.dir / "run.json", run.info)

    # --- what to tell the user when the run stops on an error ---------------------------------

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
        """Whose code ``exc`` came from (`ganlab.plugin_manager.blame.find_culprit`), and when."""
        run = self.run
        by_object: dict[int, Suspect] = {}

        def suspect(component: Component, place: str, *objects: object) -> str:
            found = Suspect(describe(component, place), code_home(component.build))
            by_object.update({id(obj): found for obj in objects if obj is not None})
            return found.subject

        suspect(self.resolved.get("data")[0], "data", run.dataset, run.batches)
        suspect(self.resolved.get("loss")[0], "loss", run.loss)
        models = {
            "generator": (run.generator, self.step.generator, run.generator_ema),
            "discriminator": (run.discriminator, self.step.discriminator),
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
