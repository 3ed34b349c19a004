"""Several processes through torchrun: 2 CPU processes on the gloo backend train, checkpoint,
resume exactly, and write one run folder and one log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from tests.conftest import invoke, only_run_dir, write_recipe

RECIPE = {
    "name": "ddp",
    "seed": 5,
    "device": "cpu",
    "data": {"name": "cartoon_faces", "params": {"count": 64, "image_size": 16}},
    "generator": {"name": "dcgan", "params": {"nz": 8, "ngf": 8}},
    "discriminator": {"name": "dcgan", "params": {"ndf": 8}},
    "loss": {"name": "bce"},
    "train": {"steps": 8, "batch_size": 8, "log_every": 2, "checkpoint_every": 2},
    "callbacks": [{"name": "console", "params": {"every": 1, "progress": "off"}}],
}


def torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ganlab",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_two_processes_train_log_once_and_resume_exactly(tmp_path: Path) -> None:
    path = write_recipe(tmp_path / "ddp.yaml", RECIPE)
    straight = torchrun("run", str(path), "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    run_a = only_run_dir(tmp_path / "a")  # one run folder for both processes
    rows = read_metrics(run_a / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 9))  # every step logged once
    # 64 images, 8 per process and step: 4 steps per epoch (the tutorial line says so, once).
    assert straight.stdout.count("[0/2][0/4]\tLoss_D: ") == 1
    info = json.loads((run_a / "run.json").read_text())
    assert info["processes"] == 2 and info["images_seen"] == 8 * 16

    first = torchrun("run", str(path), "--out", str(tmp_path / "b"), "--set", "train.steps=3")
    assert first.returncode == 0, first.stderr
    run_b = only_run_dir(tmp_path / "b")
    resumed = torchrun("run", "--resume", str(run_b), "--set", "train.steps=8")
    assert resumed.returncode == 0, resumed.stderr
    assert read_metrics(run_b / "metrics.jsonl") == rows
    state_a = load_checkpoint(run_a / "checkpoints" / "final.pt")
    state_b = load_checkpoint(run_b / "checkpoints" / "final.pt")
    assert state_a["processes"] == 2 and len(state_a["rng_by_rank"]) == 2
    for key, value in state_a["generator"].items():
        assert torch.equal(value, state_b["generator"][key]), key

    # One process cannot continue what two started (the data shards would change).
    alone = invoke("run", "--resume", str(run_b), "--set", "train.steps=12")
    assert alone.exit_code == 2
    assert "was trained by 2 process(es)" in alone.output


def test_two_processes_differ_from_one(tmp_path: Path) -> None:
    """Each process draws its own latent vectors and data shard: not one run done twice."""
    path = write_recipe(tmp_path / "ddp.yaml", {**RECIPE, "train": {**RECIPE["train"], "steps": 2}})
    two = torchrun("run", str(path), "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    one = invoke("run", str(path), "--out", str(tmp_path / "one"))
    assert one.exit_code == 0, one.output
    rows_two = read_metrics(only_run_dir(tmp_path / "two") / "metrics.jsonl")
    rows_one = read_metrics(only_run_dir(tmp_path / "one") / "metrics.jsonl")
    assert rows_two[0]["loss_d"] != rows_one[0]["loss_d"]
