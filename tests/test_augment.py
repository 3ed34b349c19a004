"""Augmentations: D sees augmented reals and fakes in D's and G's update, G's gradient passes
through them, DiffAugment's operations are the paper's, ADA's p follows D's signs and resumes
exactly, and the example of docs/plugins.md runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganlab.files.metrics_log import read_metrics
from ganlab_plugins.augment.diffaugment import (
    ADA,
    OPERATIONS,
    ADAParams,
    brightness,
    contrast,
    cutout,
    saturation,
    translation,
)
from tests.conftest import invoke, only_run_dir
from tests.test_docs import train_plugin_example
from tests.test_resume import recipe

#: A plugin that watches every D call: an augmentation (DiffAugment, recording what it was
#: given and what it gave) and a linear D that records whether its input is what the
#: augmentation gave; a callback writes the record into the run folder at the end.
PROBES = """
import json

import torch
from torch import nn

import ganlab
from ganlab_plugins.augment.diffaugment import DiffAugment

CALLS = []
LAST = []


def on_uint8_grid(images):
    # Real images come from uint8 pixels: (x + 1) * 127.5 is a whole number.
    scaled = (images.detach() + 1) * 127.5
    return bool(torch.allclose(scaled, scaled.round(), atol=1e-3))


class Probe(DiffAugment):
    def __call__(self, images):
        out = super().__call__(images)
        call = {
            "real": on_uint8_grid(images),
            "graph_to_g": images.requires_grad,
            "changed": not torch.equal(out, images),
            "grad_at_g_output": None,
        }
        if images.requires_grad:  # G's update: what reaches G's output through the change
            images.register_hook(lambda g: call.update(grad_at_g_output=float(g.norm())))
        CALLS.append(call)
        LAST[:] = [out]
        return out


class ProbeD(nn.Module):
    def __init__(self, image_shape):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(image_shape).prod()), 1))

    def forward(self, images):
        if CALLS:
            CALLS[-1]["d_got_it"] = bool(LAST) and images is LAST[0]
        return self.net(images)


class Dump:
    @ganlab.hookimpl
    def ganlab_run_end(self, run):
        (run.dir / "calls.json").write_text(json.dumps(CALLS))


@ganlab.hookimpl
def ganlab_register_augmentations(register):
    register("probe", lambda params: Probe(["color", "translation", "cutout"]))


