"""Shared fixtures: tiny data sets in CelebA's layout, tiny recipes, and a CLI runner."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner, Result
from PIL import Image

from ganlab.commands.cli import cli

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"

#: Overrides that shrink the tutorial recipe to a few seconds on a CPU.
TINY = [
    "train.steps=3",
    "train.batch_size=8",
    "train.workers=0",
    "data.params.image_size=16",
    "generator.params.ngf=8",
    "generator.params.nz=16",
    "discriminator.params.ndf=8",
]

#: The quickstart recipes' callbacks without `best`, which ranks by a metric key: with the
#: metrics left out, a `best` callback would be refused (no metric produces its key).
QUICKSTART_CALLBACKS = (
    "[{name: console, params: {every: 100}}, {name: samples, params: {every: 500}},"
    " {name: figures, params: {every: 500}}]"
)

#: Overrides that shrink the quickstart to four steps of a tiny DCGAN on 64 faces of 16x16
#: (without its SWD evaluations, which tests/test_runs.py covers).
TINY_QUICKSTART = [
    "data.params.count=64",
    "data.params.image_size=16",
    "generator.params.ngf=8",
    "discriminator.params.ndf=8",
    "train.steps=4",
    "train.batch_size=16",
    "metrics=[]",
    f"callbacks={QUICKSTART_CALLBACKS}",
]


@pytest.fixture(autouse=True)
def _no_wandb_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped recipes log to W&B offline; tests switch that off (W&B's own
    WANDB_MODE=disabled) except tests/test_wandb.py, which runs W&B offline for real."""
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(autouse=True)
def _data_cache_in_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Decoded-data caches go to a folder of the test session, not the user's ~/.cache."""
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path_factory.getbasetemp() / "data-cache"))


def write_jpegs(folder: Path, count: int, size: tuple[int, int] = (178, 218)) -> list[Path]:
    """Random-colour JPEGs of CelebA's size (178x218), named like CelebA's files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"{i + 1:06d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def celeba_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder in the tutorial's layout: <root>/img_align_celeba/000001.jpg ..."""
    root = tmp_path_factory.mktemp("celeba")
    write_jpegs(root / "img_align_celeba", 20)
    return root


@pytest.fixture(scope="session")
def celeba_zip(celeba_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same images as the downloaded img_align_celeba.zip (not unzipped)."""
    archive = tmp_path_factory.mktemp("celeba_zip") / "img_align_celeba.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((celeba_dir / "img_align_celeba").iterdir()):
            z.write(path, f"img_align_celeba/{path.name}")
    return archive


def write_recipe(path: Path, recipe: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def tiny_recipe(root: Path | str, **changes: Any) -> dict[str, Any]:
    """A complete, tiny recipe on an image folder: 3 steps of a small DCGAN at 16x16."""
    recipe: dict[str, Any] = {
        "seed": 1,
        "device": "cpu",
        "data": {"name": "image_folder", "params": {"root": str(root), "image_size": 16}},
        "generator": {"name": "dcgan", "params": {"nz": 16, "ngf": 8}},
        "discriminator": {"name": "dcgan", "params": {"ndf": 8}},
        "loss": {"name": "bce"},
        "train": {"steps": 3, "batch_size": 8},
        "callbacks": [{"name": "console", "params": {"every": 1}}],
    }
    recipe.update(changes)
    return recipe


def invoke(*args: str) -> Result:
    """Run the ganlab CLI in-process, as a user would from a shell."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def only_run_dir(out: Path) -> Path:
    """The single run folder under ``out`` (asserts there is exactly one)."""
    runs = [p for p in out.glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def train(recipe: Path, out: Path, *sets: str) -> Path:
    """``ganlab run RECIPE --out OUT --set ...``, which must succeed: the run folder."""
    args = ["run", str(recipe), "--out", str(out)]
    for override in sets:
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return only_run_dir(out)
