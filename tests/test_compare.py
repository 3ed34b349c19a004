"""`ganlab compare`: the table of runs, the keys that differ, the plot, the errors."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from matplotlib.artist import Artist
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from PIL import Image

from ganlab.commands.compare import compare, short_keys
from ganlab.commands.compare_plot import is_marked
from ganlab.commands.compare_plot import save_plot as real_save
from ganlab.commands.comparison import run_labels, summarize
from ganlab.commands.texttable import clip, format_blocks
from ganlab.errors import GanlabError
from ganlab.files.metrics_log import read_metrics
from ganlab.recipe.diff import differing_keys, flatten
from tests.conftest import RECIPES, TINY_QUICKSTART, invoke
from tests.runfolders import curves, recipe_of, write_run

QUICKSTART = str(RECIPES / "quickstart.yaml")


def make_run(out: Path, *args: str) -> Path:
    """A tiny quickstart run under ``out`` through the CLI; returns its run folder."""
    before = set(out.glob("*/*"))
    sets = [a for override in TINY_QUICKSTART for a in ("--set", override)]
    result = invoke("run", QUICKSTART, "--out", str(out), "--device", "cpu", *sets, *args)
    assert result.exit_code == 0, result.output
    (run_dir,) = set(out.glob("*/*")) - before
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A parent folder with two quickstart runs: seed 0, and seed 1 with G's lr at 1e-4."""
    out = tmp_path_factory.mktemp("runs")
    first = make_run(out)
    second = make_run(out, "--seed", "1", "--set", "optimizers.generator.lr=1e-4")
    return out, first, second


def run_compare(*args: str) -> Result:
    return CliRunner().invoke(compare, list(args), prog_name="ganlab compare")


def flat(output: str) -> str:
    """The output with its lines joined: a long line is wrapped at 120 columns."""
    return " ".join(output.split())


def differ_line(output: str) -> list[str]:
    (line,) = [x for x in output.splitlines() if x.startswith("Recipe keys that differ: ")]
    return line.removeprefix("Recipe keys that differ: ").split(", ")


def table_rows(output: str) -> list[list[str]]:
    """The table's lines (header first) split into cells, without the rule under the header."""
    lines = output.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("run "))
    end = lines.index("", start)
    return [x.split() for i, x in enumerate(lines[start:end]) if i != 1]


