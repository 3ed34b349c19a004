"""What `ganlab compare` compares, as data: the runs' summaries, the recipe keys that differ,
and the runs that differ only in their seed grouped (``--over-seeds``).

Small pure functions over the files of a run folder (``recipe.yaml``, ``run.json``,
``metrics.jsonl``; see ``ganlab.files.folders``); `ganlab.commands.compare` renders them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ganlab.commands.compare_plot import LOSSES
from ganlab.errors import GanlabError
from ganlab.files.folders import RunFolder, read_run_folder
from ganlab.plugin_manager.logkeys import EVAL, TRAIN, Better, KeyInfo, key_infos
from ganlab.recipe.diff import Absent, differing_keys, flatten, is_number
from ganlab.runview import StepStats

#: The columns of a training row; every other numeric column of metrics.jsonl is a metric.
TRAINING_KEYS = ("step", "epoch", *StepStats.NAMES)
MISSING = "-"


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one run: its last value and its lowest value (and that value's step)."""

    final: float | None
    best: float | None
    best_step: int | None


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


def recipe_value(value: Any) -> str:
    """A recipe value as the table shows it: YAML's spelling for null and booleans."""
    if value is Absent:
        return MISSING
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
