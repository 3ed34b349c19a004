"""A refused resume changes no file; checkpoints are checked after the safe load; an unreadable
newest checkpoint is skipped (named, not deleted) for the newest one that can be read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ganlab.files.checkpoint import load_checkpoint
from tests.conftest import invoke, only_run_dir
from tests.test_bad_input import snapshot
from tests.test_resume import recipe


@pytest.fixture
def stopped(tmp_path: Path) -> Path:
    """A run of 4 steps of 3-step epochs with checkpoints at steps 2 and 4 (kept: 2)."""
    result = invoke("run", str(recipe(tmp_path, steps=4)), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    return only_run_dir(tmp_path / "runs")


def resume(run_dir: Path, steps: int = 6) -> tuple[int, str]:
    result = invoke("run", "--resume", str(run_dir), "--set", f"train.steps={steps}")
    return result.exit_code, result.output


def edit_checkpoint(run_dir: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    path = run_dir / "checkpoints" / "step_000004.pt"
    state = load_checkpoint(path)
    change(state)
    torch.save(state, path)
    return path


def edit_metrics(run_dir: Path, change: Callable[[list[str]], None]) -> None:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines()
    change(lines)
    path.write_text("\n".join(lines) + "\n")


def other_rows_until_step_2(lines: list[str]) -> None:
    """Rows 1 and 2, the second not the one the run logged (a metrics.jsonl of another run
    that ends before the checkpoint: the checkpoint's rows cannot fill it in)."""
    del lines[2:]
    lines[1] = json.dumps({**json.loads(lines[1]), "loss_d": 123.0})


def drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda state: state.pop(key)


def put(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda state: state.update({key: value})


#: How the run folder is damaged, and what the refusal says (besides naming the file).
REFUSED: dict[str, tuple[Callable[[Path], Any], str]] = {
    "metrics.jsonl with a line that is not JSON": (
        lambda d: edit_metrics(d, lambda lines: lines.insert(1, "{not json")),
        "metrics.jsonl, line 2: not JSON",
    ),
    "metrics.jsonl that ends before the checkpoint, with rows of another run": (
        lambda d: edit_metrics(d, other_rows_until_step_2),
        "metrics.jsonl ends at step 2, but the checkpoint step_000004.pt is at step 4",
    ),
    "a checkpoint without opt_g": (
        lambda d: edit_checkpoint(d, drop("opt_g")),
        "step_000004.pt is not a complete ganlab checkpoint: it has no 'opt_g'",
    ),
    "a checkpoint whose step is negative": (
        lambda d: edit_checkpoint(d, put("step", -5)),
        "step_000004.pt: 'step' (the steps done) is -5; it is never below 0",
    ),
    "a checkpoint whose step is not a number": (
        lambda d: edit_checkpoint(d, put("step", "4")),
        "step_000004.pt: 'step' (the steps done) is a str",
    ),
    "a checkpoint whose step does not fit its epoch": (
        lambda d: edit_checkpoint(d, put("epoch", 0)),
        "step_000004.pt: step 4 cannot be in epoch 0 of 3 steps",
    ),
    "a checkpoint whose optimizer state is another model's": (
        lambda d: edit_checkpoint(d, lambda s: s["opt_g"]["param_groups"][0]["params"].append(99)),
        "step_000004.pt: its 'opt_g' (the generator's optimizer state) does not fit",
    ),
    "a checkpoint whose fixed latent vectors have another shape": (
        lambda d: edit_checkpoint(d, put("fixed_latents", torch.zeros(64, 3, 1, 1))),
        "its 'fixed_latents' (the fixed latent vectors) does not fit",
    ),
    "a checkpoint whose RNG state is damaged": (
        lambda d: edit_checkpoint(d, lambda s: s["rng"].update(torch=torch.zeros(3))),
        "its 'rng' (the random number generators' states) does not fit",
    ),
    "a run.json that is not JSON": (
        lambda d: (d / "run.json").write_text("{"),
        "run.json: cannot be read as JSON",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_resume_changes_no_file(stopped: Path, case: str) -> None:
    damage, message = REFUSED[case]
    damage(stopped)
    before = snapshot(stopped)
    exit_code, output = resume(stopped)
    assert exit_code == 2, output
    assert message in output
    assert output.count("ganlab: error: ") == 1 and "Traceback" not in output
    assert snapshot(stopped) == before  # recipe.yaml, run.json, metrics.jsonl: all as they were


def test_sample_and_eval_refuse_a_damaged_checkpoint_the_same_way(stopped: Path) -> None:
    path = edit_checkpoint(stopped, drop("generator"))
    before = snapshot(stopped)
    for command in (["sample", str(path), "-n", "4"], ["eval", str(path), "-m", "swd"]):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert snapshot(stopped) == before
        assert "it has no 'generator' (the generator's weights)" in result.output


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"<html>404 Not Found</html>", id="a web page"),
    ],
)
def test_an_unreadable_newest_checkpoint_is_skipped_for_the_one_before(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    """The resumed run names the bad file, continues from step 2 and ends exactly as a run
    straight through; nothing was deleted on the way."""
    straight = invoke("run", str(recipe(tmp_path, steps=6)), "--out", str(tmp_path / "a"))
    assert straight.exit_code == 0, straight.output
    first = invoke("run", str(recipe(tmp_path, steps=4)), "--out", str(tmp_path / "b"))
    assert first.exit_code == 0, first.output
    run_dir = only_run_dir(tmp_path / "b")
    bad = run_dir / "checkpoints" / "step_000004.pt"
    bad.write_bytes(damage(bad.read_bytes()))
    exit_code, output = resume(run_dir, steps=6)
    assert exit_code == 0, output
    assert f"skipping {bad}: not a readable checkpoint" in output
    assert f"continuing from {run_dir / 'checkpoints' / 'step_000002.pt'} (step 2)" in output
    assert "weights_only" not in output  # torch's advice to load it unsafely is not passed on
    info = json.loads((run_dir / "run.json").read_text())
    assert info["resumed"][-1]["from"] == "checkpoints/step_000002.pt"
    a, b = only_run_dir(tmp_path / "a"), run_dir
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()


def test_no_readable_checkpoint_at_all_is_refused(stopped: Path) -> None:
    for path in (stopped / "checkpoints").glob("step_*.pt"):
        path.write_bytes(b"garbage")
    before = snapshot(stopped)
    exit_code, output = resume(stopped)
    assert exit_code == 2
    assert f"No checkpoint of {stopped} can be read" in output
    assert "step_000002.pt: not a readable checkpoint" in output
    assert snapshot(stopped) == before


def test_the_wall_time_of_a_resumed_run_is_the_sum_of_its_segments(stopped: Path) -> None:
    first = json.loads((stopped / "run.json").read_text())
    exit_code, output = resume(stopped, steps=8)
    assert exit_code == 0, output
    info = json.loads((stopped / "run.json").read_text())
    assert info["wall_seconds"] > first["wall_seconds"]
    # Both segments: 8 steps of 40 images in batches of 16, 16 and 8 (2 epochs and 2 steps).
    assert info["images_seen"] == 2 * 40 + 2 * 16
    plot = str(stopped.parent / "compare.png")
    compared = json.loads(invoke("compare", str(stopped), "--json", "--plot", plot).output)
    assert compared["runs"][0]["wall_seconds"] == info["wall_seconds"]
