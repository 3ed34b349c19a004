"""Tools around runs and the files they write tell the truth: `compare` leaves out a broken
run folder and names it; metrics.jsonl is strict JSON, and a row cut by a kill is reported
(and resumed past); `sample` and `eval` refuse a generator that is not finite, say when the
data set is smaller than asked, name a file that is not a checkpoint, and write their outputs
whole or not at all."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import MetricsLog, read_metrics
from ganlab_plugins.metrics.swd import swd
from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, train
from tests.runfolders import curves, recipe_of, write_run
from tests.test_resume import recipe as resumable_recipe


def strict(line: str) -> object:
    """A line parsed as strict JSON readers (jq, JavaScript) parse it: no NaN or Infinity."""

    def refuse(token: str) -> object:
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny quickstart run on 64 faces of 16x16."""
    out = tmp_path_factory.mktemp("honest")
    return train(RECIPES / "quickstart.yaml", out, *TINY_QUICKSTART)


# --- compare -------------------------------------------------------------------------------


def test_compare_leaves_out_broken_run_folders_and_names_each(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (0, 1):
        write_run(root / f"good-s{seed}", recipe_of(seed), curves(seed, steps=50))
    bad_json = write_run(root / "bad-json", recipe_of(2), curves(2, steps=50))
    (bad_json / "run.json").write_text("{", "utf-8")
    garbage = write_run(root / "garbage-row", recipe_of(3), curves(3, steps=50))
    with open(garbage / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write("garbage\n{}\n")
    no_recipe = write_run(root / "no-recipe", recipe_of(4), curves(4, steps=50))
    (no_recipe / "recipe.yaml").unlink()

    result = invoke("compare", str(root), "--plot", str(tmp_path / "c.png"))
    assert result.exit_code == 0, result.output
    assert "good-s0" in result.stdout and "good-s1" in result.stdout
    notes = result.stderr.splitlines()
    assert len(notes) == 3, result.stderr  # one line per broken folder
    for folder, reason in [
        (bad_json, "run.json: cannot be read as JSON"),
        (garbage, "metrics.jsonl, line"),
        (no_recipe, "recipe.yaml: missing"),
    ]:
        assert any(str(folder) in note and reason in note for note in notes), (folder, notes)
        assert folder.name not in result.stdout


def test_compare_refuses_when_no_run_folder_can_be_read(tmp_path: Path) -> None:
    broken = write_run(tmp_path / "runs" / "only", recipe_of(0), curves(0, steps=20))
    (broken / "run.json").write_text("[1, 2", "utf-8")
    result = invoke("compare", str(broken), "--plot", str(tmp_path / "c.png"))
    assert result.exit_code == 2, result.output
    assert "Nothing to compare" in result.output
    assert f"{broken / 'run.json'}: cannot be read as JSON" in result.output
    assert not (tmp_path / "c.png").exists()


# --- metrics.jsonl -------------------------------------------------------------------------


def test_metrics_jsonl_is_strict_json_and_reads_back_non_finite_values(tmp_path: Path) -> None:
    """A diverged run's nan and inf are spelled so that strict readers accept every line;
    ganlab's readers (compare, runs, resume) get the floats back; finite rows are as
    json.dumps writes them."""
    run = write_run(tmp_path / "runs" / "diverged", recipe_of(0), [])
    log = MetricsLog(run / "metrics.jsonl")
    finite = {"step": 1, "epoch": 0, "loss_d": 1.25, "loss_g": 0.5}
    rows = [
        finite,
        {"step": 2, "epoch": 0, "loss_d": math.nan, "loss_g": math.inf},
        {"step": 2, "swd": -math.inf},
    ]
    for row in rows:
        log.write(row)
    log.close()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines[0] == json.dumps(finite)
    assert [strict(line) for line in lines][1]["loss_d"] == "NaN"
    back = read_metrics(run / "metrics.jsonl")
    assert math.isnan(back[1]["loss_d"]) and back[1]["loss_g"] == math.inf
    assert back[2]["swd"] == -math.inf

    result = invoke("compare", str(run), "--plot", str(tmp_path / "c.png"), "--json")
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)["runs"][0]
    assert compared["final"]["loss_d"] is None  # nan, written as JSON's null by --json
    assert compared["metrics"]["swd"] == {"final": None, "best": None, "best_step": None}


def test_a_cut_last_row_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss_d": 1.0}\n{"step": 2, "loss_d": 0.9', "utf-8")
    assert read_metrics(path) == [{"step": 1, "loss_d": 1.0}]
    err = capsys.readouterr().err
    assert f"{path}, line 2: the last row is cut off" in err
    assert len(err.splitlines()) == 1


def test_resume_recovers_the_rows_a_kill_cut_from_the_checkpoint(tmp_path: Path) -> None:
    """The row of the checkpoint's step is half on disk (a crash before the file reached
    it): the resumed run takes the rows from the checkpoint and ends as a run straight
    through."""
    straight = train(resumable_recipe(tmp_path, steps=6), tmp_path / "a")
    stopped = train(resumable_recipe(tmp_path, steps=4), tmp_path / "b")
    path = stopped / "metrics.jsonl"
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    assert json.loads(last)["step"] == 4  # the checkpoint's step
    path.write_text(text[: len(text) - len(last) // 2 - 1])  # cut in the middle of that row

    result = invoke("run", "--resume", str(stopped), "--set", "train.steps=6")
    assert result.exit_code == 0, result.output
    assert f"{path}, line 4: the last row is cut off" in result.stderr
    assert "taken from step_000004.pt" in result.stderr
    assert path.read_text() == (straight / "metrics.jsonl").read_text()


# --- a generator that is not finite ---------------------------------------------------------


@pytest.fixture
def diverged(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run's final checkpoint whose generator weights are NaN."""
    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    first = next(iter(state["generator"]))
    state["generator"][first] = torch.full_like(state["generator"][first], math.nan)
    path = tmp_path / "diverged.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("command", [["sample", "-n", "4"], ["eval", "-m", "swd"]])
def test_sample_and_eval_refuse_a_generator_that_is_not_finite(
    diverged: Path, tmp_path: Path, command: list[str]
) -> None:
    out = ["--out", str(tmp_path / "s.png")] if command[0] == "sample" else []
    result = invoke(command[0], str(diverged), *command[1:], *out)
    assert result.exit_code == 2, result.output
    assert f"{diverged}: the generator's weights are not finite" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "s.png").exists()


def test_swd_of_images_that_are_not_finite_is_nan() -> None:
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    fake = real.clone()
    fake[0, 0, 0, 0] = math.nan
    scores = swd(real, fake)
    assert set(scores) == {"swd", "swd_16"}
    assert all(math.isnan(value) for value in scores.values())


def test_eval_says_when_the_data_set_has_fewer_images_than_asked(run_dir: Path) -> None:
    result = invoke(
        "eval", str(run_dir), "-m", "swd", "--set", "metrics.0.params.images=1000", "--json"
    )
    assert result.exit_code == 0, result.output
    assert "swd: the data set has 64 images, fewer than images=1000" in result.stderr
    assert math.isfinite(json.loads(result.stdout)["swd"])


# --- a file that is not a checkpoint -------------------------------------------------------


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_a_recipe_or_an_image_given_as_checkpoint_is_named_for_what_it_is(
    tmp_path: Path, command: str
) -> None:
    image = tmp_path / "grid.png"
    Image.new("RGB", (8, 8)).save(image)
    recipe = tmp_path / "mine.pt"  # a recipe, whatever its name says
    recipe.write_text(yaml.safe_dump(recipe_of(0)), "utf-8")
    for path, what in [
        (RECIPES / "quickstart.yaml", "it is a YAML recipe, not a torch file"),
        (recipe, "it is a YAML recipe, not a torch file"),
        (image, "it is a PNG image, not a torch file"),
    ]:
        result = invoke(command, str(path))
        assert result.exit_code == 2, result.output
        assert f"{path}: not a readable checkpoint; {what}" in result.output
        assert "truncated" not in result.output and "load key" not in result.output


# --- sample: whole or nothing --------------------------------------------------------------


def ganlab_sample(*args: str) -> subprocess.Popen:
    """`ganlab sample` as from a terminal: SIGINT is Ctrl-C even when the test suite itself
    was started in the background (`nohup ... &`), whose children inherit SIGINT ignored."""
    return subprocess.Popen(
        [sys.executable, "-m", "ganlab.commands.cli", "sample", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def interrupt_when(proc: subprocess.Popen, started: callable) -> None:  # type: ignore[valid-type]
    """Send SIGINT (Ctrl-C) as soon as ``started()`` is true, and wait for the process."""
    deadline = time.monotonic() + 120
    while not started():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never started writing"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)


def staging_exists(parent: Path) -> bool:
    """Whether a `ganlab sample` call has made its staging folder in ``parent``."""
    return parent.is_dir() and any(p.name.startswith(".ganlab-sample-") for p in parent.iterdir())


def written(parent: Path, suffix: str) -> bool:
    """Whether any file ending in ``suffix`` is under ``parent``, staged or not."""
    return any(p.is_file() for p in parent.rglob(f"*{suffix}"))


def test_an_interrupted_separate_leaves_nothing_and_a_rerun_writes_it_all(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "samples" / "many"
    args = [str(run_dir), "--separate", "-n", "20000", "--out", str(out)]
    proc = ganlab_sample(*args)
    # Ctrl-C as soon as the call has begun its outputs (its staging folder exists): 20,000
    # images take far longer to draw and write than the signal takes to land, even on a
    # loaded machine (3,000 were written before a busy CI's signal landed). The command
    # stops at the signal, so the count costs nothing.
    interrupt_when(proc, lambda: staging_exists(tmp_path / "samples"))
    assert proc.returncode == 130
    assert list((tmp_path / "samples").iterdir()) == []  # no partial folder, no staging

    result = invoke("sample", *args[:-2], "-n", "20", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"{i:04d}.png" for i in range(20)]


def test_an_interrupted_interpolate_writes_both_files_or_neither(
    run_dir: Path, tmp_path: Path
) -> None:
    png = tmp_path / "walks" / "walk.png"
    gif = png.with_suffix(".gif")
    args = [str(run_dir), "--interpolate", "--rows", "100", "--frames", "100", "--out", str(png)]
    proc = ganlab_sample(*args)
    interrupt_when(proc, lambda: written(png.parent, ".png"))  # the grid is done, the GIF not
    assert list(png.parent.iterdir()) in ([], [png, gif], [gif, png])
    if gif.exists():
        Image.open(gif).seek(197)  # all 198 frames
    assert not any(p.name.startswith(".") for p in png.parent.iterdir())


def test_a_killed_samples_leftover_does_not_block_a_rerun(run_dir: Path, tmp_path: Path) -> None:
    """What a `sample --interpolate` killed outright (SIGKILL) leaves: its staging folder
    with a 0-byte GIF. The rerun writes the outputs and removes the leftover."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "walks"
    leftover = folder / f".ganlab-sample-{dead.pid}.partial"
    leftover.mkdir(parents=True)
    (leftover / "walk.png").write_bytes(b"\x89PNG")
    (leftover / "walk.gif").write_bytes(b"")
    png = folder / "walk.png"
    result = invoke("sample", str(run_dir), "--interpolate", "--rows", "2", "--out", str(png))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["walk.gif", "walk.png"]
    Image.open(png.with_suffix(".gif")).seek(17)  # a whole GIF: 2 * 10 - 2 frames
