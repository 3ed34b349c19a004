"""The plot of `ganlab compare`: one panel per logged quantity, every run against the step.

Each panel is one quantity (a metric such as ``swd``, a plugin's logged value, ``loss_d``,
``loss_g``); each legend entry is one `Series`: a single run, drawn as its curve, or (with
``--over-seeds``) the seeds of one configuration, drawn as their mean and a band of ± one
sample standard deviation. A quantity with a direction marks each line's best point.

The file carries a mark (`MARK`, in its metadata) so that the next ``ganlab compare`` can
tell its own plot from any other file: it replaces the one and refuses the other.
matplotlib's object API only (no pyplot): no GUI backend is needed, in any process.
"""

from __future__ import annotations

import io
import math
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ganlab.errors import GanlabError
from ganlab.files.atomic import write_atomic
from ganlab.files.folders import RunFolder
from ganlab.plugin_manager.logkeys import Better
from ganlab.recipe.diff import is_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The training losses: every run logs them, so every comparison has their panels.
LOSSES = ("loss_d", "loss_g")
#: The title every plot of ``ganlab compare`` carries in its metadata (PNG text chunk, PDF
#: Info, SVG Dublin Core): how a later ``ganlab compare`` knows the file is its own.
MARK = "ganlab compare"
#: The formats whose metadata can carry the mark.
FORMATS = ("png", "pdf", "svg")
#: A legend label is wrapped onto lines of at most this many characters.
LABEL_CHARS = 56
#: Distinct line styles, for more series than the 10 colours.
STYLES: tuple[Literal["-", "--", ":", "-."], ...] = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class Panel:
    """One quantity of the plot: a column of metrics.jsonl."""

    key: str
    title: str
    better: Better  #: which way is better; the best point of each line is marked unless None


@dataclass(frozen=True)
class Series:
    """One legend entry: one run, or the runs (seeds) of one configuration."""

    label: str
    runs: tuple[RunFolder, ...]


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The trailing mean over ``window`` values (fewer at the start) of the finite ones: a
    nan (a step where the loss diverged) leaves a gap only where its window has nothing
    else, instead of making every later mean nan."""
    array = np.asarray(values, dtype=float)
    finite = np.isfinite(array)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, array, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    ends = np.arange(1, len(array) + 1)
    starts = np.maximum(ends - window, 0)
    n = counts[ends] - counts[starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums[ends] - sums[starts]) / n
    return [float(v) for v in np.where(n > 0, means, np.nan)]


def points(run: RunFolder, key: str) -> tuple[list[int], list[float]]:
    """The steps and values of column ``key`` of a run's rows."""
    found = [(row["step"], float(row[key])) for row in run.rows if is_number(row.get(key))]
    return [s for s, _ in found], [v for _, v in found]


