"""Penalties on D: R1 and the gradient penalty have their closed forms on a linear D and
train D through their gradient, a lazy penalty is applied every k-th step with weight x k, the
WGAN-GP loss's penalty is the listed `gradient_penalty`, and the example of docs/plugins.md
runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ganlab.files.metrics_log import read_metrics
from ganlab_plugins.losses.penalties import R1, GradientPenalty
from tests.conftest import invoke, only_run_dir
from tests.test_docs import train_plugin_example
from tests.test_resume import recipe


def linear_d(weights: torch.Tensor) -> nn.Module:
    """D(x) = w . x, one score per image of shape ``weights.shape``."""
    d = nn.Sequential(nn.Flatten(), nn.Linear(weights.numel(), 1, bias=True))
    with torch.no_grad():
        d[1].weight.copy_(weights.reshape(1, -1))
        d[1].bias.fill_(0.3)  # the bias changes no gradient
    return d


def test_r1_on_a_linear_d_is_the_squared_norm_of_its_weights() -> None:
    """grad_x (w . x) = w for every image, so R1 = ||w||^2; and its gradient reaches D's
    parameters (d||w||^2/dw = 2w), since it is differentiated with create_graph."""
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4)
    d = linear_d(w)
    real = torch.rand(5, 3, 4, 4) * 2 - 1
    value = R1(weight=5.0).value(d, real, torch.zeros_like(real))
    assert value.dim() == 0
    assert torch.allclose(value, w.square().sum())
    value.backward()
    assert torch.allclose(d[1].weight.grad, 2 * w.reshape(1, -1))
    assert d[1].bias.grad is None  # the bias changes no input gradient
    assert real.grad is None  # the real batch itself is left alone


def test_gradient_penalty_on_a_linear_d_is_the_norm_minus_one_squared() -> None:
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4)
    d = linear_d(w)
    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    value = GradientPenalty(weight=10.0).value(d, real, fake)
    assert torch.allclose(value, (w.norm() - 1).square())
    value.backward()
    expected = 2 * (w.norm() - 1) * w / w.norm()
    assert torch.allclose(d[1].weight.grad, expected.reshape(1, -1))


def test_lazy_r1_is_applied_every_kth_step_with_its_weight_times_k(tmp_path: Path) -> None:
    """With `every: 3`, R1 is computed and logged at steps 1, 4, 7 only, and D's loss there
    grows by weight x 3 x R1 (the first step, from the same weights, shows it exactly)."""
    path = recipe(tmp_path, steps=7, checkpoint_every=10)
    plain = invoke("run", str(path), "--out", str(tmp_path / "a"))
    assert plain.exit_code == 0, plain.output
    r1 = "penalties=[{name: r1, params: {weight: 2.0, every: 3}}]"
    lazy = invoke("run", str(path), "--out", str(tmp_path / "b"), "--set", r1)
    assert lazy.exit_code == 0, lazy.output
    rows_plain = read_metrics(only_run_dir(tmp_path / "a") / "metrics.jsonl")
    rows = read_metrics(only_run_dir(tmp_path / "b") / "metrics.jsonl")
    assert [row["step"] for row in rows if "r1" in row] == [1, 4, 7]
    added = rows[0]["loss_d"] - rows_plain[0]["loss_d"]
    assert rows[0]["r1"] > 0
    assert added == pytest.approx(2.0 * 3 * rows[0]["r1"], rel=1e-5)
    assert rows[1]["loss_d"] != rows_plain[1]["loss_d"]  # D changed by it
    keys = json.loads((only_run_dir(tmp_path / "b") / "run.json").read_text())["keys"]
    assert keys["r1"]["namespace"] == "train"


def test_the_wgan_gp_penalty_is_the_listed_gradient_penalty(tmp_path: Path) -> None:
    """The `wgan_gp` loss's own penalty and the `gradient_penalty` penalty are one function:
    the loss without its penalty plus the listed one trains exactly as the loss with it."""
    path = recipe(tmp_path, steps=4, d_steps=2, checkpoint_every=10)
    wgan = ["--set", "loss.name=wgan_gp", "--set", "discriminator.params.norm=layer"]
    own = invoke("run", str(path), "--out", str(tmp_path / "a"), *wgan)
    assert own.exit_code == 0, own.output
    listed = invoke(
        "run", str(path), "--out", str(tmp_path / "b"), *wgan,
        "--set", "loss.params.penalty_weight=0.0",
        "--set", "penalties=[{name: gradient_penalty, params: {weight: 10.0}}]",
    )  # fmt: skip
    assert listed.exit_code == 0, listed.output
    rows_own = read_metrics(only_run_dir(tmp_path / "a") / "metrics.jsonl")
    rows_listed = read_metrics(only_run_dir(tmp_path / "b") / "metrics.jsonl")
    assert all(row["gradient_penalty"] > 0 for row in rows_listed)
    assert [{k: v for k, v in row.items() if k != "gradient_penalty"} for row in rows_listed] == (
        rows_own
    )


def test_the_penalty_example_of_docs_plugins_runs(tmp_path: Path) -> None:
    """docs/plugins.md's example penalty, loaded from the docs and trained with its recipe
    line for a few steps, beside a lazy built-in: each value is logged under its name at the
    steps it is computed."""
    run_recipe, rows = train_plugin_example(tmp_path, "ganlab_register_penalties", "r2.py")
    assert [spec["name"] for spec in run_recipe["penalties"]] == ["r2", "r1"]
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(row["r2"] > 0 for row in rows)
    assert [row["step"] for row in rows if "r1" in row] == [1]  # every: 4
