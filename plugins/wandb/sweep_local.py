"""``ganlab sweep --local``: the grid here, one ``ganlab run`` process per point, a few at a
time, with signals passed on to the points and a report of how each ended.

The points of one local sweep are one unit: each gets the sweep's name as its W&B group and
as a W&B tag (``ganlab run --group NAME --tags NAME``), and in its ``run.json`` under
``sweep`` (`ganlab_run_start`, from ``GANLAB_SWEEP``), which ``ganlab runs`` shows as a
column (`ganlab_run_columns`), W&B or not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click

import ganlab
from ganlab_plugins.wandb.run_options import TAG_RULE, tag_ok
from ganlab_plugins.wandb.sweep_points import agent_argument, describe

#: How `ganlab run` says where a run went; --local reads it to list the run folders.
RUN_FOLDER = "Run folder: "
#: The environment variable that gives each point's ``ganlab run`` its sweep's name.
SWEEP_ENV = "GANLAB_SWEEP"
#: run.json's key for the name of the sweep a run belongs to.
SWEEP_KEY = "sweep"


def sweep_name(given: str | None, recipe_name: str) -> str:
    """The sweep's name: ``given`` (``--name``), else ``<recipe>-<YYYYmmdd-HHMMSS>``; it is
    a W&B tag too, so it follows W&B's rule for tags."""
    name = given if given is not None else f"{recipe_name[:48]}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not tag_ok(name):
        raise ganlab.GanlabError(
            f"--name {name!r}: the sweep's name is a W&B tag of its runs, and {TAG_RULE}."
        )
    return name


@ganlab.hookimpl
def ganlab_run_start(run: ganlab.RunView) -> None:
    """A point of a local sweep records its sweep's name in run.json (written when the
    run ends, as every run's is); a resumed point keeps it."""
    name = os.environ.get(SWEEP_ENV, "").strip()
    if name:
        run.info[SWEEP_KEY] = name


@ganlab.hookimpl
def ganlab_run_columns(info: dict[str, Any]) -> dict[str, str] | None:
    """``ganlab runs``: the sweep a run was a point of, if any."""
    name = info.get(SWEEP_KEY)
    return {"sweep": name} if isinstance(name, str) and name else None


@dataclass(frozen=True)
class Outcome:
    """How one point's run ended: its exit code, and its run folder if it made one."""

    point: Mapping[str, Any]
    code: int
    folder: str | None


class Points:
    """The processes of the points now running, and the signals that stopped the sweep.

    Each point runs in a session (process group) of its own, so that a signal reaches a
    point through the sweep alone, and exactly once: Ctrl-C at a terminal goes to the
    sweep's group, ``kill PID``, ``docker stop`` and a scheduler to the sweep's process.
    The sweep passes each SIGINT, SIGTERM or SIGHUP on to every running point (`stop`):
    at the first, each ``ganlab run`` writes a checkpoint and exits 130 or 143; at a
    second, it stops at once. After a signal no point starts.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # never taken by the main thread but in `stop`
        self.running: list[subprocess.Popen[str]] = []
        self.received: list[int] = []  #: the signals the sweep got, in order

    def start(
        self, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str] | None:
        """Start one point's ``ganlab run`` (with ``env`` added to this process's
        environment), unless a signal stopped the sweep (None)."""
        with self.lock:
            if self.received:
                return None
            process = subprocess.Popen(
                list(command),
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,  # signals come through the sweep only (POSIX)
            )
            self.running.append(process)
            return process

    def ended(self, process: subprocess.Popen[str]) -> None:
        with self.lock:
            self.running.remove(process)

    def stop(self, signum: int) -> None:
        """Record ``signum`` and pass it on to every running point (a signal handler)."""
        with self.lock:
            self.received.append(signum)
            for process in self.running:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)


def relay_point(
    process: subprocess.Popen[str], prefix: str, lock: threading.Lock
) -> tuple[int, str | None]:
    """Pass a point's output on, each line after ``prefix`` (which tells parallel runs
    apart), until it ends; returns its exit code and run folder."""
    folders: list[str] = []

    def relay(stream: Any, err: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if not err and line.startswith(RUN_FOLDER):
                folders.append(line[len(RUN_FOLDER) :])
            with lock:
                click.echo(f"{prefix}{line}", err=err)

    errors = threading.Thread(target=relay, args=(process.stderr, True), daemon=True)
    errors.start()
    relay(process.stdout, False)
    errors.join()
    return process.wait(), (folders[0] if folders else None)


#: The signals a local sweep passes on to its points (SIGHUP: the terminal went away).
FORWARDED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def signals_passed_on(points: Points) -> Iterator[None]:
    """While the sweep runs, SIGINT, SIGTERM and SIGHUP go to `Points.stop` instead of
    ending the sweep: the sweep waits for its points and reports. After a second signal
    (passed on too) the usual handlers are back, so a third ends the sweep at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread
        return
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        points.stop(signum)
        if len(points.received) >= 2:
            for number, handler in previous.items():
                signal.signal(number, handler)

    try:
        for signum in FORWARDED:
            previous[signum] = signal.signal(signum, on_signal)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_local(
    points: Sequence[Mapping[str, Any]], base: Sequence[str], jobs: int, name: str
) -> tuple[list[Outcome], int | None]:
    """Run every point as its own ``ganlab run`` process, ``jobs`` at a time, as the sweep
    ``name`` (its W&B group and tag, and ``sweep`` in its run.json); a point that fails
    does not stop the others. Returns the outcomes of the points that ran, in grid
    order, and the signal that stopped the sweep early, if one did."""
    lock = threading.Lock()
    total = len(points)
    running = Points()

    def one(index: int) -> Outcome | None:
        point = points[index]
        arguments = [agent_argument(key, value) for key, value in point.items()]
        unit = ["--group", name, "--tags", name]  # `ganlab run`'s W&B options (run_options)
        process = running.start([*base, *unit, *arguments], {SWEEP_ENV: name})
        if process is None:  # stopped: nothing new starts
            return None
        label = f"[{index + 1}/{total}]"
        with lock:
            click.secho(f"{label} ganlab run ... {describe(point)}", bold=True)
        try:
            code, folder = relay_point(process, f"{label} " if jobs > 1 else "", lock)
        finally:
            running.ended(process)
        return Outcome(point, code, folder)

    # Separate processes, not threads running the runs: each run has its own plugins,
    # seeds and memory, and a run that crashes cannot take the sweep with it.
    with signals_passed_on(running), ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(one, range(total)))
    ran = [outcome for outcome in outcomes if outcome is not None]
    return ran, (running.received[0] if running.received else None)