def test_two_runs_show_exactly_the_keys_that_differ_and_an_overlay_plot(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, first, second = runs
    plot = tmp_path / "cmp.png"
    result = run_compare(str(first), str(second), "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert sorted(differ_line(result.output)) == ["optimizers.generator.lr", "seed"]

    header, *rows = table_rows(result.output)
    assert header[:7] == ["run", "recipe", "status", "seed", "steps", "wall", "s"]
    # The one differing key besides seed, headed by its short name (the line above names
    # it in full).
    assert header[-1] == "lr"
    assert header.count("seed") == 1  # seed has its own column, not a second one
    assert [row[0] for row in rows] == [first.name, second.name]
    assert [row[1:5] for row in rows] == [
        ["quickstart", "completed", "0", "4"],
        ["quickstart", "completed", "1", "4"],
    ]
    assert [row[-1] for row in rows] == ["0.0002", "0.0001"]
    assert f"Plot: {plot} (one panel each: loss_d, loss_g)" in flat(result.output)

    with Image.open(plot) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.verify()
    assert 600 <= width <= 3000 and 300 <= height <= 2000


def test_a_parent_folder_compares_every_run_under_it(
    runs: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, first, second = runs
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(compare, [str(out), "--json"])
    assert (tmp_path / "compare.png").is_file()  # the default plot, in the current folder
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [run["path"] for run in data["runs"]] == [str(first), str(second)]
    assert data["differing_keys"] == ["seed", "optimizers.generator.lr"]
    assert [run["keys"]["optimizers.generator.lr"] for run in data["runs"]] == [2e-4, 1e-4]
    assert all(run["steps"] == 4 and run["final"]["loss_g"] > 0 for run in data["runs"])


def test_the_same_run_twice_differs_in_nothing(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, first, _ = runs
    copy = tmp_path / "copy" / first.name
    shutil.copytree(first, copy)
    result = run_compare(str(first), str(copy), "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 0, result.output
    assert "Recipe keys that differ: none" in result.output
    header, *rows = table_rows(result.output)
    assert header[-2:] == ["final", "loss_g"]  # no key columns
    # Same folder name twice: the runs are told apart by their parent folders.
    assert [row[0] for row in rows] == [f"quickstart/{first.name}", f"copy/{first.name}"]


def test_other_metrics_get_final_and_best(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, first, _ = runs
    run = tmp_path / "run"
    shutil.copytree(first, run)
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 2, "fid": 80.5}\n{"step": 4, "fid": 90.25}\n')
    result = run_compare(str(run), "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 0, result.output
    header, row = table_rows(result.output)
    assert header[-4:] == ["fid", "final", "fid", "best"]
    assert row[-2:] == ["90.25", "80.5"]
    assert "best = the lowest value" in result.output


@pytest.mark.parametrize("what", ["empty", "missing"])
def test_a_path_without_runs_is_a_clear_error(tmp_path: Path, what: str) -> None:
    path = tmp_path / "nothing"
    if what == "empty":
        (path / "sub").mkdir(parents=True)
    result = run_compare(str(path), "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 2
    assert result.output.startswith(f"ganlab: error: {path}: ")
    assert "no run folders found" in result.output or "no such file" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "p.png").exists()


def test_an_existing_plot_is_not_overwritten(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    out, _, _ = runs
    plot = tmp_path / "compare.png"
    plot.write_bytes(b"my own picture")
    result = run_compare(str(out), "--plot", str(plot))
    assert result.exit_code == 2
    assert "exists" in result.output and "--plot " in result.output
    assert "Traceback" not in result.output
    assert plot.read_bytes() == b"my own picture"


def test_a_broken_run_file_is_named(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, first, _ = runs
    run = tmp_path / "run"
    shutil.copytree(first, run)
    (run / "run.json").write_text("{not json", encoding="utf-8")
    result = run_compare(str(run), "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 2
    assert f"{run / 'run.json'}: cannot be read as JSON" in result.output
    assert "Traceback" not in result.output

    (run / "run.json").write_text("{}", encoding="utf-8")
    (run / "recipe.yaml").unlink()
    result = run_compare(str(run), "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 2
    assert f"{run / 'recipe.yaml'}: missing" in result.output


def test_flatten_gives_dotted_keys_and_list_indices() -> None:
    recipe = {
        "seed": 0,
        "train": {"steps": 4, "epochs": None},
        "callbacks": [{"name": "console", "params": {"every": 5}}, {"name": "samples"}],
        "metrics": [],
    }
    assert flatten(recipe) == {
        "seed": 0,
        "train.steps": 4,
        "train.epochs": None,
        "callbacks.0.name": "console",
        "callbacks.0.params.every": 5,
        "callbacks.1.name": "samples",
    }


def test_differing_keys_include_keys_only_some_runs_have() -> None:
    a = {"seed": 0, "lr": 0.0002, "flag": True, "n": 1, "x": None}
    b = {"seed": 0, "lr": 2e-4, "flag": 1, "n": 1.0, "extra": 3}
    # true and 1 are different settings; 1 and 1.0 are the same number; null vs absent differs
    assert differing_keys([a, b]) == ["flag", "x", "extra"]
    assert differing_keys([a]) == []


def test_summarize_final_and_lowest_best() -> None:
    rows = [{"step": 1, "fid": 50.0}, {"step": 2}, {"step": 3, "fid": 40.0}, {"step": 4}]
    rows.append({"step": 5, "fid": 45.0})
    assert vars(summarize(rows, "fid")) == {"final": 45.0, "best": 40.0, "best_step": 3}
    diverged = summarize([{"step": 1, "loss_d": 1.0}, {"step": 2, "loss_d": math.nan}], "loss_d")
    assert math.isnan(diverged.final) and diverged.best == 1.0
    assert summarize(rows, "is").final is None


def test_labels_and_short_keys() -> None:
    assert run_labels([Path("a/x/r1"), Path("b/x/r2")]) == ["r1", "r2"]
    assert run_labels([Path("a/x/r1"), Path("b/x/r1")]) == ["a/x/r1", "b/x/r1"]
    keys = ["seed", "optimizers.generator.lr", "optimizers.discriminator.lr", "train.steps"]
    assert short_keys(keys) == {
        "seed": "seed",
        "optimizers.generator.lr": "generator.lr",
        "optimizers.discriminator.lr": "discriminator.lr",
        "train.steps": "steps",
    }


def test_a_row_cut_off_by_a_killed_run_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss_d": 1.0}\n{"step": 2, "lo', encoding="utf-8")
    assert read_metrics(path) == [{"step": 1, "loss_d": 1.0}]
    path.write_text('{"step": 1, "lo\n{"step": 2, "loss_d": 1.0}\n', encoding="utf-8")
    with pytest.raises(GanlabError, match="line 1: not JSON"):
        read_metrics(path)


def test_over_seeds_gives_mean_and_spread_per_recipe(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Three seeds of one recipe and one run of another: two rows, the first with the mean
    and sample standard deviation of its three scores."""
    _, first, second = runs
    scores = {"a0": [30.0, 20.0], "a1": [28.0, 24.0], "a2": [26.0, 25.0]}
    for seed, (name, (early, late)) in enumerate(scores.items()):
        run = shutil.copytree(first, tmp_path / "runs" / name)
        recipe = re.sub(r"(?m)^seed: 0$", f"seed: {seed + 5}", (run / "recipe.yaml").read_text())
        (run / "recipe.yaml").write_text(recipe)
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "seed": seed + 5}))
        with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(f'{{"step": 2, "swd": {early}}}\n{{"step": 4, "swd": {late}}}\n')
    shutil.copytree(second, tmp_path / "runs" / "b")  # another lr: a row of its own
    args = [str(tmp_path / "runs"), "--over-seeds", "--plot", str(tmp_path / "p.png")]
    result = run_compare(*args)
    assert result.exit_code == 0, result.output
    assert "Recipe keys that differ (besides seed): optimizers.generator.lr" in result.output
    lines = result.output.splitlines()
    row = next(x for x in lines if x.startswith("     1  quickstart  5,6,7"))
    # final: 20, 24, 25 -> 23 ± 2.646; best: the same values here (each run's lowest)
    assert "23 ± 2.6" in row and row.split()[-1] == "0.0002"
    data = json.loads(run_compare(*args[:2], "--json", "--plot", str(tmp_path / "q.png")).output)
    (group,) = [g for g in data["groups"] if g["seeds"] == [5, 6, 7]]
    final = group["metrics"]["swd"]["final"]
    assert final["n"] == 3 and final["mean"] == pytest.approx(23.0)
    assert final["std"] == pytest.approx(math.sqrt(((20 - 23) ** 2 + 1 + 4) / 2))


# --- the plot: panels, bands, legends; the table's width; replacing its own plot ----------


def two_configurations(parent: Path) -> list[Path]:
    """Six run folders: bce and hinge, seeds 0, 1 and 2 each. hinge's SWD falls more
    slowly to a higher floor, so the two configurations' bands lie apart."""
    folders = []
    for loss, floor, rate in (("bce", 50.0, 60.0), ("hinge", 90.0, 200.0)):
        for seed in range(3):
            recipe = recipe_of(seed, **{"loss.name": loss})
            rows = curves(seed + 10 * (loss == "hinge"), floor=floor, rate=rate)
            folders.append(write_run(parent / loss / f"20261127-10000{seed}-s{seed}", recipe, rows))
    return folders


def drawn_figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures `ganlab compare` saves from now on (still saved)."""
    saved: list[Figure] = []

    def keep(figure: Figure, path: Path) -> None:
        saved.append(figure)
        real_save(figure, path)

    monkeypatch.setattr("ganlab.commands.compare.save_plot", keep)
    return saved


def inside(figure: Figure, artist: Artist) -> bool:
    """Whether ``artist`` is drawn wholly inside the figure (nothing of it cut off)."""
    box = artist.get_window_extent(figure.canvas.get_renderer())
    frame = figure.bbox
    return box.x0 >= frame.x0 and box.y0 >= frame.y0 and box.x1 <= frame.x1 and box.y1 <= frame.y1


def test_over_seeds_plot_has_a_panel_per_quantity_and_a_band_per_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_configurations(tmp_path / "runs")
    figures = drawn_figures(monkeypatch)
    plot = tmp_path / "seeds.png"
    result = run_compare(str(tmp_path / "runs"), "--over-seeds", "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert f"Plot: {plot} (one panel each: swd, d_gap, loss_d, loss_g)" in flat(result.output)
    (figure,) = figures
    axes = figure.axes
    # The metric that ranks runs first, then the plugin's value, then the losses; each
    # title says the key's namespace and, where it has one, its direction.
    assert [ax.get_title() for ax in axes] == [
        "swd (eval, lower is better)",
        "d_gap (diag)",
        "loss_d (train)",
        "loss_g (train)",
    ]
    for ax in axes:
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        means = [
            x for x in ax.get_lines() if not x.get_label().startswith("_") and x.get_marker() != "*"
        ]
        stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
        assert len(bands) == 2 and len(means) == 2, ax.get_title()
        # one colour per configuration, its band the colour of its mean line
        band_colours = [to_hex(band.get_facecolor()[0], keep_alpha=False) for band in bands]
        line_colours = [to_hex(line.get_color()) for line in means]
        assert band_colours == line_colours and len(set(line_colours)) == 2
        # the best point is marked only where lower or higher is better
        assert len(stars) == (2 if ax.get_title().startswith("swd") else 0)
    # bce's mean SWD ends lower than hinge's, and each band holds its mean line
    swd = axes[0]
    bce, hinge = [line.get_ydata()[-1] for line in swd.get_lines() if line.get_marker() == "o"]
    assert bce < hinge
    (legend,) = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == [
        "1: name=bce (seeds 0,1,2)",
        "2: name=hinge (seeds 0,1,2)",
        "best point of a line",
    ]
    assert inside(figure, legend) and all(inside(figure, ax.title) for ax in axes)
    with Image.open(plot) as image:
        assert image.info["Title"] == "ganlab compare"
        assert image.size == (int(figure.bbox.width), int(figure.bbox.height))
    # the table: one numbered row per configuration, as in the legend
    lines = result.output.splitlines()
    assert any(x.startswith("     1  quickstart  0,1,2") and x.endswith("bce") for x in lines)
    assert any(x.startswith("     2  quickstart  0,1,2") and x.endswith("hinge") for x in lines)


def test_one_line_per_run_without_over_seeds_labelled_by_what_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_configurations(tmp_path / "runs")
    figures = drawn_figures(monkeypatch)
    result = run_compare(str(tmp_path / "runs"), "--plot", str(tmp_path / "runs.png"))
    assert result.exit_code == 0, result.output
    (figure,) = figures
    for ax in figure.axes:
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]  # no bands
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[:2] == ["seed=0, name=bce", "seed=1, name=bce"]
    assert len(labels) == 7  # six runs and the best-point marker
    swd_lines = [line for line in figure.axes[0].get_lines() if line.get_marker() == "o"]
    assert len(swd_lines) == 6


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_the_same_command_again_replaces_its_own_plot_but_no_other_file(
    tmp_path: Path, suffix: str
) -> None:
    folders = two_configurations(tmp_path / "runs")
    plot = tmp_path / f"compare.{suffix}"
    first = run_compare(str(tmp_path / "runs"), "--plot", str(plot))
    assert first.exit_code == 0, first.output
    before = plot.read_bytes()
    # Again, with one run less: the plot is replaced by the new one.
    shutil.rmtree(folders[-1])
    again = run_compare(str(tmp_path / "runs"), "--plot", str(plot))
    assert again.exit_code == 0, again.output
    assert f"Plot: {plot}" in again.output
    assert plot.read_bytes() != before and is_marked(plot)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [plot.name]  # no temp left

    # A file of the same name that compare did not write is refused and left as it is:
    # another program's picture, or compare's own title in a file of another format.
    other = {"png": b"\x89PNG\r\n\x1a\n...", "svg": b"<svg/>", "pdf": b"%PDF-1.4 /Title (x)"}
    plot.write_bytes(other[suffix])
    refused = run_compare(str(tmp_path / "runs"), "--plot", str(plot))
    assert refused.exit_code == 2
    assert f"--plot {plot}: the file exists and ganlab compare did not write it" in refused.output
    assert plot.read_bytes() == other[suffix]


def test_a_picture_made_elsewhere_is_never_replaced(tmp_path: Path) -> None:
    two_configurations(tmp_path / "runs")
    plot = tmp_path / "compare.png"
    Image.new("RGB", (4, 4)).save(plot, pnginfo=None)
    before = plot.read_bytes()
    result = run_compare(str(tmp_path / "runs"), "--plot", str(plot))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert plot.read_bytes() == before
    jpeg = run_compare(str(tmp_path / "runs"), "--plot", str(tmp_path / "c.jpg"))
    assert jpeg.exit_code == 2
    assert "does not write .jpg files; it writes .png, .pdf or .svg" in jpeg.output
    assert not (tmp_path / "c.jpg").exists()


def test_the_table_fits_120_columns_for_six_runs_eight_keys_three_metrics(tmp_path: Path) -> None:
    """Six runs that differ in eight recipe keys (besides the seed), with three metrics:
    the table wraps into blocks of at most 120 columns, each starting with the run."""
    changes = [
        "loss.name",
        "optimizers.generator.lr",
        "optimizers.discriminator.lr",
        "train.batch_size",
        "train.ema",
        "generator.params.ngf",
        "discriminator.params.ndf",
        "data.params.image_size",
    ]
    values = [["bce", "hinge"], [2e-4, 1e-4], [2e-4, 4e-4], [64, 128], [None, 0.999], [32, 64],
              [32, 64], [32, 64]]  # fmt: skip
    names = []
    for i in range(6):
        recipe = recipe_of(
            i, **{key: values[k][(i >> (k % 3)) & 1] for k, key in enumerate(changes)}
        )
        rows = curves(i)
        for row in rows:
            if "swd" in row:
                row.update(swd_32=row["swd"] * 1.1, fid=row["swd"] * 0.5)
        names.append(write_run(tmp_path / "runs" / f"20261127-10000{i}-s{i}", recipe, rows).name)
    result = run_compare(str(tmp_path / "runs"), "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(x) for x in lines) <= 120, max(lines, key=len)
    blocks = [b.splitlines() for b in result.output.split("\n\n") if b.startswith("run ")]
    assert len(blocks) >= 2
    headers = " ".join(block[0] for block in blocks).split()
    for short in ["name", "generator.lr", "discriminator.lr", "batch_size", "ema", "ngf"]:
        assert short in headers
    for metric in ["swd", "swd_32", "fid", "d_gap"]:
        assert headers.count(metric) == 2  # its final and best columns
    for block in blocks:  # every block: a rule, then the six runs in order
        assert [row.split()[0] for row in block[2:]] == names
    # the full names, above the table (wrapped too)
    listed = flat(result.output).split("Recipe keys that differ: ")[1].split(" run ")[0]
    assert sorted(listed.split(", ")) == sorted(["seed", *changes])


def test_a_table_block_repeats_the_first_column() -> None:
    header = ["run", "a" * 50, "b" * 50, "c"]
    rows = [["r1", "1", "2", "3"], ["r2", "4", "5", "6"]]
    text = format_blocks(header, rows, right={1, 2, 3}, width=60)
    blocks = [block.splitlines() for block in text.split("\n\n")]
    assert [block[0].split()[0] for block in blocks] == ["run", "run"]
    assert all(len(line) <= 60 for block in blocks for line in block)
    assert [block[2].split() for block in blocks] == [["r1", "1"], ["r1", "2", "3"]]
    # a cell longer than 40 characters keeps its end
    assert clip("/data/" + "x" * 40 + "/img_align_celeba.zip").endswith("/img_align_celeba.zip")
