"""The rest of the step a paper may change: learning-rate schedules (resumed exactly), G's
update on fresh latents of its own batch size, the moving average's warm-up, and scoring
images with D without changing it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from tests.conftest import invoke, only_run_dir
from tests.test_resume import recipe

#: A callback that scores the fixed fakes with D every step (RunView.score, which must
#: change nothing), and a generator that records the batch sizes it is called with.
PROBES = """
import torch
from torch import nn

import ganlab


class Score:
    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        run.score(run.generate(run.fixed_latents))


class Counting(ganlab.Generator):
    def __init__(self, image_shape):
        super().__init__()
        self.latent_shape = (8,)
        self.net = nn.Sequential(nn.Linear(8, int(torch.tensor(image_shape).prod())), nn.Tanh())
        self.image_shape = image_shape
        self.sizes = []

    def forward(self, z):
        self.sizes.append(z.shape[0])
        return self.net(z).view(z.shape[0], *self.image_shape)


class Sizes:
    @ganlab.hookimpl
    def ganlab_run_end(self, run):
        (run.dir / "sizes.txt").write_text(" ".join(map(str, run.generator.sizes)))


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("score", lambda params: Score())
    register("sizes", lambda params: Sizes())


@ganlab.hookimpl
def ganlab_register_generators(register):
    register("counting", lambda params, image_shape: Counting(image_shape))
"""

LINEAR_DECAY = "{name: LinearLR, params: {start_factor: 1.0, end_factor: 0.1, total_iters: 8}}"


def run(tmp_path: Path, out: str, *sets: str, resume: Path | None = None) -> Path:
    (tmp_path / "probes.py").write_text(PROBES)
    args = ["run", str(recipe(tmp_path, steps=8)), "-p", str(tmp_path / "probes.py")]
    args += ["--resume", str(resume)] if resume else ["--out", str(tmp_path / out)]
    for change in sets:
        args += ["--set", change]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return resume or only_run_dir(tmp_path / out)


def test_a_learning_rate_schedule_resumes_exactly(tmp_path: Path) -> None:
    schedule = [
        f"optimizers.generator.schedule={LINEAR_DECAY}",
        f"optimizers.discriminator.schedule={LINEAR_DECAY}",
    ]
    straight = run(tmp_path, "a", *schedule)
    stopped = run(tmp_path, "b", *schedule, "train.steps=4")
    resumed = run(tmp_path, "b", *schedule, resume=stopped)
    rows_a = read_metrics(straight / "metrics.jsonl")
    rows_b = read_metrics(resumed / "metrics.jsonl")
    assert rows_a == rows_b  # every step's losses and rates, bit for bit
    # Stepped once per training step, from 2e-4 down to a tenth of it after 8 steps (the
    # recipe's total_iters, kept by the 4-step run that was resumed).
    expected = [2e-4 * (1 - 0.9 * min(step, 8) / 8) for step in range(1, 9)]
    for key in ("lr_generator", "lr_discriminator"):
        assert [row[key] for row in rows_a if key in row] == pytest.approx(expected)
    assert "schedulers" in load_checkpoint(resumed / "checkpoints" / "final.pt")


def test_an_unknown_schedule_is_refused(tmp_path: Path) -> None:
    result = invoke(
        "run",
        str(recipe(tmp_path, steps=2)),
        "--out",
        str(tmp_path / "o"),
        "--set",
        "optimizers.generator.schedule={name: LinearLRR}",
    )
    assert result.exit_code == 2, result.output
    assert "optimizers.generator.schedule.name: 'LinearLRR' is not a scheduler" in result.output
    assert 'Did you mean "LinearLR"?' in result.output


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("{name: LinearLR, params: {total_iter: 5}}", "LinearLR refuses its params"),
        ("{name: ReduceLROnPlateau}", "a recipe cannot give. Usable: ConstantLR"),
    ],
)
def test_recipe_validate_refuses_a_schedule_the_run_could_not_make(
    tmp_path: Path, schedule: str, message: str
) -> None:
    path = recipe(tmp_path, steps=2)
    result = invoke(
        "recipe", "validate", str(path), "--set", f"optimizers.generator.schedule={schedule}"
    )
    assert result.exit_code == 2, result.output
    assert (
        f"optimizers.generator.schedule{'.name' if 'Plateau' in schedule else ''}: "
        in result.output
    )
    assert message in result.output


def test_g_updates_on_fresh_latents_of_its_own_batch_size(tmp_path: Path) -> None:
    folder = run(
        tmp_path,
        "a",
        "generator={name: counting}",
        "train.g_batch_size=32",
        "train.steps=3",
        "callbacks=[{name: sizes}]",
    )
    sizes = [int(s) for s in (folder / "sizes.txt").read_text().split()]
    # After the build's test batch of 2: per step, D's fakes (16, or the epoch's last 8)
    # then G's own 32.
    assert sizes[0] == 2 and sizes[1:] == [16, 32, 16, 32, 8, 32]


def test_the_moving_average_warms_up(tmp_path: Path) -> None:
    """After n updates the decay is min(ema, (1 + n) / (10 + n)): after step 2 the average
    is G1 + (1 - 2/11) (G2 - G1), not 0.999's G1 + 0.001 (G2 - G1)."""
    folder = run(tmp_path, "a", "train.ema=0.999", "train.steps=2", "train.checkpoint_every=1")
    step1 = load_checkpoint(folder / "checkpoints" / "step_000001.pt")
    step2 = load_checkpoint(folder / "checkpoints" / "step_000002.pt")
    weight = "main.0.weight"
    g1, g2 = step1["generator"][weight], step2["generator"][weight]
    average = step2["generator_ema"][f"module.{weight}"]
    torch.testing.assert_close(average, g1 + (1 - 2 / 11) * (g2 - g1))


