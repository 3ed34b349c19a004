"""`ganlab compare`: a table of runs side by side, and their loss curves in one plot.

The table shows what each run was (recipe, seed, status), how it went (steps, wall time,
images per second, final and best metrics) and only the recipe keys that differ between the
runs, so two runs of one recipe with one ``--set`` change show that one key and nothing else.

Everything here but the click command is a small pure function over the files of a run
folder (``recipe.yaml``, ``run.json``, ``metrics.jsonl``; see ``ganlab.folders``); the
plot is drawn by ``ganlab.compare_plot``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ganlab.cliutil import strict_json, user_command
from ganlab.compare_plot import LOSSES, check_plot_path, plot_loss_curves
from ganlab.folders import RunFolder, find_run_dirs, read_run_folder
from ganlab.logkeys import Better, key_infos
from ganlab.recipe_diff import Absent, differing_keys, flatten, is_number
from ganlab.run import StepStats

#: The columns of a training row; every other numeric column of metrics.jsonl is a metric.
TRAINING_KEYS = ("step", "epoch", *StepStats.NAMES)
#: Recipe keys that already have a column of their own (seed; name is the recipe column).
SHOWN_KEYS = frozenset({"seed", "name"})
#: At most this many differing keys go into a plot legend label.
LEGEND_KEYS = 4
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
    """Which way column ``name`` of a run is better, as its run.json says; lower for a run
    that does not say (runs from before ganlab recorded it: every metric then was)."""
    info = key_infos(run.info).get(name)
    return info.better if info is not None else "lower"


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
    for values, runs in groups.items():
        rows.append(
            {
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


def render_over_seeds(grouped: Mapping[str, Any]) -> str:
    """The text of `ganlab compare --over-seeds`: one row per recipe, metrics as mean ± sd."""
    columns = [key for key in grouped["differing_keys"] if key not in SHOWN_KEYS]
    header = ["recipe", "seeds", "steps"]
    for name in grouped["metrics"]:
        header += [f"{name} final", f"{name} best"]
    header += columns
    right = set(range(2, len(header) - len(columns)))
    rows = []
    for group in grouped["groups"]:
        row = [str(group["recipe"]), ",".join(map(str, group["seeds"]))]
        row.append(",".join(map(number, group["steps"])))
        for name in grouped["metrics"]:
            row += [mean_and_spread(group["metrics"][name][w]) for w in ("final", "best")]
        row += [group["keys"][key] for key in columns]
        rows.append(row)
    differ = grouped["differing_keys"]
    lines = [f"Recipe keys that differ (besides seed): {', '.join(differ) or 'none'}", ""]
    lines.append(format_table(header, rows, right))
    lines += [
        "",
        "mean ± sample standard deviation over the seeds; best = the lowest value a run "
        "logged (the highest where higher is better; - where neither is)",
    ]
    return "\n".join(lines)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Aligned plain-text columns: a header, a rule, the rows; columns in ``right`` are
    right-aligned (numbers)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def render_text(comparison: Mapping[str, Any]) -> str:
    """The text `ganlab compare` prints: the differing keys, then one table row per run.

    Every differing key gets a column, except ``seed`` and ``name``, which the seed and
    recipe columns show already (the line above the table still names them).
    """
    differ = comparison["differing_keys"]
    metrics = comparison["metrics"]
    columns = [key for key in differ if key not in SHOWN_KEYS]
    header = ["run", "recipe", "status", "seed", "steps", "wall s", "img/s"]
    header += [f"final {name}" for name in LOSSES]
    for name in metrics:
        header += [f"{name} final", f"{name} best"]
    header += columns
    right = set(range(3, len(header) - len(columns)))  # seed .. the last metric
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
    lines = [f"Recipe keys that differ: {', '.join(differ) if differ else 'none'}", ""]
    lines.append(format_table(header, rows, right))
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


# --- the plot's labels ---------------------------------------------------------------------


def legend_labels(comparison: Mapping[str, Any]) -> list[str]:
    """One legend label per run: its short name and its values of the differing keys."""
    differ = comparison["differing_keys"]
    short = short_keys(differ)
    labels = []
    for run in comparison["runs"]:
        values = [f"{short[key]}={recipe_value(run['keys'][key])}" for key in differ]
        if len(values) > LEGEND_KEYS:
            values = [*values[:LEGEND_KEYS], "..."]
        labels.append(f"{run['run']} ({', '.join(values)})" if values else run["run"])
    return labels


# --- the command --------------------------------------------------------------------------


@click.command("compare")
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True, type=click.Path())
@click.option(
    "--plot",
    "plot_path",
    default="compare.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the overlay of the loss curves (.png, .pdf, .svg ...). An existing "
    "file is never overwritten: the command stops with an error instead.",
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
    help="One row per recipe: runs that differ only in their seed are merged, and each "
    "metric's final and best value shown as mean ± standard deviation over the seeds.",
)
@user_command
def compare(run_dirs: tuple[str, ...], plot_path: str, as_json: bool, over_seeds: bool) -> None:
    """Compare runs: a table and an overlay plot of their loss curves.

    Each RUN_DIR is a run folder (it holds run.json) or a folder with runs under it at any
    depth, such as runs/quickstart: every run there is compared. The table has one row
    per run: recipe, status, seed, steps, wall time, images per second, the final loss_d
    and loss_g, the final and best (lowest) value of any other metric, and one column per
    recipe key that differs between the runs (keys in only some runs count as differing).

    \b
    Examples:
      ganlab compare runs/quickstart
      ganlab compare runs/quickstart/20250101-120000-s0 runs/quickstart/20250101-121500-s1 \\
          --plot seeds.png
    """
    paths = find_run_dirs(Path(p) for p in run_dirs)
    plot = Path(plot_path)
    check_plot_path(plot)
    runs = [read_run_folder(path) for path in paths]
    comparison = compare_runs(runs)
    wrote_plot = any(is_number(r.get(n)) for run in runs for r in run.rows for n in LOSSES)
    if wrote_plot:
        plot_loss_curves(runs, legend_labels(comparison), plot)
    plotted = str(plot) if wrote_plot else None
    if over_seeds:
        grouped = over_seeds_of(comparison)
        click.echo(to_json({**grouped, "plot": plotted}) if as_json else render_over_seeds(grouped))
    elif as_json:
        click.echo(to_json({**comparison, "plot": plotted}))
    else:
        click.echo(render_text(comparison))
    if as_json:
        return
    click.echo("")
    if wrote_plot:
        click.echo(f"Loss curves: {plot}")
    else:
        click.echo("Loss curves: none written (no run has a loss row in metrics.jsonl yet).")
