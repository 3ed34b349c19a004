"""G's half of the step open to plugins: real scores for G's loss, the step's own scores for
penalties (no extra D call), penalties on G with intermediate latents and gradient averaging
over processes, plugin state that resumes exactly, and plugin statistics in the logs."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from tests.conftest import invoke, only_run_dir, write_recipe
from tests.test_distributed import torchrun
from tests.test_docs import train_plugin_example
from tests.test_resume import ganlab, wait_for_rows

PROBES = str(Path(__file__).parent / "plugins" / "step_probes.py")


def recipe(tmp_path: Path, name: str = "probed", **changes: Any) -> Path:
    """A tiny run on 32 faces of 8x8 with the probe plugins loaded."""
    spec: dict[str, Any] = {
        "name": name,
        "seed": 3,
        "device": "cpu",
        "plugins": [PROBES],
        "data": {"name": "cartoon_faces", "params": {"count": 32, "image_size": 8}},
        "generator": {"name": "dcgan", "params": {"nz": 8, "ngf": 4}},
        "discriminator": {"name": "counting_d"},
        "loss": {"name": "bce"},
        "train": {"steps": 4, "batch_size": 8, "log_every": 1},
    }
    spec.update(changes)
    return write_recipe(tmp_path / f"{name}.yaml", spec)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_penalty_reads_the_scores_d_loss_used_without_another_d_call(tmp_path: Path) -> None:
    log = tmp_path / "probe.jsonl"
    path = recipe(
        tmp_path,
        loss={"name": "recording_bce"},
        penalties=[{"name": "scores_probe", "params": {"record": str(log)}}],
        callbacks=[{"name": "console", "params": {"every": 1, "progress": "off"}}],
    )
    result = invoke("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    seen = records(log)
    assert len(seen) == 4 and all(r["same"] and r["images"] for r in seen)
    # Between two penalty calls, one step: D scores the reals and the fakes in its update
    # and the fakes in G's; the penalty's scores cost no D call of their own.
    assert {b["calls"] - a["calls"] for a, b in itertools.pairwise(seen)} == {3}
    rows = read_metrics(only_run_dir(tmp_path / "runs") / "metrics.jsonl")
    assert all("scores_probe" in row for row in rows)
    assert result.output.count("\tscores_probe: ") == 4  # after the tutorial's columns


@pytest.mark.parametrize(("real_scores", "calls"), [("last", 3), ("current", 4)])
def test_g_loss_gets_real_scores_as_it_declares(
    tmp_path: Path, real_scores: str, calls: int
) -> None:
    log = tmp_path / "g_loss.jsonl"
    path = recipe(
        tmp_path,
        loss={"name": "recording_bce", "params": {"record": str(log), "real_scores": real_scores}},
    )
    result = invoke("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    seen = records(log)
    assert all(r["real_given"] for r in seen)
    # "last": D's scores of the real batch from its update, as they were; "current": the
    # batch scored again by the updated D (one more D call per step), so they differ.
    assert all(r["same_as_d_update"] == (real_scores == "last") for r in seen)
    assert {b["calls"] - a["calls"] for a, b in itertools.pairwise(seen)} == {calls}


def test_a_g_penalty_gets_intermediates_lazily_and_is_logged(tmp_path: Path) -> None:
    log = tmp_path / "g.jsonl"
    path = recipe(
        tmp_path,
        generator={"name": "with_w"},
        penalties=[{"name": "g_probe", "params": {"record": str(log), "every": 2}}],
        train={"steps": 6, "batch_size": 8, "log_every": 1},
    )
    result = invoke("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    seen = records(log)
    assert len(seen) == 3 and all(r["has_w"] and r["latents_grad"] for r in seen)
    rows = read_metrics(only_run_dir(tmp_path / "runs") / "metrics.jsonl")
    # Computed (and logged) at steps 0, 2, 4 of the run: rows 1, 3, 5 (1-based steps).
    assert [row["step"] for row in rows if "g_probe" in row] == [1, 3, 5]


def test_a_g_penalty_averages_over_processes_like_g_loss(tmp_path: Path) -> None:
    log = tmp_path / "g.jsonl"
    path = recipe(
        tmp_path,
        generator={"name": "with_w"},
        data={"name": "cartoon_faces", "params": {"count": 64, "image_size": 8}},
        penalties=[{"name": "g_probe", "params": {"record": str(log), "weight": 100.0}}],
        train={"steps": 3, "batch_size": 8, "log_every": 1},
    )
    done = torchrun("run", str(path), "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    seen = records(log)
    by_rank = [[r for r in seen if r["rank"] == rank] for rank in (0, 1)]
    assert len(by_rank[0]) == len(by_rank[1]) == 3
    # Each process's penalty is its own (its own latents) ...
    assert by_rank[0][0]["value"] != by_rank[1][0]["value"]
    # ... and G's weights, as each process finds them at the next step, are the same.
    for a, b in zip(by_rank[0], by_rank[1], strict=True):
        assert (a["weights"], a["weights_abs"]) == (b["weights"], b["weights_abs"])
    assert by_rank[0][0]["weights"] != by_rank[0][1]["weights"]  # G did train


STATEFUL = {
    "loss": {"name": "stateful_loss"},
    "penalties": [{"name": "stateful_penalty"}],
    "callbacks": [{"name": "stateful_callback"}],
    "generator": {"name": "dcgan", "params": {"nz": 8, "ngf": 4}},
    "discriminator": {"name": "dcgan", "params": {"ndf": 4}},
}


def stateful_recipe(tmp_path: Path) -> Path:
    return recipe(
        tmp_path,
        name="resumable",
        train={
            "steps": 24,
            "batch_size": 8,
            "log_every": 1,
            "checkpoint_every": 2,
            "keep_checkpoints": 2,
        },
        **STATEFUL,
    )


def test_stateful_loss_penalty_and_callback_resume_exactly_after_sigkill(
    tmp_path: Path,
) -> None:
    straight = invoke("run", str(stateful_recipe(tmp_path)), "--out", str(tmp_path / "a"))
    assert straight.exit_code == 0, straight.output
    uninterrupted = only_run_dir(tmp_path / "a")
    rows = read_metrics(uninterrupted / "metrics.jsonl")
    train_rows = [r for r in rows if "loss_d" in r]
    # Their statistics are logged under their names at every step.
    assert all(
        "stateful_loss.average" in r and "stateful_penalty.ema_real" in r for r in train_rows
    )
    assert [r["counted"] for r in rows if "counted" in r] == list(range(1, 25))

    out = tmp_path / "b"
    proc = ganlab("run", str(stateful_recipe(tmp_path)), "--out", str(out))
    rng = random.Random(7)
    run_dir = wait_for_rows(out, rng.randint(5, 12), proc)
    proc.kill()
    proc.wait()
    final = ganlab("run", "--resume", str(run_dir))
    _, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    # Every row (the plugins' rows and statistics too) and the weights, bit for bit.
    assert read_metrics(run_dir / "metrics.jsonl") == rows
    state, expected = (
        load_checkpoint(d / "checkpoints" / "final.pt") for d in (run_dir, uninterrupted)
    )
    for net in ("generator", "discriminator"):
        for key, value in expected[net].items():
            assert torch.equal(value, state[net][key]), (net, key)
    assert state["plugins"]["callbacks.0:stateful_callback"] == {
        "steps": 24,
        "total": rows[-1]["total"],
    }


def test_the_relativistic_loss_example_of_docs_plugins_trains(tmp_path: Path) -> None:
    _, rows = train_plugin_example(tmp_path, "ganlab_register_losses", "relativistic_ls.py")
    assert len(rows) == 3 and all(math.isfinite(r["loss_g"]) for r in rows)


def test_the_score_anchor_example_logs_its_statistics_and_keeps_its_state(
    tmp_path: Path,
) -> None:
    _, rows = train_plugin_example(tmp_path, "ganlab_register_penalties", "score_anchor.py")
    assert all(
        {"score_anchor", "score_anchor.ema_real", "score_anchor.ema_fake"} <= r.keys() for r in rows
    )
    state = load_checkpoint(only_run_dir(tmp_path / "runs") / "checkpoints" / "final.pt")
    kept = state["plugins"]["penalties.0:score_anchor"]
    assert float(kept["ema_real"]) == pytest.approx(rows[-1]["score_anchor.ema_real"])


def test_the_g_penalty_example_of_docs_plugins_trains_lazily(tmp_path: Path) -> None:
    _, rows = train_plugin_example(tmp_path, "ganlab_register_penalties", "latent_slope.py")
    assert [r["step"] for r in rows if "latent_slope" in r] == [1]  # every 4th step, of 3
    assert rows[0]["latent_slope"] > 0