def had_runs(out: Path) -> bool:
    """Whether ``out`` already holds a run folder (one with run.json), at any depth."""
    return out.is_dir() and any(out.rglob("run.json"))


def report_local(
    outcomes: Sequence[Outcome], total: int, stopped_by: int | None, out: str, mixed: bool
) -> None:
    """Print how the sweep went and how to compare its runs; raise (non-zero exit) naming
    the points that failed, were stopped or did not start."""
    by_signal = {128 + stopped_by, -stopped_by} if stopped_by is not None else set()
    stopped = [o for o in outcomes if o.code in by_signal]
    failed = [o for o in outcomes if o.code != 0 and o.code not in by_signal]
    finished = len(outcomes) - len(failed) - len(stopped)
    click.echo("")
    click.echo(f"Sweep: {finished} of {total} points finished under {out}.")
    folders = [o.folder for o in outcomes if o.folder]
    if folders:
        # When out held other runs before, name this sweep's runs, so that they alone are
        # compared.
        target = " ".join(folders) if mixed else out
        click.echo(f"Compare them: ganlab compare {target} --over-seeds")
    if not failed and stopped_by is None:
        return
    lines = []
    if failed:
        lines.append(f"{len(failed)} of {total} points failed (each one's message is above):")
        lines += [f"  {describe(o.point)}: {_ending(o)}" for o in failed]
    if stopped_by is not None:
        name = signal.Signals(stopped_by).name
        lines.append(
            f"Stopped by {name}: {len(stopped)} points stopped, "
            f"{total - len(outcomes)} did not start."
        )
        lines += [
            f"  {describe(o.point)}: {_ending(o)}"
            + (f"; continue it with: ganlab run --resume {o.folder}" if o.folder else "")
            for o in stopped
        ]
    lines.append(
        "Run a point again with `ganlab run RECIPE KEY=VALUE ...`, or continue a stopped "
        "run with `ganlab run --resume RUN_FOLDER`."
    )
    error = ganlab.GanlabError("\n".join(lines))
    # A stopped sweep exits as a stopped run does (130, 143); else as its first failed point
    # (2: a mistake in the input, 1: a plugin's bug).
    if stopped_by is not None:
        error.exit_code = 128 + stopped_by
    else:
        error.exit_code = failed[0].code if failed[0].code > 0 else 1
    raise error


def _ending(outcome: Outcome) -> str:
    """``exit 2 (runs/x/...)``, or ``killed by SIGKILL`` for a process a signal ended."""
    if outcome.code < 0:
        try:
            ending = f"killed by {signal.Signals(-outcome.code).name}"
        except ValueError:
            ending = f"killed by signal {-outcome.code}"
    else:
        ending = f"exit {outcome.code}"
    return f"{ending} ({outcome.folder})" if outcome.folder else ending
