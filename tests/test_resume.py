"""Exact resume: SIGKILL at random steps, SIGTERM/SIGINT, longer training, refused resumes."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from tests.conftest import invoke, only_run_dir, write_recipe

STEPS = 24


def recipe(tmp_path: Path, **train) -> Path:
    """A tiny run on the built-in faces: 3 steps per epoch, a checkpoint every 2 steps."""
    spec = {
        "name": "resumable",
        "seed": 5,
        "device": "cpu",
        "data": {"name": "cartoon_faces", "params": {"count": 40, "image_size": 16}},
        "generator": {"name": "dcgan", "params": {"nz": 8, "ngf": 8}},
        "discriminator": {"name": "dcgan", "params": {"ndf": 8}},
        "loss": {"name": "bce"},
        "train": {
            "steps": STEPS,
            "batch_size": 16,
            "log_every": 1,
            "checkpoint_every": 2,
            "keep_checkpoints": 2,
            **train,
        },
        "callbacks": [{"name": "samples", "params": {"every": 5}}],
    }
    return write_recipe(tmp_path / "resumable.yaml", spec)


def ganlab(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ganlab.commands.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_rows(run_parent: Path, rows: int, proc: subprocess.Popen) -> Path:
    """Wait until the run under ``run_parent`` has logged ``rows`` steps; return its folder."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        for metrics in run_parent.glob("*/*/metrics.jsonl"):
            if len(metrics.read_text().splitlines()) >= rows:
                return metrics.parent
        time.sleep(0.01)
    raise AssertionError(f"the run ended or stalled before step {rows}: {proc.communicate()}")


def final_state(run_dir: Path) -> tuple[list[dict], dict]:
    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    return read_metrics(run_dir / "metrics.jsonl"), state


def assert_same_run(a: Path, b: Path) -> None:
    rows_a, state_a = final_state(a)
    rows_b, state_b = final_state(b)
    assert [r["step"] for r in rows_a] == list(range(1, STEPS + 1))
    assert rows_a == rows_b  # every step's losses, bit for bit
    for net in ("generator", "discriminator"):
        for key, value in state_a[net].items():
            assert torch.equal(value, state_b[net][key]), (net, key)
    for opt in ("opt_g", "opt_d"):
        for index, slot in state_a[opt]["state"].items():
            assert torch.equal(slot["exp_avg"], state_b[opt]["state"][index]["exp_avg"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("straight")
    result = invoke("run", str(recipe(tmp)), "--out", str(tmp / "runs"))
    assert result.exit_code == 0, result.output
    return only_run_dir(tmp / "runs")


def test_sigkill_at_random_steps_then_resume_is_exact(tmp_path: Path, uninterrupted: Path) -> None:
    path, out = recipe(tmp_path), tmp_path / "runs"
    rng = random.Random(1234)
    proc = ganlab("run", str(path), "--out", str(out))
    run_dir = wait_for_rows(out, rng.randint(3, 8), proc)
    proc.kill()  # SIGKILL: no handler runs, the process just vanishes
    proc.wait()
    for _ in range(2):
        done = len(read_metrics(run_dir / "metrics.jsonl"))
        proc = ganlab("run", "--resume", str(run_dir))
        wait_for_rows(out, min(STEPS - 2, done + rng.randint(2, 6)), proc)
        proc.kill()
        proc.wait()
    final = ganlab("run", "--resume", str(run_dir))
    _, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and len(info["resumed"]) == 3
    assert_same_run(run_dir, uninterrupted)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_writes_a_checkpoint_and_says_how_to_resume(
    tmp_path: Path, uninterrupted: Path, signum: int, code: int
) -> None:
    path, out = recipe(tmp_path), tmp_path / "runs"
    proc = ganlab("run", str(path), "--out", str(out))
    run_dir = wait_for_rows(out, 5, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"ganlab run --resume {run_dir}" in stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    stopped_at = info["steps"]
    assert (run_dir / "checkpoints" / f"step_{stopped_at:06d}.pt").is_file()
    resumed = invoke("run", "--resume", str(run_dir))
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(run_dir, uninterrupted)


def test_resume_with_longer_training_continues_exactly(tmp_path: Path, uninterrupted) -> None:
    path, out = recipe(tmp_path), tmp_path / "runs"
    short = invoke("run", str(path), "--out", str(out), "--set", "train.steps=10")
    assert short.exit_code == 0, short.output
    run_dir = only_run_dir(out)
    again = invoke("run", "--resume", str(run_dir))
    assert again.exit_code == 2 and "already trained 10 steps" in again.output
    longer = invoke("run", str(path), "--resume", str(run_dir), "--set", f"train.steps={STEPS}")
    assert longer.exit_code == 0, longer.output
    assert_same_run(run_dir, uninterrupted)


def test_resume_auto_picks_the_newest_unfinished_run(tmp_path: Path) -> None:
    path, out = recipe(tmp_path, steps=6), tmp_path / "runs"
    assert invoke("run", str(path), "--out", str(out)).exit_code == 0
    done = only_run_dir(out)
    result = invoke("run", str(path), "--out", str(out), "--resume", "auto")
    assert result.exit_code == 2 and "no unfinished run" in result.output
    # Make the finished run look unfinished (as after a crash) and resume it with auto.
    info = json.loads((done / "run.json").read_text())
    info["status"] = "running"
    (done / "run.json").write_text(json.dumps(info))
    (done / "checkpoints" / "step_000006.pt").unlink()
    result = invoke("run", str(path), "--out", str(out), "--resume", "auto")
    assert result.exit_code == 0, result.output
    assert f"Run folder: {done}" in result.output


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_with_another_recipe_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path, out = recipe(tmp_path, steps=4), tmp_path / "runs"
    assert invoke("run", str(path), "--out", str(out)).exit_code == 0
    run_dir = only_run_dir(out)
    before = snapshot(run_dir)
    result = invoke(
        "run",
        str(path),
        "--resume",
        str(run_dir),
        "--set",
        "train.steps=8",
        "--set",
        "optimizers.generator.lr=1e-3",
        "--set",
        "train.batch_size=8",
    )
    assert result.exit_code == 2
    assert "differs from the run's in optimizers.generator.lr, train.batch_size" in result.output
    assert snapshot(run_dir) == before


def test_resume_from_a_folder_without_checkpoint(tmp_path: Path) -> None:
    path, out = recipe(tmp_path, steps=4), tmp_path / "runs"
    assert invoke("run", str(path), "--out", str(out)).exit_code == 0
    run_dir = only_run_dir(out)
    for ckpt in (run_dir / "checkpoints").iterdir():
        ckpt.unlink()
    before = snapshot(run_dir)
    result = invoke("run", "--resume", str(run_dir))
    assert result.exit_code == 2 and "has no checkpoint to resume from" in result.output
    assert snapshot(run_dir) == before
    not_a_run = invoke("run", "--resume", str(tmp_path))
    assert not_a_run.exit_code == 2 and "not a run folder" in not_a_run.output


def test_checkpoint_with_pickled_code_is_refused(tmp_path: Path) -> None:
    path, out = recipe(tmp_path, steps=4), tmp_path / "runs"
    assert invoke("run", str(path), "--out", str(out), "--set", "train.steps=2").exit_code == 0
    run_dir = only_run_dir(out)
    evil = run_dir / "checkpoints" / "step_000003.pt"
    # A pickled object of a class: loading it fully would import and run code.
    torch.save({"generator": {}, "payload": os.path.join}, evil)
    before = snapshot(run_dir)
    result = invoke("run", "--resume", str(run_dir), "--set", "train.steps=4")
    assert result.exit_code == 2
    assert "is not a checkpoint ganlab can load safely" in result.output
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_resume_is_exact(tmp_path: Path, precision: str) -> None:
    """bf16 autocast, and fp16 with its gradient scalers (saved in checkpoints), resume exactly."""
    path = recipe(tmp_path, steps=8, precision=precision)
    straight = invoke("run", str(path), "--out", str(tmp_path / "a"))
    assert straight.exit_code == 0, straight.output
    first = invoke("run", str(path), "--out", str(tmp_path / "b"), "--set", "train.steps=4")
    assert first.exit_code == 0, first.output
    run_dir = only_run_dir(tmp_path / "b")
    if precision == "fp16":
        scalers = load_checkpoint(run_dir / "checkpoints" / "final.pt")["scalers"]
        assert set(scalers) == {"generator", "discriminator"}
    assert invoke("run", "--resume", str(run_dir), "--set", "train.steps=8").exit_code == 0
    rows_a, state_a = final_state(only_run_dir(tmp_path / "a"))
    rows_b, state_b = final_state(run_dir)
    assert len(rows_a) == 8 and rows_a == rows_b
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in rows_a)
    for key, value in state_a["generator"].items():
        assert torch.equal(value, state_b["generator"][key]), key


def test_ema_and_critic_steps_resume_exactly(tmp_path: Path) -> None:
    """WGAN-GP with 2 critic updates a step and an EMA generator: a run resumed half-way
    ends exactly like one run straight through, the averaged weights included."""
    path = recipe(tmp_path, steps=8, d_steps=2, ema=0.9)
    wgan = ["--set", "loss.name=wgan_gp", "--set", "discriminator.params.norm=layer"]
    straight = invoke("run", str(path), "--out", str(tmp_path / "a"), *wgan)
    assert straight.exit_code == 0, straight.output
    first = invoke("run", str(path), "--out", str(tmp_path / "b"), "--set", "train.steps=4", *wgan)
    assert first.exit_code == 0, first.output
    run_dir = only_run_dir(tmp_path / "b")
    assert invoke("run", "--resume", str(run_dir), "--set", "train.steps=8").exit_code == 0
    rows_a, state_a = final_state(only_run_dir(tmp_path / "a"))
    rows_b, state_b = final_state(run_dir)
    assert len(rows_a) == 8 and rows_a == rows_b
    ema_a, ema_b = state_a["generator_ema"], state_b["generator_ema"]
    assert int(ema_a["n_averaged"]) == 8
    for key, value in ema_a.items():
        assert torch.equal(value, ema_b[key]), key


def test_ema_is_the_moving_average_of_the_generator(tmp_path: Path) -> None:
    """After step 1 the average is G; after step 2 it is G1 + (1 - decay) (G2 - G1) (the decay
    from the first update: `ema_warmup: false`; tests/test_step_options.py has the ramp)."""
    path = recipe(tmp_path, steps=2, ema=0.75, checkpoint_every=1, ema_warmup=False)
    assert invoke("run", str(path), "--out", str(tmp_path)).exit_code == 0
    run_dir = only_run_dir(tmp_path)
    step1 = load_checkpoint(run_dir / "checkpoints" / "step_000001.pt")
    step2 = load_checkpoint(run_dir / "checkpoints" / "step_000002.pt")
    weight = "main.0.weight"
    g1, g2 = step1["generator"][weight], step2["generator"][weight]
    assert torch.equal(step1["generator_ema"][f"module.{weight}"], g1)
    torch.testing.assert_close(step2["generator_ema"][f"module.{weight}"], g1 + 0.25 * (g2 - g1))
    assert not torch.equal(g1, g2)
