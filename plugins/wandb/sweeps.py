"""W&B sweeps over a recipe: ``ganlab sweep``.

``ganlab sweep RECIPE --param KEY=V1,V2 ... [--seeds 0,1,2]`` writes a W&B sweep file whose
``command`` runs ``ganlab run`` with each point's values; ``wandb sweep FILE`` creates the sweep
and ``wandb agent SWEEP_ID`` runs its points. With ``--local`` the grid runs here instead, one
ordinary run folder per point, without W&B. The whole loop is in docs/sweeps.md.

How a W&B agent runs a point (wandb's ``wandb/wandb_agent.py``, ``Agent._command_run``, and
``wandb/sdk/launch/sweeps/utils.py``, ``create_sweep_command_args``; wandb 0.31): it takes the
sweep file's ``command`` list and replaces each item that is exactly one macro by a list of
arguments: ``${env}`` by ``/usr/bin/env`` (nothing on Windows), ``${interpreter}`` by
``python``, ``${program}`` by the file's ``program``, ``${args_no_hyphens}`` by one
``KEY=VALUE`` per parameter, where VALUE is Python's ``str()`` of the value (``0.0002``,
``True``, ``['a', 'b']``). It runs the result without a shell. The file written here runs
``python -m ganlab run RECIPE ... ${args_no_hyphens}``: the bare ``KEY=VALUE`` overrides that
``ganlab run`` takes after the recipe, the recipe standing as the sweep's ``program``.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import click
import yaml

import ganlab

#: A parameter name W&B accepts (``propertyNames`` of ``parameters`` in the sweep config
#: schema, wandb/sweeps ``src/sweeps/config/schema.json``); a dotted recipe key is one.
WANDB_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
#: How `ganlab run` says where a run went; --local reads it to list the run folders.
RUN_FOLDER = "Run folder: "
#: The first line of every sweep file written here: a file that starts with it is one that
#: `ganlab sweep` may replace; any other file is never overwritten.
HEADER = "# A W&B sweep written by `ganlab sweep`"
#: The namespace W&B files a metric's results under (``eval/swd``).
EVAL = "eval"
#: Search methods of a W&B sweep; --local runs the grid only.
Method = Literal["grid", "random", "bayes"]


@dataclass(frozen=True)
class Param:
    """One swept recipe key and its values, in the order given."""

    key: str
    values: tuple[Any, ...]


# --- reading --param and --seeds -------------------------------------------------------------


def parse_param(text: str, option: str = "--param") -> Param:
    """``loss.name=bce,hinge`` as a `Param`. The values are one YAML flow list, read as
    ``--set`` reads a value (``1e-4`` a float, ``true`` a bool); a value that is itself a list
    keeps its brackets (``betas=[0.5, 0.999],[0.0, 0.9]``)."""
    key, has_value, listed = text.partition("=")
    key = key.strip()
    if not has_value or not WANDB_PARAMETER.fullmatch(key):
        raise ganlab.GanlabError(
            f"{option} {text!r}: expected KEY=VALUE,VALUE,... with a dotted recipe key, "
            "e.g. --param optimizers.generator.lr=1e-4,2e-4."
        )
    try:
        values = ganlab.load_yaml(f"[{listed}]")
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or exc
        raise ganlab.GanlabError(
            f"{option} {text!r}: the values are not a comma-separated YAML list ({problem}). "
            "Quote a value that holds a comma or a bracket: --param 'KEY=\"a,b\",c'."
        ) from None
    if not values:
        raise ganlab.GanlabError(f"{option} {text!r}: give at least one value after '='.")
    seen: list[Any] = []
    for value in values:
        if any(same(value, other) for other in seen):
            raise ganlab.GanlabError(
                f"{option} {text!r}: {value!r} is given twice; give each value once."
            )
        seen.append(value)
    return Param(key, tuple(values))


def collect_params(texts: Sequence[str], seeds: str | None) -> list[Param]:
    """Every --param, with --seeds first as the parameter ``seed``: every configuration
    then gets its first seed before any gets a second, so a sweep stopped early still
    covers each configuration once."""
    params = [parse_param(text) for text in texts]
    if seeds is not None:
        params.insert(0, parse_param(f"seed={seeds}", option="--seeds"))
    keys = [param.key for param in params]
    for key in dict.fromkeys(k for k in keys if keys.count(k) > 1):
        both = "--seeds and --param seed=..." if key == "seed" else f"--param {key}=..."
        raise ganlab.GanlabError(f"{key} is swept twice ({both}); give its values once.")
    if not params:
        raise ganlab.GanlabError(
            "nothing to sweep: give --param KEY=VALUE,VALUE,... (repeatable) or --seeds 0,1,2."
        )
    return params


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, at every depth (``True`` is not ``1``, ``1`` not ``1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# --- a point as the agent passes it --------------------------------------------------------


def agent_argument(key: str, value: Any) -> str:
    """One parameter as W&B's agent writes it for ``${args_no_hyphens}``:
    ``f"{param}={value}"`` (wandb/sdk/launch/sweeps/utils.py, create_sweep_command_args)."""
    return f"{key}={value}"


def check_agent_round_trip(params: Iterable[Param]) -> None:
    """Refuse a value that ganlab would read back as something else once the agent has
    written it with ``str()``: ``None`` arrives as the text ``None``, the text ``'1e5'`` as
    the number 1e5, ``nan`` as a string."""
    for param in params:
        for value in param.values:
            text = str(value)
            back = ganlab.load_yaml(text) if text.strip() else ""
            if not same(back, value):
                raise ganlab.GanlabError(
                    f"--param {param.key}: the value {_kind(value)} cannot pass through a W&B "
                    f"sweep agent: the agent writes it as {text!r}, which ganlab reads back "
                    f"as {_kind(back)}. Give a value that reads back as itself."
                )


def _kind(value: Any) -> str:
    """A value with what it is, for a message: ``the text '1e5'``, ``the number 1e5``."""
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return repr(value)


def grid(params: Sequence[Param]) -> list[dict[str, Any]]:
    """Every combination of the values, the first parameter varying slowest."""
    keys = [param.key for param in params]
    return [
        dict(zip(keys, combination, strict=True))
        for combination in itertools.product(*(param.values for param in params))
    ]


def describe(point: Mapping[str, Any]) -> str:
    """``loss.name=hinge seed=1``: a point as its run's arguments."""
    return " ".join(agent_argument(key, value) for key, value in point.items())


