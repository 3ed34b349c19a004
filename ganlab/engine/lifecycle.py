"""A run's start: a new run folder, or a stopped run resumed in place, built and checked
before anything is written, then handed to `ganlab.engine.outcome.Life`, which trains it
and ends it (completed, interrupted by a signal, or failed, with ``run.json`` saying which).

`train_recipe` is what ``ganlab run`` and `ganlab.train` call.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from ganlab.contracts import Metric, Observer
from ganlab.data.fingerprint import fingerprint_of, record
from ganlab.engine.assemble import NoHooks, assemble_run
from ganlab.engine.components import Built, build_listed
from ganlab.engine.device import pick_device, set_determinism
from ganlab.engine.distributed import Group, check_supported, from_main, join, leave, rank_seed
from ganlab.engine.outcome import Life
from ganlab.engine.resume import Resumption, open_resume
from ganlab.engine.run import Hooks, Run
from ganlab.engine.seeding import rng_untouched, seed_everything
from ganlab.engine.signals import interrupted_at_once
from ganlab.errors import GanlabError
from ganlab.files.atomic import json_text, write_atomic, write_json_atomic
from ganlab.files.folders import NewRunDir, new_run_dir, run_info
from ganlab.files.runlock import RunLock
from ganlab.plugin_manager.loading import Plugins
from ganlab.recipe.models import Resolved


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
                stopped = isinstance(exc, KeyboardInterrupt)  # a `Signalled` among them
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
