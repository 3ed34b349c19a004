"""The sweep file ``ganlab sweep`` writes for ``wandb sweep``: W&B's sweep configuration,
its metric and goal from the recipe's metrics, and the command W&B's agent runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml

import ganlab
from ganlab_plugins.wandb.sweep_points import Param

#: The first line of every sweep file written here: a file that starts with it is one that
#: `ganlab sweep` may replace; any other file is never overwritten.
HEADER = "# A W&B sweep written by `ganlab sweep`"
#: The namespace W&B files a metric's results under (``eval/swd``).
EVAL = "eval"
#: Search methods of a W&B sweep; --local runs the grid only.
Method = Literal["grid", "random", "bayes"]


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
