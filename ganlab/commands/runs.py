"""`ganlab runs`: one line per run folder, newest first.

Each line says what a run is and how far it got, from the files of its folder alone
(``run.json``, ``recipe.yaml``, the end of ``metrics.jsonl``, and whether a live process
holds its ``run.lock``: a run that says ``running`` while none does was ``killed``):
status, recipe, seed, steps done of the total, the best value of the metric that ranks it,
and wall time. Plugins add columns of their own through `ganlab_run_columns` (the built-in
wandb logger: the run's W&B id and whether it was synced). A folder whose files cannot be
read is listed as such, with what is wrong below the table: one broken run never hides the
others.
"""

from __future__ import annotations

import copy
import json
import math
import textwrap
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ganlab.commands.common import plugin_option, strict_json, user_command
from ganlab.commands.texttable import WIDTH, format_blocks
from ganlab.errors import GanlabError
from ganlab.files.folders import find_run_dirs, is_run_dir, read_recipe, read_run_info
from ganlab.files.metrics_log import read_metrics
from ganlab.files.runlock import run_status
from ganlab.plugin_manager.blame import broken_contract, code_home, failure
from ganlab.plugin_manager.loading import Plugins, load_plugins
from ganlab.plugin_manager.logkeys import EVAL, Better, key_infos
from ganlab.recipe.diff import is_number

MISSING = "-"
#: The status of a run whose run.json cannot be read.
UNREADABLE = "unreadable"
#: How much of the end of metrics.jsonl is read for a running run's current step.
TAIL_BYTES = 64 * 1024
#: The values a plugin's column may hold (JSON scalars); the text table shows them as text.
CELL_TYPES = (str, int, float, bool, type(None))


# --- one run folder -------------------------------------------------------------------------