def test_the_moving_average_ramps_up_as_stylegan2s(tmp_path: Path) -> None:
    """train.ema_rampup is the EMA of StyleGAN2's training loop: at the update after
    cur_nimg images, beta = 0.5 ** (batch / max(min(ema_nimg, cur_nimg * rampup), 1e-8))
    and G_ema = G.lerp(G_ema, beta), with their ema_kimg given as train.ema's decay."""
    batch, ema, rampup = 16, 0.999, 0.5
    folder = run(
        tmp_path,
        "a",
        f"train.ema={ema}",
        f"train.ema_rampup={rampup}",
        "train.steps=3",
        "train.checkpoint_every=1",
        "train.keep_checkpoints=3",
    )
    weight = "main.0.weight"
    steps = [load_checkpoint(folder / "checkpoints" / f"step_{k:06d}.pt") for k in (1, 2, 3)]
    ema_nimg = batch * math.log(0.5) / math.log(ema)  # the half-life that decay has, in images
    average = steps[0]["generator"][weight]  # cur_nimg = 0: beta = 0, a copy of G
    for k in (1, 2):
        beta = 0.5 ** (batch / max(min(ema_nimg, k * batch * rampup), 1e-8))
        average = steps[k]["generator"][weight].lerp(average, beta)
    assert 0.2 < 0.5 ** (1 / rampup) < 0.3  # the ramp, not the decay, sets beta here
    torch.testing.assert_close(steps[2]["generator_ema"][f"module.{weight}"], average)


def test_the_ramp_needs_a_moving_average(tmp_path: Path) -> None:
    result = invoke("recipe", "validate", str(recipe(tmp_path)), "--set", "train.ema_rampup=0.05")
    assert result.exit_code == 2
    assert "train.ema_rampup" in result.output and "train.ema" in result.output


def test_scoring_with_d_changes_nothing(tmp_path: Path) -> None:
    plain = run(tmp_path, "a", "train.steps=4")
    scored = run(tmp_path, "b", "train.steps=4", "callbacks=[{name: score}]")
    assert read_metrics(plain / "metrics.jsonl") == read_metrics(scored / "metrics.jsonl")
