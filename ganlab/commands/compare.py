"""`ganlab compare`: a table of runs side by side, and a plot of everything they logged.

The table shows what each run was (recipe, seed, status), how it went (steps, wall time,
images per second, final and best metrics) and only the recipe keys that differ between the
runs, so two runs of one recipe with one ``--set`` change show that one key and nothing else;
it is wrapped to fit 120 columns. The plot has one panel per logged quantity (each metric,
each plugin's value, each loss) against the training step; with ``--over-seeds`` the seeds
of one configuration become one mean line with a band of ± one standard deviation.

Everything here but the click command is a small pure function over the files of a run
folder (``recipe.yaml``, ``run.json``, ``metrics.jsonl``; see ``ganlab.files.folders``); the
plot is drawn by ``ganlab.commands.compare_plot``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ganlab.commands.common import strict_json, user_command
from ganlab.commands.compare_plot import (
    LOSSES,
    Panel,
    Series,
    check_plot_path,
    figure_of,
    save_plot,
)
from ganlab.commands.texttable import WIDTH, format_blocks
from ganlab.errors import GanlabError
from ganlab.files.folders import RunFolder, find_run_dirs, read_run_folder
from ganlab.plugin_manager.logkeys import EVAL, TRAIN, Better, KeyInfo, key_infos
from ganlab.recipe.diff import Absent, differing_keys, flatten, is_number
from ganlab.runview import StepStats

#: The columns of a training row; every other numeric column of metrics.jsonl is a metric.
TRAINING_KEYS = ("step", "epoch", *StepStats.NAMES)
#: Recipe keys that already have a column of their own (seed; name is the recipe column).
SHOWN_KEYS = frozenset({"seed", "name"})
MISSING = "-"


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one run: its last value and its lowest value (and that value's step)."""

    final: float | None
    best: float | None
    best_step: int | None


# --- what differs ---------------------------------------------------------------------------