# --- checked against the recipe --------------------------------------------------------------


def resolve_points(
    recipe: str,
    sets: Sequence[str],
    points: Sequence[Mapping[str, Any]],
    plugin_specs: Sequence[str],
) -> list[ganlab.Resolved]:
    """Resolve the recipe at every point, as ``ganlab run`` will (the fixed --set values,
    then the point's arguments as the agent writes them); one message per distinct problem.

    Every combination is checked, not each value alone: a value may be valid only beside
    another (``loss.name=wgan_gp`` with ``loss.params.gp_weight=10``).
    """
    resolved = []
    problems: dict[str, list[Mapping[str, Any]]] = {}
    for point in points:
        arguments = [agent_argument(key, value) for key, value in point.items()]
        try:
            resolved.append(
                ganlab.prepare_recipe(recipe, (*sets, *arguments), tuple(plugin_specs))[0]
            )
        except ganlab.GanlabError as exc:
            problems.setdefault(str(exc), []).append(point)
    if problems:
        lines = []
        for message, failed in problems.items():
            if len(failed) == len(points):
                lines.append(message)  # a typo in a key: the same message as with --set
            else:
                lines.append(f"with {which(failed, points)}: {message}")
        raise ganlab.GanlabError("\n".join(lines))
    return resolved


def which(some: Sequence[Mapping[str, Any]], points: Sequence[Mapping[str, Any]]) -> str:
    """Some of the points, as briefly as they can be named: the values they share when
    exactly these points have them (``loss.name=hing``), else the first of them."""
    shared = {
        key: value
        for key, value in some[0].items()
        if all(same(point[key], value) for point in some)
    }
    chosen = [p for p in points if all(same(p[k], v) for k, v in shared.items())]
    if shared and len(chosen) == len(some):
        return describe(shared)
    more = f" (and {len(some) - 1} more points)" if len(some) > 1 else ""
    return f"{describe(some[0])}{more}"


