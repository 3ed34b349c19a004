"""LeCam and bCR: their formulas on fixed scores, LeCam's bias-corrected moving averages
and their exact round trip through a checkpoint's state, bCR's zero for an identity T and
its transform, and that both train D only, from the scores they are given."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from torch import nn

import ganlab
from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from ganlab_plugins.losses.regularizers import (
    BCRParams,
    ConsistencyTransform,
    LeCamParams,
    build_bcr,
    build_lecam,
)
from tests.conftest import invoke, only_run_dir
from tests.test_resume import recipe


def step_scores(real: list[float], fake: list[float]) -> ganlab.StepScores:
    """StepScores of fixed values (images unused by LeCam)."""
    images = torch.zeros(len(real), 3, 4, 4)
    return ganlab.StepScores(
        real=torch.tensor(real), fake=torch.tensor(fake), real_images=images, fake_images=images
    )


def relu_sq(value: float) -> float:
    return max(0.0, value) ** 2


def lecam_value(penalty: ganlab.Penalty, scores: ganlab.StepScores) -> torch.Tensor:
    unused = torch.zeros(1)
    return penalty.value(lambda x: x, unused, unused, scores)


def test_lecam_is_the_papers_formula_around_corrected_moving_averages() -> None:
    """First update: the averages are that batch's means (bias-corrected, as the authors'
    StyleGAN2 code); second: the decay-weighted mean of both batches' means. R_LC =
    mean(relu(D(x) - alpha_F)^2) + mean(relu(alpha_R - D(G(z)))^2) around them."""
    lecam = build_lecam(LeCamParams(decay=0.9))
    real1, fake1 = [2.0, 0.5, 1.0], [-1.0, 0.0, 0.4]
    alpha_r, alpha_f = sum(real1) / 3, sum(fake1) / 3  # 7/6, -0.2
    expected = sum(relu_sq(r - alpha_f) for r in real1) / 3
    expected += sum(relu_sq(alpha_r - f) for f in fake1) / 3
    assert lecam_value(lecam, step_scores(real1, fake1)).item() == pytest.approx(expected)
    stats = lecam.statistics()
    assert stats["ema_real"].item() == pytest.approx(alpha_r)
    assert stats["ema_fake"].item() == pytest.approx(alpha_f)

    real2, fake2 = [0.0, 3.0, 0.0], [1.5, -0.5, 2.0]
    # (0.9 * 0.1 * m1 + 0.1 * m2) / (1 - 0.9^2)
    alpha_r = (0.09 * alpha_r + 0.1 * 1.0) / 0.19
    alpha_f = (0.09 * alpha_f + 0.1 * 1.0) / 0.19
    expected = sum(relu_sq(r - alpha_f) for r in real2) / 3
    expected += sum(relu_sq(alpha_r - f) for f in fake2) / 3
    assert lecam_value(lecam, step_scores(real2, fake2)).item() == pytest.approx(expected)
    assert lecam.statistics()["ema_real"].item() == pytest.approx(alpha_r)
    assert lecam.statistics()["ema_fake"].item() == pytest.approx(alpha_f)


def test_lecam_waits_start_updates_while_its_averages_move() -> None:
    lecam = build_lecam(LeCamParams(decay=0.5, start=2))
    first, second = step_scores([1.0, 3.0], [0.0, -2.0]), step_scores([3.0, 5.0], [2.0, 0.0])
    assert lecam_value(lecam, first).item() == 0.0
    assert lecam_value(lecam, second).item() == 0.0
    # (0.5 * 0.5 * 2 + 0.5 * 4) / (1 - 0.5^2) = 10/3 and (0.25 * -1 + 0.5 * 1) / 0.75 = 1/3
    assert lecam.statistics()["ema_real"].item() == pytest.approx(10 / 3)
    assert lecam.statistics()["ema_fake"].item() == pytest.approx(1 / 3)
    value = lecam_value(lecam, step_scores([0.0, 1.0], [0.0, 0.5]))
    alpha_r, alpha_f = (10 / 3 * 0.75 * 0.5 + 0.5 * 0.5) / 0.875, (0.25 * 0.5 + 0.5 * 0.25) / 0.875
    expected = (relu_sq(0.0 - alpha_f) + relu_sq(1.0 - alpha_f)) / 2
    expected += (relu_sq(alpha_r - 0.0) + relu_sq(alpha_r - 0.5)) / 2
    assert value.item() == pytest.approx(expected)


def test_lecam_resumes_exactly_from_its_state() -> None:
    """The averages go through torch.save as a checkpoint does; the restored penalty gives
    bit-identical values from there on, and a fresh one does not."""
    torch.manual_seed(0)
    batches = [step_scores(torch.randn(8).tolist(), torch.randn(8).tolist()) for _ in range(6)]
    original = build_lecam(LeCamParams(start=3))  # the restored count of updates matters too
    for scores in batches[:3]:
        lecam_value(original, scores)
    saved = io.BytesIO()
    torch.save(original.state_dict(), saved)
    saved.seek(0)
    resumed = build_lecam(LeCamParams(start=3))
    resumed.load_state_dict(torch.load(saved))
    fresh = build_lecam(LeCamParams(start=3))
    for scores in batches[3:]:
        expected = lecam_value(original, scores)
        assert torch.equal(lecam_value(resumed, scores), expected)
        assert not torch.equal(lecam_value(fresh, scores), expected)
    assert torch.equal(resumed.statistics()["ema_real"], original.statistics()["ema_real"])


class LinearCritic(nn.Module):
    """A linear D as penalties get it (`ganlab.Critic`): a conditional one adds its class's
    offset, so scores with other classes differ."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * 8 * 8, 1)
        self.offset = nn.Embedding(2, 1)
        self.default = torch.zeros(4, dtype=torch.int64)  # the real batch's classes

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        chosen = self.default if labels is None else labels
        return (self.linear(images.flatten(1)) + self.offset(chosen)).flatten()