def metric_names(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The metric columns of metrics.jsonl rows: numeric columns that are not training
    columns, in the order they first appear."""
    names: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key not in TRAINING_KEYS and is_number(value):
                names[key] = None
    return list(names)


def summarize(
    rows: Sequence[Mapping[str, Any]], name: str, better: Better = "lower"
) -> MetricSummary:
    """The final value of column ``name`` (its last row) and its best value: the lowest, the
    highest when higher is better, none for a key with no direction (``run.json``'s
    ``keys``). Values that are not finite (a diverged run's nan) are never best. Rows
    without the column are skipped.
    """
    values = [(row["step"], row[name]) for row in rows if is_number(row.get(name))]
    if not values:
        return MetricSummary(final=None, best=None, best_step=None)
    finite = [(step, v) for step, v in values if math.isfinite(v)]
    pick = {"lower": min, "higher": max}.get(better) if better else None
    best_step, best = pick(finite, key=lambda sv: sv[1]) if finite and pick else (None, None)
    return MetricSummary(final=values[-1][1], best=best, best_step=best_step)


def better_of(run: RunFolder, name: str) -> Better:
    """Which way column ``name`` of a run is better, as its run.json says (`key_info_of`)."""
    return key_info_of([run], name).better


def key_info_of(runs: Sequence[RunFolder], name: str) -> KeyInfo:
    """What column ``name`` is, as the first run whose run.json describes it says; for runs
    from before ganlab recorded it, the training columns are values with no direction and
    every other column an evaluation where lower is better (all metrics then were)."""
    for run in runs:
        info = key_infos(run.info).get(name)
        if info is not None:
            return info
    return KeyInfo(TRAIN, None) if name in TRAINING_KEYS else KeyInfo(EVAL, "lower")


# --- the table ----------------------------------------------------------------------------


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Short names for runs: the folder names, or as many trailing path parts as it takes
    to tell them apart (``quickstart/20250101-120000-s0``)."""
    parts = [p.resolve().parts for p in paths]
    longest = max((len(p) for p in parts), default=1)
    for depth in range(1, longest + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """For each dotted key, its shortest dotted suffix that no other key in ``keys`` ends
    with (``optimizers.generator.lr`` -> ``lr``, or ``generator.lr`` beside
    ``discriminator.lr``)."""
    short = {}
    for key in keys:
        parts = key.split(".")
        for depth in range(1, len(parts) + 1):
            suffix = ".".join(parts[-depth:])
            clash = any(other != key and f".{other}".endswith(f".{suffix}") for other in keys)
            if not clash:
                break
        short[key] = suffix
    return short


def recipe_value(value: Any) -> str:
    """A recipe value as the table shows it: YAML's spelling for null and booleans."""
    if value is Absent:
        return MISSING
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def number(value: Any, spec: str = ".4g") -> str:
    """A measured number for the table; ``-`` when there is none."""
    if value is None:
        return MISSING
    return format(value, spec) if isinstance(value, float) else str(value)


def compare_runs(runs: Sequence[RunFolder]) -> dict[str, Any]:
    """The comparison as data: the differing keys, and per run what the table shows."""
    flats = [flatten(run.recipe) for run in runs]
    differ = differing_keys(flats)
    metrics = metric_names(row for run in runs for row in run.rows)
    labels = run_labels([run.path for run in runs])
    table = []
    for run, flat, label in zip(runs, flats, labels, strict=True):
        training = [row for row in run.rows if "loss_g" in row or "loss_d" in row]
        steps = run.info.get("steps")
        if steps is None and training:
            steps = training[-1]["step"]
        table.append(
            {
                "run": label,
                "path": str(run.path),
                "recipe": run.recipe.get("name")
                or Path(str(run.info.get("recipe_source") or "?")).stem,
                "status": run.info.get("status"),
                "seed": run.info.get("seed", run.recipe.get("seed")),
                "steps": steps,
                "wall_seconds": run.info.get("wall_seconds"),
                "images_per_second": run.info.get("images_per_second"),
                "final": {name: summarize(training, name).final for name in LOSSES},
                "metrics": {
                    name: vars(summarize(run.rows, name, better_of(run, name))) for name in metrics
                },
                "keys": {key: flat.get(key, Absent) for key in differ},
            }
        )
    return {"differing_keys": differ, "metrics": metrics, "runs": table}


def spread(values: Iterable[Any]) -> dict[str, Any]:
    """Mean and sample standard deviation of the finite numbers among ``values``, and their
    count (a diverged run's nan, or a run without the metric, is left out)."""
    finite = [v for v in values if is_number(v) and math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return {"mean": mean, "std": None, "n": 1}
    variance = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return {"mean": mean, "std": math.sqrt(variance), "n": len(finite)}


def over_seeds_of(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison with runs that differ only in their seed merged into one row each:
    the seeds, and every metric's final and best value as mean and spread over them."""
    keys = [key for key in comparison["differing_keys"] if key != "seed"]
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for run in comparison["runs"]:
        groups.setdefault(tuple(recipe_value(run["keys"][k]) for k in keys), []).append(run)
    rows = []
    for index, (values, runs) in enumerate(groups.items(), start=1):
        rows.append(
            {
                "config": index,  # the table's and the plot legend's number
                "recipe": runs[0]["recipe"],
                "runs": [run["path"] for run in runs],
                "seeds": [run["seed"] for run in runs],
                "steps": sorted({run["steps"] for run in runs}, key=str),
                "metrics": {
                    name: {
                        which: spread(run["metrics"][name][which] for run in runs)
                        for which in ("final", "best")
                    }
                    for name in comparison["metrics"]
                },
                "keys": dict(zip(keys, values, strict=True)),
            }
        )
    return {"differing_keys": keys, "metrics": comparison["metrics"], "groups": rows}


def mean_and_spread(summary: Mapping[str, Any]) -> str:
    if summary["mean"] is None:
        return MISSING
    if summary["std"] is None:
        return number(summary["mean"])
    return f"{summary['mean']:.4g} ± {summary['std']:.2g}"


def fill(text: str) -> str:
    """``text`` wrapped to the table's width, its later lines indented."""
    return textwrap.fill(
        text, WIDTH, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
    )


def differ_line(title: str, keys: Sequence[str]) -> str:
    """``title: key, key, ...`` wrapped to the table's width."""
    return fill(f"{title}: {', '.join(keys) or 'none'}")


def render_over_seeds(grouped: Mapping[str, Any]) -> str:
    """The text of `ganlab compare --over-seeds`: one row per configuration (numbered as in
    the plot's legend), metrics as mean ± sd, then its values of the differing keys."""
    columns = [key for key in grouped["differing_keys"] if key not in SHOWN_KEYS]
    short = short_keys(columns)
    header = ["config", "recipe", "seeds", "steps"]
    for name in grouped["metrics"]:
        header += [f"{name} final", f"{name} best"]
    right = {0, *range(3, len(header))}
    header += [short[key] for key in columns]
    rows = []
    for group in grouped["groups"]:
        row = [str(group["config"]), str(group["recipe"]), ",".join(map(str, group["seeds"]))]
        row.append(",".join(map(number, group["steps"])))
        for name in grouped["metrics"]:
            row += [mean_and_spread(group["metrics"][name][w]) for w in ("final", "best")]
        row += [group["keys"][key] for key in columns]
        rows.append(row)
    lines = [differ_line("Recipe keys that differ (besides seed)", grouped["differing_keys"]), ""]
    lines.append(format_blocks(header, rows, right))
    lines += [
        "",
        "mean ± sample standard deviation over the seeds; best = the lowest value a run",
        "logged (the highest where higher is better; - where neither is)",
    ]
    return "\n".join(lines)


def render_text(comparison: Mapping[str, Any]) -> str:
    """The text `ganlab compare` prints: the differing keys, then one table row per run,
    wrapped into blocks that fit `WIDTH` columns, each block starting with the run.

    Every differing key gets a column headed by its shortest distinct ending (``lr`` for
    ``optimizers.generator.lr``; the line above the table names it in full), except
    ``seed`` and ``name``, which the seed and recipe columns show already.
    """
    differ = comparison["differing_keys"]
    metrics = comparison["metrics"]
    columns = [key for key in differ if key not in SHOWN_KEYS]
    short = short_keys(columns)
    header = ["run", "recipe", "status", "seed", "steps", "wall s", "img/s"]
    header += [f"final {name}" for name in LOSSES]
    for name in metrics:
        header += [f"{name} final", f"{name} best"]
    right = set(range(3, len(header)))  # seed .. the last metric
    header += [short[key] for key in columns]
    rows = []
    for run in comparison["runs"]:
        row = [run["run"], str(run["recipe"]), str(run["status"] or MISSING)]
        row += [number(run["seed"]), number(run["steps"])]
        row += [number(run["wall_seconds"], ".1f"), number(run["images_per_second"], ".1f")]
        row += [number(run["final"][name]) for name in LOSSES]
        for name in metrics:
            row += [number(run["metrics"][name]["final"]), number(run["metrics"][name]["best"])]
        row += [recipe_value(run["keys"][key]) for key in columns]
        rows.append(row)
    lines = [differ_line("Recipe keys that differ", differ), ""]
    lines.append(format_blocks(header, rows, right))
    if metrics:
        lines += [
            "",
            "best = the lowest value the run logged (the highest where higher is better; - "
            "where neither is)",
        ]
    return "\n".join(lines)


def to_json(comparison: Mapping[str, Any]) -> str:
    """The comparison as strict JSON: a number that is not finite (nan) becomes null, and a
    differing key that a run's recipe lacks is left out of its ``keys``."""

    def present(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: present(v) for k, v in value.items() if v is not Absent}
        if isinstance(value, list | tuple):
            return [present(v) for v in value]
        return value

    return strict_json(present(comparison), indent=2)


# --- the plot -------------------------------------------------------------------------------


def panels_of(runs: Sequence[RunFolder], metrics: Sequence[str]) -> list[Panel]:
    """One panel per quantity that some run logged: the evaluations first (what ranks
    runs), then the other logged values (plugins' own), then the losses."""
    infos = {name: key_info_of(runs, name) for name in [*metrics, *LOSSES]}
    logged = {name for run in runs for row in run.rows for name in infos if name in row}
    order = sorted(
        (name for name in infos if name in logged),
        key=lambda name: 0 if infos[name].namespace == EVAL else 2 if name in LOSSES else 1,
    )
    panels = []
    for name in order:
        info = infos[name]
        how = f", {info.better} is better" if info.better else ""
        panels.append(Panel(name, f"{name} ({info.namespace}{how})", info.better))
    return panels


def key_values(keys: Sequence[str], values: Mapping[str, Any]) -> str:
    """``lr=0.0002, name=hinge``: the differing keys by their short names, with values."""
    short = short_keys(keys)
    return ", ".join(f"{short[key]}={recipe_value(values[key])}" for key in keys)


def run_series(runs: Sequence[RunFolder], comparison: Mapping[str, Any]) -> list[Series]:
    """One series per run, labelled by its values of the differing keys; by its name too
    when those do not tell it apart (the same configuration twice, or no key differs)."""
    differ = comparison["differing_keys"]
    rows = comparison["runs"]
    values = [key_values(differ, row["keys"]) for row in rows]
    distinct = all(values) and len(set(values)) == len(values)
    labels = [
        value if distinct else f"{row['run']} ({value})" if value else row["run"]
        for row, value in zip(rows, values, strict=True)
    ]
    return [Series(label, (run,)) for run, label in zip(runs, labels, strict=True)]


def group_series(runs: Sequence[RunFolder], grouped: Mapping[str, Any]) -> list[Series]:
    """One series per configuration, numbered as the table's rows: its values of the keys
    that differ and its seeds."""
    by_path = {str(run.path): run for run in runs}
    keys = grouped["differing_keys"]
    series = []
    for group in grouped["groups"]:
        what = key_values(keys, group["keys"]) if keys else str(group["recipe"])
        seeds = ",".join(map(str, group["seeds"]))
        label = f"{group['config']}: {what} (seed{'s' * (len(group['seeds']) != 1)} {seeds})"
        series.append(Series(label, tuple(by_path[path] for path in group["runs"])))
    return series


def readable_runs(paths: Sequence[Path]) -> list[RunFolder]:
    """The run folders of ``paths`` that can be read. Each one that cannot (a damaged
    run.json, a line of metrics.jsonl that is not JSON, a missing recipe.yaml) is named on
    stderr, one line with its reason, and left out, as `ganlab runs` lists it apart: one
    broken run never hides the others. Refused only when none is left to compare."""
    runs, problems = [], []
    for path in paths:
        try:
            runs.append(read_run_folder(path))
        except GanlabError as exc:
            problems.append(" ".join(str(exc).split()))  # the message names its file
    if not runs:
        reasons = "; ".join(problem.rstrip(".") for problem in problems)
        raise GanlabError(
            f"Nothing to compare: no run folder can be read ({reasons}). Repair them, or give "
            "other run folders."
        )
    for problem in problems:
        click.echo(f"ganlab: left out, cannot be read: {problem}", err=True)
    return runs


# --- the command --------------------------------------------------------------------------


@click.command("compare")
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True, type=click.Path())
@click.option(
    "--plot",
    "plot_path",
    default="compare.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the plot (.png, .pdf or .svg). A plot that ganlab compare wrote "
    "before is replaced; any other existing file is never overwritten: the command stops "
    "with an error instead.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the table's data as JSON instead of the text table.",
)
@click.option(
    "--over-seeds",
    is_flag=True,
    help="One row and one plot line per configuration: runs that differ only in their seed "
    "are merged; the table shows each metric's final and best value as mean ± standard "
    "deviation over the seeds, the plot their mean with a band of ± one standard deviation.",
)
@user_command
def compare(run_dirs: tuple[str, ...], plot_path: str, as_json: bool, over_seeds: bool) -> None:
    """Compare runs: a table, and a plot with one panel per metric and loss.

    Each RUN_DIR is a run folder (it holds run.json) or a folder with runs under it at any
    depth, such as runs/quickstart: every run there is compared. The table has one row
    per run: recipe, status, seed, steps, wall time, images per second, the final loss_d
    and loss_g, the final and best value of every other logged value, and one column per
    recipe key that differs between the runs (keys in only some runs count as differing);
    it is wrapped into blocks of at most 120 columns. The plot has one panel per metric,
    per plugin's logged value and per loss, against the training step.

    \b
    Examples:
      ganlab compare runs/quickstart
      ganlab compare runs/ --over-seeds --plot seeds.png
    """
    paths = find_run_dirs(Path(p) for p in run_dirs)
    plot = Path(plot_path)
    check_plot_path(plot)
    runs = readable_runs(paths)
    comparison = compare_runs(runs)
    grouped = over_seeds_of(comparison) if over_seeds else None
    panels = panels_of(runs, comparison["metrics"])
    if panels:
        if grouped is not None:
            series = group_series(runs, grouped)
            title = (
                f"{len(series)} configuration{'s' * (len(series) != 1)}, {len(runs)} runs: "
                "mean ± sd over the seeds"
            )
        else:
            series = run_series(runs, comparison)
            title = f"{len(runs)} run{'s' * (len(runs) != 1)}"
        save_plot(figure_of(panels, series, f"ganlab compare: {title}"), plot)
    plotted = str(plot) if panels else None
    if grouped is not None:
        click.echo(to_json({**grouped, "plot": plotted}) if as_json else render_over_seeds(grouped))
    elif as_json:
        click.echo(to_json({**comparison, "plot": plotted}))
    else:
        click.echo(render_text(comparison))
    if as_json:
        return
    click.echo("")
    if panels:
        names = ", ".join(panel.key for panel in panels)
        click.echo(fill(f"Plot: {plot} (one panel each: {names})"))
    else:
        click.echo("Plot: none written (no run has logged a row in metrics.jsonl yet).")
