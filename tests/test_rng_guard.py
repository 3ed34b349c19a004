"""Reproducibility is the engine's: what callbacks, loggers and metrics draw never shifts
training's random streams (docs/reproducibility.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import tiny_recipe, train, write_jpegs, write_recipe

#: A generator that draws random numbers in training mode (dropout and noise inputs, as
#: StyleGAN's do), and a callback that draws from every random stream at every event.
NOISY_PLUGIN = """
import math
import random

import numpy as np
import torch
import ganlab


class NoisyGenerator(torch.nn.Module):
    def __init__(self, image_shape):
        super().__init__()
        self.latent_shape = (16,)
        self.image_shape = tuple(image_shape)
        self.fc = torch.nn.Linear(16, math.prod(self.image_shape))
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, z):
        x = self.drop(self.fc(z))
        x = x + 0.1 * torch.randn_like(x)  # a noise input
        return torch.tanh(x).view(-1, *self.image_shape)


class Draws:
    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        random.random(), np.random.rand(), torch.rand(3)

    @ganlab.hookimpl
    def ganlab_log_metrics(self, run, step, values):
        random.random(), np.random.rand(), torch.rand(3)


@ganlab.hookimpl
def ganlab_register_generators(register):
    register("noisy", lambda params, image_shape: NoisyGenerator(image_shape))


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("draws", lambda params: Draws())
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_jpegs(root, 16, (24, 24))
    return root


def test_training_is_the_same_whatever_watches_it(tmp_path: Path, images: Path) -> None:
    """A generator that draws in training mode: samples every step, a callback that draws
    at every event, or nothing watching at all give the same training rows."""
    (tmp_path / "noisy.py").write_text(NOISY_PLUGIN)
    recipe = tiny_recipe(images, plugins=["noisy.py"], generator={"name": "noisy"}, callbacks=[])
    recipe["train"] = {"steps": 4, "batch_size": 8, "log_every": 1}
    path = write_recipe(tmp_path / "noisy.yaml", recipe)
    watched = train(
        path,
        tmp_path / "watched",
        "callbacks=[{name: samples, params: {every: 1}}, {name: draws}]",
    )
    alone = train(path, tmp_path / "alone")
    rows = (watched / "metrics.jsonl").read_text()
    assert rows.count("\n") == 4
    assert rows == (alone / "metrics.jsonl").read_text()
    assert len(list((watched / "samples").glob("step_*.png"))) == 4