def started_at(info: Mapping[str, Any], folder: Path) -> float:
    """When the run started, as a POSIX time: run.json's ``started``, else the time its
    run.json (or the folder) was last changed. What the list is sorted by, newest first."""
    started = info.get("started")
    if isinstance(started, str):
        try:
            return datetime.strptime(started, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except ValueError:
            pass
    for path in (folder / "run.json", folder):
        try:
            return path.stat().st_mtime
        except OSError:
            continue
    return 0.0


def last_step(path: Path) -> int | None:
    """The step of the last complete row of ``metrics.jsonl``, read from the file's end (a
    run still going may be long): how far a run got before its run.json says so."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(size - TAIL_BYTES, 0))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a row cut off mid-write, or the partial first line of the tail
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            return int(row["step"])
    return None


def total_steps(recipe: Mapping[str, Any]) -> int | None:
    """The step the run ends at, when its recipe says (``train.steps``); a run set by
    epochs alone has a total that depends on its data set's size, not known here."""
    train = recipe.get("train")
    steps = train.get("steps") if isinstance(train, Mapping) else None
    return steps if is_number(steps) and isinstance(steps, int) else None


def ranking_key(info: Mapping[str, Any], recipe: Mapping[str, Any]) -> tuple[str, Better] | None:
    """The metric that ranks a run and which way is better, when the ``best`` callback has
    not recorded its best in run.json (yet: a run still going): the callback's metric and
    mode from the recipe; else the first evaluation key with a direction (run.json's
    ``keys``)."""
    for callback in recipe.get("callbacks") or ():
        if isinstance(callback, Mapping) and callback.get("name") == "best":
            params = callback.get("params") or {}
            metric = params.get("metric")
            if isinstance(metric, str):
                return metric, "higher" if params.get("mode") == "max" else "lower"
    for key, described in key_infos(dict(info)).items():
        if described.namespace == EVAL and described.better is not None:
            return key, described.better
    return None


def ranking(
    folder: Path, info: Mapping[str, Any], recipe: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The run's best value of the metric that ranks it: the ``best`` callback's record in
    run.json, else the best logged value of `ranking_key`'s metric. None for a run that
    has no such metric."""
    best = info.get("best")
    if isinstance(best, Mapping) and isinstance(best.get("metric"), str):
        return {"metric": best["metric"], "value": best.get("value"), "step": best.get("step")}
    found = ranking_key(info, recipe)
    if found is None:
        return None
    key, better = found
    values = [
        (row["step"], row[key])
        for row in read_metrics(folder / "metrics.jsonl")
        if is_number(row.get(key)) and math.isfinite(row[key])
    ]
    if not values:
        return {"metric": key, "value": None, "step": None}
    step, value = (max if better == "higher" else min)(values, key=lambda sv: sv[1])
    return {"metric": key, "value": value, "step": step}


def plugin_columns(plugins: Plugins, folder: Path, info: Mapping[str, Any]) -> dict[str, Any]:
    """Every plugin's `ganlab_run_columns` for one run folder, merged in load order (a later
    plugin's column of the same name wins: a ``-p`` plugin can replace a built-in's).

    Each plugin is called on its own, so that a failure names its plugin and line, as
    every plugin failure does (`ganlab.plugin_manager.blame`); a return that is not a mapping of
    names to
    text (or JSON scalars) is the plugin's error too.
    """
    columns: dict[str, Any] = {}
    for impl in plugins.pm.hook.ganlab_run_columns.get_hookimpls():
        given = {"folder": folder, "info": copy.deepcopy(dict(info))}
        subject = f"plugin {impl.plugin_name!r}"
        try:
            added = impl.function(**{name: given[name] for name in impl.argnames})
        except GanlabError:
            raise
        except Exception as exc:
            home = code_home(impl.function)
            raise failure(subject, f"in ganlab_run_columns for {folder}", exc, home) from exc
        if added is None:
            continue
        if not isinstance(added, Mapping) or not all(
            isinstance(k, str) and isinstance(v, CELL_TYPES) for k, v in added.items()
        ):
            raise broken_contract(
                subject,
                f"returned {type(added).__name__} {str(added)[:60]!r} from ganlab_run_columns; "
                "it must return a dict of column name -> text, or None",
                impl.function,
            )
        columns.update(added)
    return columns


def describe(folder: Path, root: Path, plugins: Plugins) -> tuple[dict[str, Any], float]:
    """One run folder as `ganlab runs` lists it (the JSON of ``--json``), and when it
    started (`started_at`). What cannot be read is said in ``problems``; the rest of the
    line is filled from what can."""
    relative = folder.relative_to(root) if folder != root else Path(folder.name)
    line: dict[str, Any] = {"run": relative.as_posix(), "path": str(folder), "problems": []}
    try:
        info = read_run_info(folder / "run.json")
    except GanlabError as exc:
        info = None
        line["problems"].append(str(exc))
    try:
        recipe = read_recipe(folder / "recipe.yaml")
    except GanlabError as exc:
        recipe = {}
        line["problems"].append(str(exc))
    known = info or {}
    name = recipe.get("name") or Path(str(known.get("recipe_source") or "")).stem or None
    done = known.get("steps") if isinstance(known.get("steps"), int) else None
    if done is None or known.get("status") == "running":
        # Still going (a resumed run's run.json may hold the steps of its last segment),
        # or killed before it could say: as far as its rows have got.
        logged = last_step(folder / "metrics.jsonl")
        done = max(done or 0, logged) if logged is not None else done
    best = None
    if info is not None:
        try:
            best = ranking(folder, info, recipe)
        except GanlabError as exc:
            line["problems"].append(str(exc))
    line.update(
        {
            "status": UNREADABLE if info is None else run_status(folder, info),
            "recipe": name,
            "seed": known.get("seed", recipe.get("seed")),
            "steps": done,
            "total_steps": total_steps(recipe),
            "best": best,
            "wall_seconds": known.get("wall_seconds"),
            "started": known.get("started"),
            # A plugin reads run.json; for a folder without a readable one it adds nothing.
            "columns": plugin_columns(plugins, folder, info) if info is not None else {},
        }
    )
    return line, started_at(known, folder)


# --- the table ------------------------------------------------------------------------------


def duration(seconds: Any) -> str:
    """``26s``, ``3m52s``, ``1h02m``, ``2d03h``: a wall time in at most six characters."""
    if not is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
        return MISSING
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def steps_text(line: Mapping[str, Any]) -> str:
    done, total = line["steps"], line["total_steps"]
    if done is None:
        return MISSING if total is None else f"0/{total}"
    return str(done) if total is None else f"{done}/{total}"


def best_text(best: Mapping[str, Any] | None) -> str:
    if best is None:
        return MISSING
    value = best["value"]
    if not is_number(value):
        return f"{best['metric']} {MISSING}"
    at = f" @{best['step']}" if isinstance(best.get("step"), int) else ""
    return f"{best['metric']} {value:.4g}{at}"


def cell(value: Any) -> str:
    """A plugin's column value as text."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, ".4g") if isinstance(value, float) else str(value)


def fill(text: str, indent: str = "") -> str:
    """``text`` wrapped to `WIDTH` columns, its later lines indented two more spaces."""
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def render(lines: list[dict[str, Any]], root: Path) -> str:
    """The text of `ganlab runs`: the table (wrapped into blocks of at most 120 columns,
    each starting with the run), a count, and what could not be read."""
    extra: dict[str, None] = {}
    for line in lines:
        extra.update(dict.fromkeys(line["columns"]))
    header = ["run", "status", "recipe", "seed", "steps", "best", "wall", *extra]
    rows = [
        [
            line["run"],
            str(line["status"] or MISSING),
            str(line["recipe"] or MISSING),
            cell(line["seed"]),
            steps_text(line),
            best_text(line["best"]),
            duration(line["wall_seconds"]),
            *(cell(line["columns"].get(name)) for name in extra),
        ]
        for line in lines
    ]
    text = [format_blocks(header, rows, right={3, 4, 6})]
    count = f"{len(lines)} run{'s' * (len(lines) != 1)}"
    text += [
        "",
        fill(f"{count} under {root}, newest first; best: the ranking metric's best value @step"),
    ]
    problems = [problem for line in lines for problem in line["problems"]]
    if problems:
        text += ["", "Could not be read (each message names its file):"]
        text += [fill(problem, indent="  ") for problem in problems]
    return "\n".join(text)


def run_folders(root: Path) -> list[Path]:
    """The run folders under ``root`` (or ``root`` itself), as ``ganlab compare`` finds
    them; none for a folder that holds no run yet."""
    if not root.exists():
        raise GanlabError(
            f"{root}: no such folder. Give the folder that `ganlab run` writes run folders "
            "into (its --out, by default runs)."
        )
    if not root.is_dir():
        raise GanlabError(f"{root}: not a folder. Give a folder with run folders under it.")
    if not is_run_dir(root) and not any(p.is_file() for p in root.rglob("run.json")):
        return []
    return find_run_dirs([root])


# --- the command ----------------------------------------------------------------------------


@click.command("runs")
@click.argument("folder", default="runs", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list instead.")
@plugin_option
@user_command
def runs(folder: str, as_json: bool, plugin_specs: tuple[str, ...]) -> None:
    """List the runs under FOLDER (default: runs), newest first: one line per run folder,
    at any depth, with its status, recipe, seed, steps done of the total, the best value
    of its ranking metric (the `best` callback's, else its first evaluation), wall time,
    and the columns plugins add (ganlab_run_columns).

    \b
    Examples:
      ganlab runs
      ganlab runs runs/quickstart --json
    """
    root = Path(folder)
    plugins = load_plugins(plugin_specs)
    described = [describe(path, root, plugins) for path in run_folders(root)]
    described.sort(key=lambda pair: (-pair[1], pair[0]["run"]))
    found = [line for line, _ in described]
    if as_json:
        click.echo(strict_json(found, indent=2))
    elif not found:
        click.echo(f"No run folders under {root} yet (a run folder holds run.json).")
    else:
        click.echo(render(found, root))