def metric_keys(resolved: ganlab.Resolved) -> list[tuple[tuple[str, ...] | None, str | None]]:
    """(declared result keys or None, better) of each metric of a resolved recipe."""
    return [
        (component.result_keys(params), component.better)
        for component, params in resolved.listed("metrics")
    ]


def sweep_metric(
    resolved: Sequence[ganlab.Resolved], metric: str | None, required: bool
) -> dict[str, str]:
    """The sweep file's ``metric``: the W&B name of a result of the recipe's metrics and the
    goal its metric declares (the built-ins: lower is better). Without ``metric``, the first
    key of the first metric that has a direction; {} when the recipe has none (and the
    method does not need one)."""
    first = metric_keys(resolved[0])
    if metric is None:
        for keys, better in first:
            exact = [k for k in keys or () if not any(c in k for c in "*?[")]
            if exact and better:
                return {"name": f"{EVAL}/{exact[0]}", "goal": goal(better)}
        if required:
            raise ganlab.GanlabError(
                "--method bayes needs a metric to optimise, and the recipe has no metric that "
                "says which way is better. Add one to its `metrics:` (e.g. {name: swd}), or "
                "use --method grid or random."
            )
        return {}
    namespace, slash, key = metric.rpartition("/")
    if slash and namespace != EVAL:
        raise ganlab.GanlabError(
            f"--metric {metric!r}: give a result of the recipe's metrics, as {EVAL}/KEY "
            f"(or KEY), e.g. --metric {EVAL}/swd."
        )
    better_of: list[str | None] = []
    for i, one in enumerate(resolved):
        found = [b for keys, b in metric_keys(one) if keys is None or _produces(keys, key)]
        if not found:
            produced = [k for keys, _ in metric_keys(one) for k in keys or ()]
            where = "" if i == 0 else " at some points"
            listed = ", ".join(produced) if produced else "nothing (the recipe has no metrics)"
            raise ganlab.GanlabError(
                f"--metric {metric!r}: no metric of the recipe produces the key {key!r}"
                f"{where}. Its metrics produce: {listed}."
            )
        better_of.append(found[0])
    if better_of[0] is None:
        raise ganlab.GanlabError(
            f"--metric {metric!r}: its metric says neither lower nor higher is better, so a "
            "sweep cannot optimise it. Choose another result."
        )
    return {"name": f"{EVAL}/{key}", "goal": goal(better_of[0])}


def _produces(keys: Sequence[str], key: str) -> bool:
    return key in keys or any(fnmatchcase(key, pattern) for pattern in keys)


def goal(better: str) -> str:
    return "maximize" if better == "higher" else "minimize"


def wandb_logger(resolved: Sequence[ganlab.Resolved], recipe: str) -> dict[str, Any]:
    """The params of the recipe's wandb logger (at the first point), which the sweep's
    runs report through; refused when a point has none: its runs would train, and the sweep
    would never hear of them."""
    loggers = [[spec for spec in one.recipe.loggers if spec.name == "wandb"] for one in resolved]
    if not all(loggers):
        raise ganlab.GanlabError(
            f"{recipe}: the recipe has no wandb logger, so a sweep's runs would report "
            "nothing to W&B. Add `- name: wandb` to its `loggers:`, or run the grid here "
            "with --local."
        )
    return dict(loggers[0][0].params)


# --- the sweep file --------------------------------------------------------------------------


def sweep_config(
    *,
    recipe: str,
    name: str,
    params: Sequence[Param],
    method: Method,
    metric: Mapping[str, str],
    command: Sequence[str],
    logger: Mapping[str, Any],
) -> dict[str, Any]:
    """The sweep file's contents, in W&B's sweep configuration keys."""
    config: dict[str, Any] = {
        "name": name,
        "description": f"ganlab sweep of {recipe} over {', '.join(p.key for p in params)}",
        "project": logger.get("project") or "ganlab",
    }
    if logger.get("entity"):
        config["entity"] = logger["entity"]
    # `program` is the recipe: the agent needs one (it reads the run command's `program`),
    # and the runs then show their recipe as their program in W&B.
    config["program"] = recipe
    config["method"] = method
    if metric:
        config["metric"] = dict(metric)
    config["parameters"] = {
        p.key: {"values": list(p.values)} if len(p.values) > 1 else {"value": p.values[0]}
        for p in params
    }
    config["command"] = list(command)
    return config


