"""Learning-rate schedules whose length follows the run's, and the logged learning rates:
`--set train.steps=N` ends a schedule at step N, a length the recipe gives is kept, a
resume (at the same or another length) continues as an uninterrupted run of its length."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from ganlab.files.metrics_log import read_metrics
from tests.conftest import invoke, only_run_dir
from tests.test_resume import recipe

LR = 2e-4  # the recipe's rate (OptimizerSpec's default)

#: A callback that asks the run to stop after step $STOP_AT (as a hook may), so that an
#: unfinished run of the full length can be resumed.
STOP = """
import os

import ganlab


class StopAt:
    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if str(run.step) == os.environ.get("STOP_AT"):
            run.stop()


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("stop_at", lambda params: StopAt())
"""

DECAY = "{name: LinearLR, params: {start_factor: 1.0, end_factor: 0.1}}"


CALLBACKS = 'callbacks=[{name: stop_at}, {name: console, params: {every: 3, progress: "off"}}]'


def run(tmp_path: Path, out: str, *sets: str, resume: Path | None = None) -> Path:
    """A run of `tests.test_resume.recipe` (8 steps, a checkpoint every 2) with ``sets``;
    its console output in ``console.txt`` of the run folder."""
    (tmp_path / "stop.py").write_text(STOP)
    args = ["run", str(recipe(tmp_path, steps=8)), "-p", str(tmp_path / "stop.py")]
    args += ["--resume", str(resume)] if resume else ["--out", str(tmp_path / out)]
    for change in (CALLBACKS, *sets):
        args += ["--set", change]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    folder = resume or only_run_dir(tmp_path / out)
    (folder / "console.txt").write_text(result.output)
    return folder


def rates(folder: Path, key: str) -> list[float]:
    """The logged learning rate ``key`` of every training row, in step order."""
    rows = [row for row in read_metrics(folder / "metrics.jsonl") if "loss_d" in row]
    assert [row["step"] for row in rows] == list(range(1, len(rows) + 1))
    return [row[key] for row in rows]


def test_a_schedule_without_its_length_ends_at_the_runs_last_step(tmp_path: Path) -> None:
    folder = run(
        tmp_path,
        "a",
        f"optimizers.generator.schedule={DECAY}",
        "optimizers.discriminator.schedule={name: CosineAnnealingLR, params: {eta_min: 1e-5}}",
        "train.steps=6",
    )
    # The rate after each step (the next step's): a tenth of the recipe's at step 6, not 8.
    assert rates(folder, "lr_generator") == pytest.approx(
        [LR * (1 - 0.9 * s / 6) for s in range(1, 7)], rel=1e-12
    )
    cosine = [1e-5 + (LR - 1e-5) * (1 + math.cos(math.pi * s / 6)) / 2 for s in range(1, 7)]
    assert rates(folder, "lr_discriminator") == pytest.approx(cosine, rel=1e-12)
    # The saved recipe keeps the length unset: it follows train.steps on a resume too.
    saved = yaml.safe_load((folder / "recipe.yaml").read_text())["optimizers"]
    assert saved["generator"]["schedule"]["params"] == {"start_factor": 1.0, "end_factor": 0.1}
    assert "T_max" not in saved["discriminator"]["schedule"]["params"]
    keys = json.loads((folder / "run.json").read_text())["keys"]
    assert keys["lr_generator"] == {"namespace": "train", "better": None}  # W&B's train/
    # The console's line of step 4 (index 0 of the second epoch) shows them after step 4.
    lines = (folder / "console.txt").read_text().splitlines()
    line = next(s for s in lines if s.startswith("[1/"))
    assert line.endswith(f"\tlr_discriminator: {cosine[3]:.4g}\tlr_generator: {LR * 0.4:.4g}")


def test_a_length_the_recipe_gives_is_kept_and_only_schedules_log_a_rate(tmp_path: Path) -> None:
    folder = run(
        tmp_path,
        "a",
        "optimizers.generator.schedule="
        "{name: LinearLR, params: {start_factor: 1.0, end_factor: 0.5, total_iters: 2}}",
        "optimizers.discriminator.schedule={name: OneCycleLR, params: {max_lr: 4e-4}}",
        "train.steps=4",
    )
    assert rates(folder, "lr_generator") == pytest.approx([0.75 * LR, 0.5 * LR, 0.5 * LR, 0.5 * LR])
    # One cycle over the run's 4 steps: its lowest rate for the last step (after step 3).
    assert rates(folder, "lr_discriminator")[2] == pytest.approx(4e-4 / 25 / 1e4)
    plain = run(tmp_path, "b", "train.steps=2")
    assert not any(
        key.startswith("lr_") for row in read_metrics(plain / "metrics.jsonl") for key in row
    )


def test_a_one_cycle_shorter_than_the_run_is_refused(tmp_path: Path) -> None:
    """torch would stop the run with an error at the cycle's end: refused before it starts."""
    path = recipe(tmp_path, steps=4)
    cycle = "{name: OneCycleLR, params: {max_lr: 4e-4, total_steps: 3}}"
    result = invoke(
        "run",
        str(path),
        "--out",
        str(tmp_path / "o"),
        "--set",
        f"optimizers.generator.schedule={cycle}",
    )
    assert result.exit_code == 2, result.output
    assert "optimizers.generator.schedule: OneCycleLR's cycle has 3 steps, but the run has 4" in (
        result.output
    )


def test_resume_continues_a_schedule_that_follows_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decay = f"optimizers.generator.schedule={DECAY}"
    straight = run(tmp_path, "a", decay)
    # Stopped at step 4 of 8, then resumed: every row as the uninterrupted run's.
    monkeypatch.setenv("STOP_AT", "4")
    stopped = run(tmp_path, "b", decay)
    monkeypatch.delenv("STOP_AT")
    assert len(rates(stopped, "lr_generator")) == 4
    resumed = run(tmp_path, "b", decay, resume=stopped)
    assert read_metrics(resumed / "metrics.jsonl") == read_metrics(straight / "metrics.jsonl")
    # A run of 4 steps, resumed to 8 (the recipe's): its schedule had ended at step 4; from
    # step 5 on it is the 8-step run's, rate for rate.
    short = run(tmp_path, "c", decay, "train.steps=4")
    longer = rates(run(tmp_path, "c", decay, resume=short), "lr_generator")
    assert longer[3] == pytest.approx(0.1 * LR, rel=1e-12)
    assert longer[4:] == rates(straight, "lr_generator")[4:]
