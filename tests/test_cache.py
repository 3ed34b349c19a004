"""Decode once: the uint8 cache gives the same training, is built once, and is never stale."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from tests.conftest import invoke, tiny_recipe, train, write_jpegs, write_recipe

OPENED: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], str) and args[0].endswith(".jpg"):
        OPENED.append(args[0])


sys.addaudithook(_audit)  # records every JPEG this process opens (audit hooks cannot be removed)


def test_cached_and_uncached_runs_are_identical(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "images", 12, (40, 52))
    recipe = tiny_recipe(tmp_path / "images")
    recipe["train"] = {"steps": 5, "batch_size": 4}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    plain = train(path, tmp_path / "plain", "train.data_cache=false")
    cached = train(path, tmp_path / "cached")
    assert read_metrics(plain / "metrics.jsonl") == read_metrics(cached / "metrics.jsonl")
    a = load_checkpoint(plain / "checkpoints" / "final.pt")["generator"]
    b = load_checkpoint(cached / "checkpoints" / "final.pt")["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_decoded_once_then_no_jpeg_is_read(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "images", 10, (40, 52))
    recipe = tiny_recipe(tmp_path / "images")
    recipe["train"] = {"epochs": 3, "batch_size": 4}  # 3 epochs of 3 steps
    path = write_recipe(tmp_path / "r.yaml", recipe)
    OPENED.clear()
    train(path, tmp_path / "first")
    assert len(set(OPENED)) == 10 and len(OPENED) == 10  # each JPEG decoded exactly once
    caches = list(Path(os.environ["GANLAB_CACHE"]).glob("*.u8"))
    OPENED.clear()
    train(path, tmp_path / "second")
    assert OPENED == []  # the second run reads the cache only
    assert list(Path(os.environ["GANLAB_CACHE"]).glob("*.u8")) == caches


def test_a_changed_file_or_size_makes_a_new_cache(tmp_path: Path) -> None:
    files = write_jpegs(tmp_path / "images", 6, (40, 52))
    recipe = tiny_recipe(tmp_path / "images")
    recipe["train"] = {"steps": 1, "batch_size": 4}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    cache = Path(os.environ["GANLAB_CACHE"])
    before = set(cache.glob("*.u8"))
    train(path, tmp_path / "a")
    first = set(cache.glob("*.u8")) - before
    assert len(first) == 1
    write_jpegs(tmp_path / "other", 1, (52, 40))
    files[2].write_bytes((tmp_path / "other" / "000001.jpg").read_bytes())
    OPENED.clear()
    train(path, tmp_path / "b")
    assert len(set(cache.glob("*.u8")) - before) == 2 and len(OPENED) == 6
    train(path, tmp_path / "c", "data.params.image_size=32")
    assert len(set(cache.glob("*.u8")) - before) == 3


def test_the_same_files_through_a_link_use_the_same_cache(tmp_path: Path) -> None:
    # The key holds each file's real path: a folder reached through a symlinked folder, or
    # a symlinked file, is the same data and decodes nothing again.
    files = write_jpegs(tmp_path / "images", 4, (40, 52))
    (tmp_path / "linked").symlink_to(tmp_path / "images")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for file in files:
        (mixed / file.name).symlink_to(file)
    cache = Path(os.environ["GANLAB_CACHE"])
    before = set(cache.glob("*.u8"))
    for folder in ("images", "linked", "mixed"):
        recipe = tiny_recipe(tmp_path / folder)
        recipe["train"] = {"steps": 1, "batch_size": 4}
        OPENED.clear()
        train(write_recipe(tmp_path / f"{folder}.yaml", recipe), tmp_path / "out" / folder)
        assert len(set(cache.glob("*.u8")) - before) == 1
        assert len(OPENED) == (4 if folder == "images" else 0), folder


def test_data_prepare_builds_the_cache_ahead_of_time(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "images", 9, (40, 52))
    recipe = tiny_recipe(tmp_path / "images")
    recipe["train"] = {"steps": 2, "batch_size": 4}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    result = invoke("data", "prepare", str(path), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "Prepared 9 images" in result.output and " img/s) into " in result.output
    again = invoke("data", "prepare", str(path))
    assert "Already prepared: 9 images" in again.output
    OPENED.clear()
    train(path, tmp_path / "runs")
    assert OPENED == []
    faces = invoke("data", "prepare", "recipes/quickstart.yaml")
    assert faces.exit_code == 0 and "needs no cache" in faces.output
