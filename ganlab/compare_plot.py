"""The plot of `ganlab compare`: every run's loss curves against the step, in one figure.

matplotlib's object API only (no pyplot): no GUI backend is needed, in any process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from ganlab.errors import GanlabError
from ganlab.folders import RunFolder
from ganlab.recipe_diff import is_number

#: The training losses: their curves are what the plot shows.
LOSSES = ("loss_d", "loss_g")


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The trailing mean over ``window`` values (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss_curves(runs: Sequence[RunFolder], labels: Sequence[str], path: Path) -> None:
    """Overlay the runs' loss_d and loss_g against the step, one subplot each, into
    ``path`` (its suffix picks the format). Long curves get a light moving average drawn
    over the raw values, which stay visible. Never replaces an existing file."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in any process
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    axes = figure.subplots(1, 2, sharex=True)
    titles = {"loss_d": "Discriminator loss (loss_d)", "loss_g": "Generator loss (loss_g)"}
    colors = [f"C{i % 10}" for i in range(len(runs))]
    styles = ["-", "--", ":", "-."]
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        style = styles[(i // 10) % len(styles)]  # more runs than colours: vary the line too
        for ax, name in zip(axes, LOSSES, strict=True):
            points = [(r["step"], r[name]) for r in run.rows if is_number(r.get(name))]
            if not points:
                continue
            steps = [s for s, _ in points]
            values = [v for _, v in points]
            window = len(values) // 50
            if window >= 2:
                ax.plot(steps, values, color=colors[i], linestyle=style, linewidth=0.6, alpha=0.3)
                smooth = moving_average(values, window)
                ax.plot(steps, smooth, color=colors[i], linestyle=style, linewidth=1.4, label=label)
            else:
                ax.plot(steps, values, color=colors[i], linestyle=style, linewidth=1.2, label=label)
    for ax, name in zip(axes, LOSSES, strict=True):
        ax.set_title(titles[name])
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if not handles:
        handles, names = axes[1].get_legend_handles_labels()
    figure.legend(handles, names, loc="outside lower center", ncols=min(2, max(1, len(names))))
    figure.suptitle(f"Loss curves of {len(runs)} run{'s' * (len(runs) != 1)}")
    fmt = path.suffix.lstrip(".").lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        f = open(path, "xb")  # noqa: SIM115 - "x": fail rather than replace a file made meanwhile
    except FileExistsError:
        raise GanlabError(_exists_message(path)) from None
    try:
        with f:
            figure.savefig(f, format=fmt)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()  # the half-written plot this call created
        raise


def check_plot_path(path: Path) -> None:
    """Refuse a plot path that exists or whose suffix is not an image format."""
    from matplotlib.figure import Figure

    suffix = path.suffix.lstrip(".").lower()
    if suffix not in Figure().canvas.get_supported_filetypes():
        kind = f".{suffix} files" if suffix else "a file without a suffix"
        raise GanlabError(
            f"--plot {path}: matplotlib cannot write {kind}. "
            "Give a file name ending in .png, .pdf or .svg."
        )
    if path.exists():
        raise GanlabError(_exists_message(path))


def _exists_message(path: Path) -> str:
    return (
        f"--plot {path}: the file exists and ganlab does not overwrite it. "
        f"Give another file, e.g. --plot {path.with_name(path.stem + '-2' + path.suffix)}, "
        "or move the old one away."
    )