def agent_command(
    out: str, sets: Sequence[str], plugin_specs: Sequence[str], wandb_mode: str
) -> list[str]:
    """The sweep file's ``command``: ``python -m ganlab run`` on the recipe (``${program}``)
    with the point's values as bare ``KEY=VALUE`` overrides (``${args_no_hyphens}``).

    ``${interpreter}`` rather than a ``ganlab`` script: the agent puts ``python`` there,
    which is ganlab's Python when the agent runs in ganlab's environment, as it must.
    ``--wandb online``: the logger's default is offline, and a sweep sees only what its runs
    send to W&B.
    """
    command = ["${env}", "${interpreter}", "-m", "ganlab", "run", "${program}", "--out", out]
    for spec in plugin_specs:
        command += ["-p", spec]
    for text in sets:
        command += ["--set", text]
    return [*command, "--wandb", wandb_mode, "${args_no_hyphens}"]


def write_sweep_file(path: Path, config: Mapping[str, Any], recipe: str) -> None:
    """Write the sweep file, replacing only a file this command wrote before."""
    if path.is_dir() or (path.exists() and not _written_here(path)):
        raise ganlab.GanlabError(
            f"{path} exists and was not written by `ganlab sweep`; it is left as it is. "
            "Give another file with --file."
        )
    header = (
        f"{HEADER} for {recipe} (docs/sweeps.md).\n"
        f"# Create the sweep with `wandb sweep {path}`, then run the `wandb agent ...` command it\n"
        "# prints, from this folder and in ganlab's Python environment.\n"
    )
    # The values in flow style ([bce, hinge]); the command one item a line, as it runs.
    rest = {key: value for key, value in config.items() if key != "command"}
    body = yaml.safe_dump(rest, sort_keys=False, default_flow_style=None, width=100)
    command = yaml.safe_dump(
        {"command": list(config["command"])}, sort_keys=False, default_flow_style=False
    )
    text = header + body + command
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)  # whole or not at all