def linear_d() -> nn.Module:
    torch.manual_seed(1)
    return LinearCritic()


def test_bcr_scores_the_transformed_fakes_with_their_own_classes() -> None:
    d = linear_d()
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    fake_labels = torch.ones(4, dtype=torch.int64)  # the reals' are 0
    scores = ganlab.StepScores(
        real=d(real),
        fake=d(fake, fake_labels),
        real_images=real,
        fake_images=fake,
        real_labels=torch.zeros(4, dtype=torch.int64),
        fake_labels=fake_labels,
    )
    bcr = build_bcr(BCRParams(flip=False, translation=0.0))
    # T is the identity: scored with the fakes' own classes, each term is exactly 0.
    assert bcr.value(d, real, fake, scores).item() == 0.0


def test_bcr_with_an_identity_transform_is_zero() -> None:
    d = linear_d()
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    scores = ganlab.StepScores(
        real=d(real).flatten(), fake=d(fake).flatten(), real_images=real, fake_images=fake
    )
    bcr = build_bcr(BCRParams(flip=False, translation=0.0))
    assert bcr.value(d, real, fake, scores).item() == 0.0


def test_bcr_is_the_weighted_squared_score_change_under_t() -> None:
    """With T a plain flip: lambda_real * mean((D(x) - D(flip x))^2) + lambda_fake * the
    same on the fakes, from the given scores (not rescored: they are offset here)."""
    d = linear_d()
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    scores = ganlab.StepScores(
        real=d(real).flatten() + 0.5, fake=d(fake).flatten(), real_images=real, fake_images=fake
    )
    bcr = build_bcr(BCRParams(real_weight=2.0, fake_weight=3.0))
    bcr.transform = lambda images: images.flip(3)  # type: ignore[assignment]
    value = bcr.value(d, real, fake, scores)
    with torch.no_grad():
        flip = lambda x: d(x.flip(3)).flatten()  # noqa: E731
        expected = 2.0 * (d(real).flatten() + 0.5 - flip(real)).square().mean()
        expected += 3.0 * (d(fake).flatten() - flip(fake)).square().mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    stats = bcr.statistics()
    assert 2.0 * stats["real"] + 3.0 * stats["fake"] == pytest.approx(value.item(), rel=1e-6)


def test_bcr_transform_flips_and_shifts_from_the_global_rng() -> None:
    """Each image is itself or its mirror (both occur); a shift moves it by at most 1/8 of
    its side; the same seed draws the same T."""
    images = torch.randn(32, 3, 8, 8)
    torch.manual_seed(3)
    flipped = ConsistencyTransform(flip=True, translation=0.0)(images)
    same = (flipped == images).flatten(1).all(1)
    mirrored = (flipped == images.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()
    ones = torch.ones(32, 1, 8, 8)
    shifted = ConsistencyTransform(flip=False, translation=0.125)(ones)
    assert (shifted.sum(dim=(1, 2, 3)) >= 7 * 7).all()  # at most one row and column lost
    assert (shifted.sum(dim=(1, 2, 3)) < 64).any()
    torch.manual_seed(3)
    assert torch.equal(ConsistencyTransform(flip=True, translation=0.0)(images), flipped)


@pytest.mark.parametrize("name", ["lecam", "bcr"])
def test_the_penalties_train_d_only(name: str) -> None:
    """As the step builds StepScores (fakes of G, scored detached), each penalty's gradient
    reaches D's parameters and none of G's, even if the fake images keep G's graph."""
    d = linear_d()
    g = nn.Sequential(nn.Linear(5, 3 * 8 * 8), nn.Unflatten(1, (3, 8, 8)))
    real, fake = torch.randn(4, 3, 8, 8), g(torch.randn(4, 5))
    scores = ganlab.StepScores(
        real=d(real).flatten(),
        fake=d(fake.detach()).flatten(),
        real_images=real,
        fake_images=fake,  # with its graph to G: the penalty must not follow it
    )
    penalty = build_lecam(LeCamParams()) if name == "lecam" else build_bcr(BCRParams())
    assert penalty.reads_scores
    value = penalty.value(d, real, fake.detach(), scores)
    assert value.item() > 0
    value.backward()
    assert d.linear.weight.grad is not None and d.linear.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in g.parameters())


def test_a_run_with_ragan_lecam_and_bcr_logs_them_and_checkpoints_lecam(
    tmp_path: Path,
) -> None:
    """Through the real step: every row has both penalties' values and statistics, and the
    checkpoint holds LeCam's averages under its component name (what --resume restores)."""
    path = recipe(tmp_path, steps=3, checkpoint_every=3)
    penalties = "penalties=[{name: lecam}, {name: bcr}]"
    done = invoke(
        "run", str(path), "--out", str(tmp_path), "--set", "loss={name: ragan}", "--set", penalties
    )
    assert done.exit_code == 0, done.output
    run_dir = only_run_dir(tmp_path)
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "loss_d" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    keys = {"lecam", "lecam.ema_real", "lecam.ema_fake", "bcr", "bcr.real", "bcr.fake"}
    assert all(keys <= row.keys() for row in rows)
    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")["plugins"]
    (lecam,) = [value for key, value in state.items() if key.endswith(":lecam")]
    assert (lecam["real_sum"] / lecam["weight_sum"]).item() == pytest.approx(
        rows[-1]["lecam.ema_real"], rel=1e-5
    )
