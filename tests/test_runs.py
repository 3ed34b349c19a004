"""Whole runs through the CLI: the tutorial recipe on CelebA-shaped data, the quickstart,
determinism, and what a run folder holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from tests.conftest import (
    RECIPES,
    TINY,
    TINY_QUICKSTART,
    invoke,
    only_run_dir,
    tiny_recipe,
    write_recipe,
)

CELEBA = str(RECIPES / "dcgan_celeba.yaml")


def tiny_celeba_args(root: Path, out: Path) -> list[str]:
    args = ["run", CELEBA, "--out", str(out), "--set", f"data.params.root={root}"]
    for override in TINY:
        args += ["--set", override]
    return args


@pytest.mark.parametrize("layout", ["folder", "zip"])
def test_dcgan_celeba_end_to_end(layout, celeba_dir, celeba_zip, tmp_path) -> None:
    root = celeba_dir if layout == "folder" else celeba_zip
    result = invoke(*tiny_celeba_args(root, tmp_path), "--set", "callbacks.0.params.every=1")
    assert result.exit_code == 0, result.output
    # The tutorial's stats line, at every iteration here (every=1): 20 images / 8 = 3 per epoch.
    assert "Random Seed: 999" in result.output
    for i in range(3):
        assert f"[0/1][{i}/3]\tLoss_D: " in result.output
    assert "\tD(G(z)): " in result.output and " / " in result.output

    run_dir = only_run_dir(tmp_path)
    assert run_dir.parent.name == "dcgan_celeba" and run_dir.name.endswith("-s999")
    resolved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert resolved["data"]["params"]["root"] == str(root)
    assert resolved["train"]["steps"] == 3

    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["seed"] == 999 and info["steps"] == 3
    assert info["device"] == "cpu"
    assert {"torch", "torchvision", "ganlab", "python"} <= info["versions"].keys()

    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "d_fake_after"} <= rows[0].keys()

    grid = Image.open(run_dir / "samples" / "final.png")
    assert grid.size == (8 * 16 + 9 * 2, 8 * 16 + 9 * 2)  # 8x8 grid of 16x16, padding 2
    assert (run_dir / "samples" / "step_000001.png").is_file()

    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    assert state["step"] == 3 and "main.0.weight" in state["generator"]


def test_dcgan_celeba_without_data_says_where_to_get_it(tmp_path: Path) -> None:
    result = invoke(
        "run", CELEBA, "--out", str(tmp_path), "--set", f"data.params.root={tmp_path}/x"
    )
    assert result.exit_code == 2
    assert "CelebA not found" in result.output
    assert (
        "img_align_celeba.zip" in result.output and "img_align_celeba/000001.jpg" in result.output
    )
    assert "--set data.params.root=" in result.output
    assert not any(tmp_path.iterdir())  # no run folder for a run that never started


def test_without_data_no_traceback_from_the_console_script(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "ganlab.commands.cli", "run", CELEBA, "--out", str(tmp_path)]
    args += ["--set", f"data.params.root={tmp_path}/none"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ganlab: error: CelebA not found")
    assert "Traceback" not in proc.stderr
    debug = subprocess.run([*args, "--debug"], capture_output=True, text=True, cwd=tmp_path)
    assert "Traceback" in debug.stderr and "GanlabError" in debug.stderr


def test_quickstart_runs_a_few_steps(tmp_path: Path) -> None:
    result = invoke(
        "run",
        str(RECIPES / "quickstart.yaml"),
        "--out",
        str(tmp_path),
        "--set",
        "train.steps=4",
        "--set",
        "data.params.count=256",
        "--set",
        "callbacks.0.params.every=2",
    )
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path)
    assert (run_dir / "samples" / "final.png").is_file()
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows if "loss_d" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in rows if "swd" in r] == [4]  # the quickstart's metric, at the end


def _run_once(recipe: Path, out: Path) -> Path:
    result = invoke("run", str(recipe), "--out", str(out))
    assert result.exit_code == 0, result.output
    return only_run_dir(out)


def test_same_recipe_and_seed_give_identical_runs(tmp_path: Path) -> None:
    recipe = tiny_recipe("unused")
    recipe["data"] = {"name": "cartoon_faces", "params": {"count": 40, "image_size": 16}}
    recipe["train"] = {"steps": 12, "batch_size": 16, "log_every": 5}  # 3 per epoch: 4 epochs
    path = write_recipe(tmp_path / "r.yaml", recipe)
    first, second = _run_once(path, tmp_path / "a"), _run_once(path, tmp_path / "b")
    rows_a, rows_b = read_metrics(first / "metrics.jsonl"), read_metrics(second / "metrics.jsonl")
    assert len(rows_a) == 12 and rows_a == rows_b
    state_a = load_checkpoint(first / "checkpoints" / "final.pt")
    state_b = load_checkpoint(second / "checkpoints" / "final.pt")
    for net in ("generator", "discriminator"):
        for key, value in state_a[net].items():
            assert torch.equal(value, state_b[net][key]), (net, key)
    # A different seed is a different run.
    other = invoke("run", str(path), "--out", str(tmp_path / "c"), "--seed", "2")
    assert other.exit_code == 0
    assert read_metrics(only_run_dir(tmp_path / "c") / "metrics.jsonl") != rows_a


def test_epochs_and_steps_whichever_comes_first(tmp_path: Path) -> None:
    recipe = tiny_recipe("unused")
    recipe["data"] = {"name": "cartoon_faces", "params": {"count": 20, "image_size": 16}}
    recipe["train"] = {"epochs": 2, "steps": 100, "batch_size": 8}  # 3 per epoch -> 6 steps
    recipe["callbacks"] = []
    run_dir = _run_once(write_recipe(tmp_path / "r.yaml", recipe), tmp_path / "out")
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert [r["epoch"] for r in rows] == [0, 0, 0, 1, 1, 1]


def test_sampling_during_training_does_not_change_training(tmp_path: Path) -> None:
    recipe = tiny_recipe("unused")
    recipe["data"] = {"name": "cartoon_faces", "params": {"count": 32, "image_size": 16}}
    recipe["train"] = {"steps": 4, "batch_size": 8}
    recipe["callbacks"] = []
    plain = _run_once(write_recipe(tmp_path / "a.yaml", recipe), tmp_path / "a")
    recipe["callbacks"] = [{"name": "samples", "params": {"every": 1}}]
    sampled = _run_once(write_recipe(tmp_path / "b.yaml", recipe), tmp_path / "b")
    assert len(list((sampled / "samples").glob("step_*.png"))) == 4
    a = load_checkpoint(plain / "checkpoints" / "final.pt")["generator"]
    b = load_checkpoint(sampled / "checkpoints" / "final.pt")["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # batch-norm running stats included


def test_image_size_the_architecture_cannot_build(celeba_dir: Path, tmp_path: Path) -> None:
    args = tiny_celeba_args(celeba_dir, tmp_path)
    result = invoke(*args, "--set", "data.params.image_size=48")
    assert result.exit_code == 2
    assert "48x48 cannot be built" in result.output
    assert not any(tmp_path.iterdir())


def test_empty_image_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path / "empty"))
    result = invoke("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert "holds no images" in result.output


def test_unavailable_device_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path))
    result = invoke("run", str(path), "--device", "cuda", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert "no CUDA GPU" in result.output


def test_tutorial_figures_and_progress(tmp_path: Path) -> None:
    recipe = tiny_recipe("unused")
    recipe["data"] = {"name": "cartoon_faces", "params": {"count": 64, "image_size": 16}}
    recipe["train"] = {"steps": 20, "batch_size": 16, "log_every": 5}
    recipe["callbacks"] = [
        {"name": "console", "params": {"every": 100, "progress": "lines"}},
        {"name": "samples", "params": {"every": 5}},
        {"name": "figures", "params": {"every": 10}},
    ]
    result = invoke("run", str(write_recipe(tmp_path / "r.yaml", recipe)), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    # Plain progress lines (not a terminal): every 10% of the run, with rate and ETA.
    lines = [line for line in result.output.splitlines() if line.startswith("progress: ")]
    assert len(lines) == 10 and lines[-1].startswith("progress: 20/20 iterations (100%)")
    assert " img/s, elapsed " in lines[0] and ", ETA " in lines[0]

    run_dir = only_run_dir(tmp_path)
    grid_side = 8 * 16 + 9 * 2
    assert Image.open(run_dir / "figures" / "real_images.png").size == (grid_side, grid_side)
    losses = Image.open(run_dir / "figures" / "losses.png")
    assert losses.size == (1000, 500)
    # Two curves of different colours are drawn: more than a handful of distinct colours.
    pixels = np.asarray(losses.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20
    real_vs_fake = Image.open(run_dir / "figures" / "real_vs_fake.png")
    assert real_vs_fake.size[0] == 2 * real_vs_fake.size[1]
    # Frames: after step 1, then steps 5, 10, 15, 20; the GIF holds every one.
    frames = sorted(p.name for p in (run_dir / "samples").glob("step_*.png"))
    assert frames == [f"step_{s:06d}.png" for s in (1, 5, 10, 15, 20)]
    gif = Image.open(run_dir / "samples" / "progress.gif")
    assert gif.n_frames == 5 and gif.size == (grid_side, grid_side)


def test_compiled_models_train_like_plain_ones(tmp_path: Path) -> None:
    recipe = tiny_recipe("unused")
    recipe["data"] = {"name": "cartoon_faces", "params": {"count": 16, "image_size": 16}}
    recipe["train"] = {"steps": 3, "batch_size": 8}
    recipe["callbacks"] = []
    path = write_recipe(tmp_path / "r.yaml", recipe)
    plain = _run_once(path, tmp_path / "plain")
    compiled = invoke("run", str(path), "--out", str(tmp_path / "c"), "--set", "train.compile=true")
    assert compiled.exit_code == 0, compiled.output
    rows_p = read_metrics(plain / "metrics.jsonl")
    rows_c = read_metrics(only_run_dir(tmp_path / "c") / "metrics.jsonl")
    for p, c in zip(rows_p, rows_c, strict=True):
        assert abs(p["loss_d"] - c["loss_d"]) < 1e-4 and abs(p["loss_g"] - c["loss_g"]) < 1e-4
    state = load_checkpoint(only_run_dir(tmp_path / "c") / "checkpoints" / "final.pt")
    assert "main.0.weight" in state["generator"]  # the plain module's names, loadable anywhere


def test_swd_is_logged_and_the_best_checkpoint_kept(tmp_path: Path) -> None:
    args = ["run", str(RECIPES / "quickstart.yaml"), "--out", str(tmp_path)]
    for override in (
        "data.params.count=128",
        "data.params.image_size=16",
        "generator.params.ngf=8",
        "discriminator.params.ndf=8",
        "train.steps=6",
        "train.batch_size=16",
        "train.eval_every=2",
        "metrics.0.params.images=64",
    ):
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "[eval] step 2: swd: " in result.output
    run_dir = only_run_dir(tmp_path)
    scores = [r for r in read_metrics(run_dir / "metrics.jsonl") if "swd" in r]
    assert [r["step"] for r in scores] == [2, 4, 6] and all(r["swd"] > 0 for r in scores)
    assert {"swd_16"} <= scores[0].keys()
    best = json.loads((run_dir / "run.json").read_text())["best"]
    assert best["metric"] == "swd" and best["value"] == min(r["swd"] for r in scores)
    state = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert state["step"] == best["step"]


@pytest.mark.parametrize("variant", ["quickstart_hinge", "quickstart_lsgan", "quickstart_wgan_gp"])
def test_loss_variant_recipes_run(tmp_path: Path, variant: str) -> None:
    args = ["run", str(RECIPES / f"{variant}.yaml"), "--out", str(tmp_path)]
    for override in TINY_QUICKSTART:
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    rows = read_metrics(only_run_dir(tmp_path) / "metrics.jsonl")
    assert len(rows) == 4 and all(np.isfinite(r["loss_d"]) for r in rows)


def test_several_critic_updates_per_generator_update(tmp_path: Path) -> None:
    """train.d_steps: each step makes that many D updates, each on its own real batch, and
    one G update; an epoch has proportionally fewer steps."""
    args = ["run", str(RECIPES / "quickstart_wgan_gp.yaml"), "--out", str(tmp_path)]
    for override in [*TINY_QUICKSTART, "train.d_steps=3", "train.steps=5"]:
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path)
    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    # 64 images, 3 batches of 16 a step: an epoch is a step of 48 images (3 D updates) and
    # one of the last 16 (1 D update); 5 steps are two epochs and 3 D updates.
    assert state["epoch"] == 2 and state["step"] == 5
    assert state["opt_d"]["state"][0]["step"] == 11 and state["opt_g"]["state"][0]["step"] == 5
    info = json.loads((run_dir / "run.json").read_text())
    assert info["images_seen"] == 2 * 64 + 48