def _written_here(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as file:
            return file.readline().startswith(HEADER)
    except (OSError, UnicodeDecodeError):
        return False


# --- --local: the grid here ------------------------------------------------------------------


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

    def start(self, command: Sequence[str]) -> subprocess.Popen[str] | None:
        """Start one point's ``ganlab run``, unless a signal stopped the sweep (None)."""
        with self.lock:
            if self.received:
                return None
            process = subprocess.Popen(
                list(command),
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
    points: Sequence[Mapping[str, Any]], base: Sequence[str], jobs: int
) -> tuple[list[Outcome], int | None]:
    """Run every point as its own ``ganlab run`` process, ``jobs`` at a time; a point that
    fails does not stop the others. Returns the outcomes of the points that ran, in grid
    order, and the signal that stopped the sweep early, if one did."""
    lock = threading.Lock()
    total = len(points)
    running = Points()

    def one(index: int) -> Outcome | None:
        point = points[index]
        arguments = [agent_argument(key, value) for key, value in point.items()]
        process = running.start([*base, *arguments])
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


def parse_jobs(jobs: int, local: bool) -> int:
    if jobs > 1 and not local:
        raise click.UsageError("--jobs runs points here at once: it goes with --local.")
    return jobs


# --- the command -----------------------------------------------------------------------------


@click.command("sweep")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "--param",
    "param_texts",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="A recipe key and its values, read as YAML like --set values (1e-4 a float, true "
    "a bool; [..] for a list value). Repeatable: the sweep covers every combination.",
)
@click.option(
    "--seeds",
    metavar="S1,S2,...",
    help="Seeds to run each combination with (the parameter `seed`), e.g. 0,1,2.",
)
@ganlab.set_option
@click.option(
    "--method",
    type=click.Choice(["grid", "random", "bayes"]),
    default="grid",
    show_default=True,
    help="How W&B picks the points: every combination, at random, or by Bayesian "
    "optimisation of --metric.",
)
@click.option(
    "--metric",
    metavar="eval/KEY",
    help="The result the sweep optimises, e.g. eval/swd; its goal is its metric's "
    "direction (lower is better for the built-in metrics). Default: the first metric's.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="Folder that receives the run folders, as `ganlab run --out`.",
)
@click.option(
    "--file",
    "sweep_file",
    type=click.Path(dir_okay=False),
    default="sweep.yaml",
    show_default=True,
    help="The sweep file to write (a file written by `ganlab sweep` before is replaced; "
    "any other is left alone).",
)
@click.option(
    "--wandb",
    "wandb_mode",
    type=click.Choice(["online", "offline", "disabled"]),
    help="W&B mode of the runs (ganlab run --wandb). In the sweep file: online unless "
    "given, since a sweep sees only what its runs send. With --local: the recipe's own "
    "unless given.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Run the grid here instead, one ganlab run per point, each a normal run folder "
    "under --out; no sweep file, no W&B sweep.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --local: how many points run at once (separate processes).",
)
@ganlab.plugin_option
@ganlab.user_command
def sweep(
    recipe: str,
    param_texts: tuple[str, ...],
    seeds: str | None,
    overrides: tuple[str, ...],
    method: Method,
    metric: str | None,
    out: str,
    sweep_file: str,
    wandb_mode: str | None,
    local: bool,
    jobs: int,
    plugin_specs: tuple[str, ...],
) -> None:
    """A W&B sweep over RECIPE: write a sweep file for `wandb sweep` and `wandb agent`,
    or run the grid here with --local.

    Every point is checked against the recipe before anything is written or run, exactly
    as `ganlab run` will read it. docs/sweeps.md shows the whole loop.

    \b
    Examples:
      ganlab sweep recipes/quickstart.yaml --param loss.name=bce,hinge \\
          --param optimizers.generator.lr=1e-4,2e-4 --seeds 0,1,2
      wandb sweep sweep.yaml        # then the `wandb agent ...` command it prints
      ganlab sweep recipes/quickstart.yaml --param loss.name=bce,hinge --seeds 0,1 \\
          --local --jobs 2 --out runs/loss-sweep
    """
    jobs = parse_jobs(jobs, local)
    if local and method != "grid":
        raise click.UsageError(
            f"--method {method}: --local runs the whole grid; random and bayes search need "
            "W&B's sweep server (leave out --local)."
        )
    if local and metric is not None:
        raise click.UsageError(
            "--metric is what W&B's sweep server optimises; --local runs every point, and "
            "`ganlab compare` then shows every metric. Leave out --metric or --local."
        )
    given = click.get_current_context().get_parameter_source("sweep_file")
    if local and given is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--file names the sweep file, and --local writes none.")
    params = collect_params(param_texts, seeds)
    check_agent_round_trip(params)
    points = grid(params)
    resolved = resolve_points(recipe, overrides, points, plugin_specs)
    name = resolved[0].recipe.name

    if local:
        base = [sys.executable, "-m", "ganlab", "run", recipe, "--out", out]
        for spec in plugin_specs:
            base += ["-p", spec]
        for text in overrides:
            base += ["--set", text]
        if wandb_mode is not None:
            base += ["--wandb", wandb_mode]
        mixed = had_runs(Path(out))
        click.echo(f"Sweep of {recipe}: {len(points)} points, {jobs} at a time.")
        outcomes, stopped_by = run_local(points, base, jobs)
        report_local(outcomes, len(points), stopped_by, out, mixed)
        return

    chosen = sweep_metric(resolved, metric, required=method == "bayes")
    logger = wandb_logger(resolved, recipe)
    command = agent_command(out, overrides, plugin_specs, wandb_mode or "online")
    config = sweep_config(
        recipe=recipe,
        name=name,
        params=params,
        method=method,
        metric=chosen,
        command=command,
        logger=logger,
    )
    path = Path(sweep_file)
    write_sweep_file(path, config, recipe)
    size = (
        f"{len(points)} points"
        if method == "grid"
        else f"points drawn from {len(points)} combinations until the agents stop"
    )
    click.echo(f"Wrote {path}: a {method} sweep of {recipe} ({size}).")
    click.echo(f"Create the sweep with `wandb sweep {path}`, then run the `wandb agent ...`")
    click.echo("command it prints, from this folder and in ganlab's Python environment.")
    click.echo(f"Each point is a run folder under {out}/{name}/; compare them there with:")
    click.echo(f"  ganlab compare {out}/{name} --over-seeds")


@ganlab.hookimpl
def ganlab_register_commands(cli: click.Group) -> None:
    """``ganlab sweep``."""
    cli.add_command(sweep)
