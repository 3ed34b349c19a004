"""`ganlab compare`: a table of runs side by side, and a plot of everything they logged.

The table shows what each run was (recipe, seed, status), how it went (steps, wall time,
images per second, final and best metrics) and only the recipe keys that differ between the
runs, so two runs of one recipe with one ``--set`` change show that one key and nothing else;
it is wrapped to fit 120 columns. The plot has one panel per logged quantity (each metric,
each plugin's value, each loss) against the training step; with ``--over-seeds`` the seeds
of one configuration become one mean line with a band of ± one standard deviation.

What is compared is worked out by ``ganlab.commands.comparison``; here it is rendered as text
or JSON, and the plot is drawn by ``ganlab.commands.compare_plot``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
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
from ganlab.commands.comparison import (
    MISSING,
    compare_runs,
    key_info_of,
    over_seeds_of,
    readable_runs,
    recipe_value,
)
from ganlab.commands.texttable import WIDTH, format_blocks
from ganlab.files.folders import RunFolder, find_run_dirs
from ganlab.plugin_manager.logkeys import EVAL
from ganlab.recipe.diff import Absent

#: Recipe keys that already have a column of their own (seed; name is the recipe column).
SHOWN_KEYS = frozenset({"seed", "name"})


# --- the table ----------------------------------------------------------------------------


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


def number(value: Any, spec: str = ".4g") -> str:
    """A measured number for the table; ``-`` when there is none."""
    if value is None:
        return MISSING
    return format(value, spec) if isinstance(value, float) else str(value)


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
