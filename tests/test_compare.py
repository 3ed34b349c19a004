"""`ganlab compare`: the table of runs, the keys that differ, the overlay plot, the errors."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from ganlab.compare import compare, run_labels, short_keys, summarize
from ganlab.errors import GanlabError
from ganlab.folders import read_metrics
from ganlab.recipe_diff import differing_keys, flatten
from tests.conftest import RECIPES, TINY_QUICKSTART, invoke

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
    assert header[-1] == "optimizers.generator.lr"  # the one differing key besides seed
    assert header.count("seed") == 1  # seed has its own column, not a second one
    assert [row[0] for row in rows] == [first.name, second.name]
    assert [row[1:5] for row in rows] == [
        ["quickstart", "completed", "0", "4"],
        ["quickstart", "completed", "1", "4"],
    ]
    assert [row[-1] for row in rows] == ["0.0002", "0.0001"]
    assert f"Loss curves: {plot}" in result.output

    with Image.open(plot) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.verify()
    assert 600 <= width <= 3000 and 300 <= height <= 2000


def test_a_parent_folder_compares_every_run_under_it(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    out, first, second = runs
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = runner.invoke(compare, [str(out), "--json"])
        assert Path("compare.png").is_file()  # the default plot, in the current folder
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
    row = next(x for x in lines if x.startswith("quickstart  5,6,7"))
    # final: 20, 24, 25 -> 23 ± 2.646; best: the same values here (each run's lowest)
    assert "23 ± 2.6" in row and row.split()[-1] == "0.0002"
    data = json.loads(run_compare(*args[:2], "--json", "--plot", str(tmp_path / "q.png")).output)
    (group,) = [g for g in data["groups"] if g["seeds"] == [5, 6, 7]]
    final = group["metrics"]["swd"]["final"]
    assert final["n"] == 3 and final["mean"] == pytest.approx(23.0)
    assert final["std"] == pytest.approx(math.sqrt(((20 - 23) ** 2 + 1 + 4) / 2))