@ganlab.hookimpl
def ganlab_register_discriminators(register):
    register("probe", lambda params, image_shape: ProbeD(image_shape))


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("dump", lambda params: Dump())
"""


def test_d_sees_augmented_reals_and_fakes_in_both_updates_and_g_gets_the_gradient(
    tmp_path: Path,
) -> None:
    """Each step D scores the augmented real batch and the augmented detached fakes (D's
    update), then the augmented fakes with their graph to G (G's update); a gradient reaches
    G's output through the augmentation."""
    (tmp_path / "probes.py").write_text(PROBES)
    result = invoke(
        "run", str(recipe(tmp_path, steps=3, checkpoint_every=10)),
        "--out", str(tmp_path / "runs"), "-p", str(tmp_path / "probes.py"),
        "--set", "discriminator={name: probe}",
        "--set", "augment=[{name: probe}]",
        "--set", "callbacks=[{name: dump}]",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    calls = json.loads((only_run_dir(tmp_path / "runs") / "calls.json").read_text())
    # The shape check of the models at build time calls D without augmentation: not recorded.
    assert len(calls) == 3 * 3
    for step in range(3):
        real, fake_for_d, fake_for_g = calls[3 * step : 3 * step + 3]
        assert real["real"] and not real["graph_to_g"]
        assert not fake_for_d["real"] and not fake_for_d["graph_to_g"]
        assert not fake_for_g["real"] and fake_for_g["graph_to_g"]
        for call in (real, fake_for_d, fake_for_g):
            assert call["changed"] and call["d_got_it"], call
        assert fake_for_g["grad_at_g_output"] > 0
        assert real["grad_at_g_output"] is None


@pytest.mark.parametrize("name", [op.__name__ for ops in OPERATIONS.values() for op in ops])
def test_every_operation_is_differentiable(name: str) -> None:
    """For fixed random draws each operation is a differentiable function of the images, and
    its gradient is the true one (torch's gradcheck: analytic against finite differences)."""
    operation = {op.__name__: op for ops in OPERATIONS.values() for op in ops}[name]

    def seeded(images: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)
        return operation(images)

    images = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(seeded, (images,))


def test_translation_shifts_whole_pixels_up_to_an_eighth_with_zeros() -> None:
    torch.manual_seed(0)
    images = torch.rand(64, 3, 16, 16) + 1  # no zeros of its own
    moved = translation(images)
    shifts = set()
    for before, after in zip(images, moved, strict=True):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(after, _shifted(before, dy, dx))
        ]
        assert len(found) == 1, "not a whole-pixel shift of at most 16/8 = 2 pixels"
        shifts.add(found[0])
    assert len(shifts) > 12  # random per image, both ways, both axes


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` moved down by dy and right by dx, zeros where it moved away."""
    out = torch.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_cutout_zeroes_a_square_of_half_the_side_anywhere() -> None:
    torch.manual_seed(0)
    images = torch.rand(200, 3, 16, 16) + 1
    cut = cutout(images)
    zero = (cut == 0).all(dim=1)  # (N, H, W): the same pixels in every channel
    assert torch.equal(cut[~zero[:, None].expand_as(cut)], images[~zero[:, None].expand_as(cut)])
    rows, cols = zero.any(dim=2).sum(dim=1), zero.any(dim=1).sum(dim=1)
    assert torch.equal(zero.sum(dim=(1, 2)), rows * cols)  # a rectangle ...
    assert rows.max() == 8 and cols.max() == 8  # ... of 8x8 = half of 16, cut by the border
    assert rows.min() < 8 and cols.min() < 8


def test_color_operations_have_the_papers_ranges() -> None:
    """Brightness adds U(-0.5, 0.5), saturation scales the distance to the channel mean by
    U(0, 2), contrast the distance to the image mean by U(0.5, 1.5); nothing is clipped."""
    torch.manual_seed(0)
    images = torch.rand(500, 3, 8, 8) * 2 - 1
    added = (brightness(images) - images).flatten(1)
    assert torch.allclose(added, added[:, :1].expand_as(added), atol=1e-6)
    assert -0.5 <= added.min() < -0.45 and 0.45 < added.max() <= 0.5
    gray = images.mean(dim=1, keepdim=True)
    factor = _factor(saturation(images) - gray, images - gray)
    assert 0 <= factor.min() < 0.05 and 1.95 < factor.max() <= 2
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    factor = _factor(contrast(images) - mean, images - mean)
    assert 0.5 <= factor.min() < 0.55 and 1.45 < factor.max() <= 1.5
    assert (brightness(images) > 1).any()  # not clipped to [-1, 1]


def _factor(after: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    """Each image's scale factor from ``before`` to ``after`` (the median over its pixels,
    which is robust to the pixels where ``before`` is nearly 0)."""
    return (after / before).flatten(1).median(dim=1).values


def test_ada_moves_p_toward_the_target_and_applies_each_operation_with_it() -> None:
    """Every `interval` D updates p moves by images / (kimg * 1000): up while more than
    `target` of the reals' signs say real, down otherwise, within [0, 1]."""
    ada = ADA(ADAParams(interval=2, kimg=0.064, target=0.6))  # 64 images from 0 to 1
    images = torch.rand(16, 3, 8, 8) * 2 - 1
    assert torch.equal(ada(images), images)  # p = 0: no image changed
    overfit = torch.tensor([1.0] * 14 + [-1.0] * 2)  # r_t = 0.75 > 0.6
    seen = []
    for _ in range(12):
        ada.observe(overfit)
        seen.append(float(ada.statistics()["p"]))
    assert seen == [0, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # 2 x 16 images = 0.5, clamped
    changed = (ada(images) != images).flatten(1).any(dim=1)
    assert changed.all()  # p = 1: every image augmented
    balanced = torch.tensor([1.0] * 10 + [-1.0] * 6)  # r_t = 0.25 < 0.6
    for _ in range(2):
        ada.observe(balanced)
    assert float(ada.statistics()["p"]) == 0.5
    changed = torch.stack([(ada(images) != images).flatten(1).any(dim=1) for _ in range(50)])
    # Each of the 5 operations with probability 1/2: an image is left as it was 1/32 of times.
    assert 0.9 < changed.float().mean() < 0.999
    ada.observe(overfit)  # mid-interval: the signs so far are state too
    copy = ADA(ADAParams(interval=2, kimg=0.064, target=0.6))
    copy.load_state_dict(ada.state_dict())
    for augmentation in (ada, copy):
        augmentation.observe(balanced)  # r_t over both updates: 0.5 < 0.6, so down
    assert float(ada.statistics()["p"]) == float(copy.statistics()["p"]) == 0.0


def test_ada_run_resumes_exactly_with_its_probability(tmp_path: Path) -> None:
    """An ADA run stopped mid-interval and resumed logs the same rows, p included, as one
    that ran straight through: p and its sign accumulator are in the checkpoint."""
    ada = "augment=[{name: ada, params: {interval: 3, kimg: 0.1}}]"
    path = recipe(tmp_path, steps=10, checkpoint_every=10)
    straight = invoke("run", str(path), "--out", str(tmp_path / "a"), "--set", ada)
    assert straight.exit_code == 0, straight.output
    first = invoke(
        "run", str(path), "--out", str(tmp_path / "b"), "--set", ada, "--set", "train.steps=5"
    )
    assert first.exit_code == 0, first.output
    run_dir = only_run_dir(tmp_path / "b")
    resumed = invoke("run", "--resume", str(run_dir), "--set", "train.steps=10")
    assert resumed.exit_code == 0, resumed.output
    rows_a = read_metrics(only_run_dir(tmp_path / "a") / "metrics.jsonl")
    rows_b = read_metrics(run_dir / "metrics.jsonl")
    assert len(rows_a) == 10 and rows_a == rows_b
    assert len({row["p"] for row in rows_a}) >= 2  # p moved, so its state mattered
    keys = json.loads((run_dir / "run.json").read_text())["keys"]
    assert keys["p"]["namespace"] == "aug"  # W&B shows it as aug/p


def test_the_augmentation_example_of_docs_plugins_runs(tmp_path: Path) -> None:
    """docs/plugins.md's example augmentation, loaded from the docs and trained with its
    recipe line for a few steps."""
    _, rows = train_plugin_example(tmp_path, "ganlab_register_augmentations")
    assert [row["step"] for row in rows] == [1, 2, 3]