def smoothing_window(count: int) -> int:
    """The moving average's window for a curve of ``count`` points: 1 (none) for short
    curves such as an evaluation every few hundred steps, about 2% of a long one."""
    return max(count // 50, 1)


@dataclass(frozen=True)
class Line:
    """What one series draws in one panel."""

    steps: np.ndarray
    center: np.ndarray  #: the run's values (smoothed when long), or the seeds' mean
    spread: np.ndarray | None  #: ± this around ``center``: the seeds' sample sd (nan where n < 2)
    raw: tuple[np.ndarray, np.ndarray] | None  #: a long single run's unsmoothed values
    best: tuple[int, float] | None  #: (step, value) of the best point of the line


def line_of(series: Series, key: str, better: Better) -> Line | None:
    """The line one series draws for ``key``; None when none of its runs logged ``key``.

    A single run is its own values, with a moving average over a long curve (the raw values
    stay visible underneath). Several runs: each is smoothed alike, then at every step their
    mean, and their sample standard deviation where at least two runs logged that step (a
    run that stopped early leaves the mean to the others). Values that are not finite (a
    diverged run's nan) are left out.
    """
    curves = []
    for run in series.runs:
        steps, values = points(run, key)
        if steps:
            curves.append((steps, values))
    if not curves:
        return None
    if len(curves) == 1:
        steps, values = curves[0]
        window = smoothing_window(len(values))
        raw = (np.array(steps), np.array(values)) if window > 1 else None
        center = np.array(moving_average(values, window))
        # The best point is the best value the run logged, as the table reports it.
        return Line(np.array(steps), center, None, raw, best_point(steps, values, better))
    by_step: dict[int, list[float]] = {}
    for steps, values in curves:
        smooth = moving_average(values, smoothing_window(len(values)))
        for step, value in zip(steps, smooth, strict=True):
            if math.isfinite(value):
                by_step.setdefault(step, []).append(value)
    all_steps = sorted(by_step)
    mean = np.array([np.mean(by_step[s]) for s in all_steps])
    sd = np.array(
        [np.std(by_step[s], ddof=1) if len(by_step[s]) > 1 else np.nan for s in all_steps]
    )
    best = best_point(all_steps, mean.tolist(), better)
    return Line(np.array(all_steps), mean, sd, None, best)


def best_point(
    steps: Sequence[int], values: Sequence[float], better: Better
) -> tuple[int, float] | None:
    """The (step, value) of the lowest finite value, or the highest when higher is better;
    None when ``better`` is None (no value of a diagnostic is best)."""
    if better is None:
        return None
    finite = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    if not finite:
        return None
    pick = min if better == "lower" else max
    return pick(finite, key=lambda sv: sv[1])


def wrap_label(label: str) -> str:
    """A legend label on lines of at most `LABEL_CHARS`, broken after a comma or a space."""
    return "\n".join(textwrap.wrap(label, LABEL_CHARS, break_on_hyphens=False)) or label


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of the panels: side by side up to three, then rows of two or three."""
    columns = count if count <= 3 else 2 if count == 4 else 3
    return -(-count // columns), columns


def draw_panel(ax: Axes, panel: Panel, series: Sequence[Series]) -> None:
    """Draw every series' line for ``panel`` into ``ax``, in the series' colours."""
    for i, one in enumerate(series):
        line = line_of(one, panel.key, panel.better)
        if line is None:
            continue
        color, style = f"C{i % 10}", STYLES[(i // 10) % len(STYLES)]
        sparse = len(line.steps) <= 30  # an evaluation every N steps: show each point
        marker = "o" if sparse else None
        if line.raw is not None:
            ax.plot(*line.raw, color=color, linestyle=style, linewidth=0.6, alpha=0.25)
        ax.plot(
            line.steps,
            line.center,
            color=color,
            linestyle=style,
            linewidth=1.6,
            marker=marker,
            markersize=3.5,
            label=one.label,
        )
        if line.spread is not None:
            ax.fill_between(
                line.steps,
                line.center - line.spread,
                line.center + line.spread,
                color=color,
                alpha=0.2,
                linewidth=0,
            )
        if line.best is not None:
            ax.plot(
                *line.best,
                marker="*",
                markersize=13,
                color=color,
                markeredgecolor="black",
                markeredgewidth=0.7,
                linestyle="none",
            )


def figure_of(panels: Sequence[Panel], series: Sequence[Series], title: str) -> Figure:
    """The whole plot: one panel per quantity in a grid, one legend below for all of them,
    laid out so that no label is cut off."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in any process
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    rows, columns = grid_shape(len(panels))
    # The legend's height is added once it is measured (`fit_legend`): panels keep their size.
    figure = Figure(figsize=(max(5.0 * columns, 8.0), 3.3 * rows + 0.4), dpi=100)
    figure.set_layout_engine("constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    last_step = max(
        (row["step"] for one in series for run in one.runs for row in run.rows), default=1
    )
    for ax, panel in zip(axes, panels, strict=False):
        draw_panel(ax, panel, series)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step")
        # One step axis: every panel spans the same steps, with room for the last markers.
        ax.set_xlim(0, max(last_step, 1) * 1.03)
        # Ticks at round steps (100, 200, ...; not matplotlib's 80, 160, ...).
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.remove()
    # Artists, or (band, line) pairs that HandlerTuple draws one over the other.
    handles: list[Any] = []
    for i, one in enumerate(series):
        color, style = f"C{i % 10}", STYLES[(i // 10) % len(STYLES)]
        line = Line2D([], [], color=color, linestyle=style, linewidth=1.6)
        # A configuration of several seeds: its line over its band, as the panels draw it.
        band = Patch(color=color, alpha=0.2, linewidth=0)
        handles.append((band, line) if len(one.runs) > 1 else line)
    labels = [wrap_label(one.label) for one in series]
    if any(panel.better is not None for panel in panels):
        star = Line2D(
            [],
            [],
            marker="*",
            markersize=11,
            color="0.6",
            markeredgecolor="black",
            markeredgewidth=0.7,
            linestyle="none",
        )
        handles.append(star)
        labels.append("best point of a line")
    figure.suptitle(title)
    fit_legend(figure, handles, labels)
    return figure


def fit_legend(figure: Figure, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """Put one legend for the whole figure below the panels, in as many columns as fit the
    figure's width (measured, not guessed; a legend too wide even in one column widens the
    figure), and make the figure taller by the legend's height, so that many runs do not
    squeeze the panels. The constrained layout then places it under them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.legend_handler import HandlerTuple

    canvas = FigureCanvasAgg(figure)
    room = figure.bbox.width * 0.98
    for columns in range(min(len(labels), 4), 0, -1):
        legend = figure.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=columns,
            handler_map={tuple: HandlerTuple(ndivide=None, pad=0)},
            fontsize=9,
        )
        canvas.draw()
        box = legend.get_window_extent()
        if box.width <= room or columns == 1:
            break
        legend.remove()
    if box.width > room:
        figure.set_figwidth((box.width + 0.02 * figure.bbox.width) / figure.dpi)
    figure.set_figheight(figure.get_figheight() + box.height / figure.dpi)


# --- the file, and the mark that makes it ganlab's own --------------------------------------


def metadata(fmt: str) -> dict[str, str]:
    """The metadata every plot is saved with: `MARK` as its title (and for PNG, the program;
    matplotlib's own ``Software`` entry would name only itself)."""
    if fmt == "png":
        return {"Title": MARK, "Software": "ganlab compare (matplotlib)"}
    return {"Title": MARK}


def is_marked(path: Path) -> bool:
    """Whether the file at ``path`` is a plot ``ganlab compare`` wrote: its metadata carries
    `MARK` as the title. Anything unreadable, or of another format, is not."""
    fmt = path.suffix.lstrip(".").lower()
    try:
        if not path.is_file():
            return False
        if fmt == "png":
            from PIL import Image

            with Image.open(path) as image:
                return image.format == "PNG" and image.info.get("Title") == MARK
        data = path.read_bytes()
    except (OSError, ValueError):
        return False
    if fmt == "pdf":
        # matplotlib writes the Info dictionary uncompressed: /Title (ganlab compare)
        return data.startswith(b"%PDF") and f"/Title ({MARK})".encode() in data
    if fmt == "svg":
        return re.search(rf"<dc:title>{re.escape(MARK)}</dc:title>".encode(), data) is not None
    return False


def check_plot_path(path: Path) -> None:
    """Refuse a plot path of a format that cannot carry the mark, or a file there that
    ``ganlab compare`` did not write."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        kind = f".{fmt} files" if fmt else "a file without a suffix"
        raise GanlabError(
            f"--plot {path}: ganlab compare does not write {kind}; it writes .png, .pdf or .svg "
            "(formats whose metadata marks the file as its own, so that the next compare can "
            "replace it). Give a file name ending in .png, .pdf or .svg."
        )
    if (path.exists() or path.is_symlink()) and not is_marked(path):
        raise GanlabError(_exists_message(path))


def save_plot(figure: Figure, path: Path) -> None:
    """Write ``figure`` to ``path`` (its suffix picks the format) with the mark: a new file,
    or in place of a plot ``ganlab compare`` wrote before (atomically). Any other file there
    is left as it is, and refused."""
    fmt = path.suffix.lstrip(".").lower()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=metadata(fmt))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if not is_marked(path):  # checked before drawing too; a file may have come since
            raise GanlabError(_exists_message(path))
        write_atomic(path, buffer.getvalue())
        return
    # Whole under a temporary name first, so that the plot appears whole or not at all.
    tmp = path.with_name(path.name + ".new")
    try:
        write_atomic(tmp, buffer.getvalue())
    except OSError as exc:  # name the file meant, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        os.link(tmp, path)  # fails rather than replace a file made meanwhile
    except FileExistsError:
        raise GanlabError(_exists_message(path)) from None
    except OSError:  # a file system without hard links: checked above, so renamed
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _exists_message(path: Path) -> str:
    other = path.with_name(path.stem + "-2" + path.suffix)
    return (
        f"--plot {path}: the file exists and ganlab compare did not write it, so it is not "
        f"replaced. Give another file, e.g. --plot {other}, or move the old one away."
    )
