"""A run knows its data: a resume on added, removed or changed images is refused before
anything is written, naming them, unless --accept-changed-data; and the decode-once cache
leaves no temporary file behind a killed build."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.cache import cache_path, prepare_cache
from ganlab_plugins.data.datasets import ImageFolderParams, build_image_folder
from tests.conftest import invoke, tiny_recipe, train, write_jpegs, write_recipe


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def stopped(tmp_path: Path) -> tuple[Path, Path]:
    """A run of 2 steps (a checkpoint each) on 12 images; its recipe and its folder."""
    write_jpegs(tmp_path / "images", 12, (24, 24))
    spec = tiny_recipe(tmp_path / "images")
    spec["train"] = {"steps": 2, "batch_size": 4, "checkpoint_every": 1}
    path = write_recipe(tmp_path / "r.yaml", spec)
    return path, train(path, tmp_path / "runs")


def test_run_json_records_the_data(stopped: tuple[Path, Path]) -> None:
    _, run_dir = stopped
    info = json.loads((run_dir / "run.json").read_text())
    assert info["data"]["images"] == 12 and len(info["data"]["digest"]) == 64
    names = json.loads((run_dir / "data.json").read_text())["names"]
    assert names == [f"{i:06d}.jpg" for i in range(1, 13)]


def test_resume_on_added_and_changed_images_is_refused_then_accepted(
    tmp_path: Path, stopped: tuple[Path, Path]
) -> None:
    _, run_dir = stopped
    images = tmp_path / "images"
    Image.new("RGB", (24, 24), (9, 9, 9)).save(images / "000013.jpg")
    Image.new("RGB", (24, 24), (99, 9, 9)).save(images / "000014.jpg")
    Image.new("RGB", (24, 24), (9, 99, 9)).save(images / "000003.jpg")  # new content
    before = snapshot(run_dir)
    refused = invoke("run", "--resume", str(run_dir), "--set", "train.steps=4")
    assert refused.exit_code == 2, refused.output
    assert "its data changed" in refused.output and "recipe" not in refused.output
    assert "2 image(s) added (000013.jpg, 000014.jpg)" in refused.output
    assert "1 image(s) changed content (000003.jpg)" in refused.output
    assert "--accept-changed-data" in refused.output
    assert snapshot(run_dir) == before  # nothing written

    accepted = invoke(
        "run", "--resume", str(run_dir), "--set", "train.steps=4", "--accept-changed-data"
    )
    assert accepted.exit_code == 0, accepted.output
    info = json.loads((run_dir / "run.json").read_text())
    assert info["resumed"][-1]["accepted_changed_data"] == {"added": 2, "removed": 0, "changed": 1}
    assert info["data"]["images"] == 14 and info["status"] == "completed"
    # The new data is the run's now: the next resume compares against it.
    again = invoke("run", "--resume", str(run_dir), "--set", "train.steps=5")
    assert again.exit_code == 0, again.output


def test_removed_images_are_blamed_on_the_data_not_the_recipe(
    tmp_path: Path, stopped: tuple[Path, Path]
) -> None:
    _, run_dir = stopped
    for i in range(5, 13):
        (tmp_path / "images" / f"{i:06d}.jpg").unlink()
    refused = invoke("run", "--resume", str(run_dir), "--set", "train.steps=4")
    assert refused.exit_code == 2
    assert "8 image(s) removed (000005.jpg, 000006.jpg" in refused.output
    assert "recipe" not in refused.output


def test_an_uncached_data_set_is_fingerprinted_by_its_files(
    tmp_path: Path, stopped: tuple[Path, Path]
) -> None:
    path, _ = stopped
    run_dir = train(path, tmp_path / "plain", "train.data_cache=false")
    os.utime(tmp_path / "images" / "000002.jpg", ns=(1, 1))
    refused = invoke("run", "--resume", str(run_dir), "--set", "train.steps=4")
    assert refused.exit_code == 2 and "000002.jpg" in refused.output


def test_generated_data_is_fingerprinted_by_its_pixels(tmp_path: Path) -> None:
    spec = tiny_recipe(".", data={"name": "cartoon_faces", "params": {"count": 16}})
    spec["train"] = {"steps": 1, "batch_size": 8}
    path = write_recipe(tmp_path / "faces.yaml", spec)
    first, second = train(path, tmp_path / "a"), train(path, tmp_path / "b")
    digests = [json.loads((d / "run.json").read_text())["data"]["digest"] for d in (first, second)]
    assert digests[0] == digests[1]
    other = train(path, tmp_path / "c", "data.params.seed=1")
    assert json.loads((other / "run.json").read_text())["data"]["digest"] != digests[0]


# --- temporary files of a cache build ------------------------------------------------------


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return int(child.stdout)


def test_a_dead_builds_temporary_file_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "images", 4, (24, 24))
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path / "images"))
    dataset = build_image_folder(ImageFolderParams(root=str(tmp_path / "images"), image_size=16))
    cache = cache_path(dataset)
    cache.parent.mkdir(parents=True, exist_ok=True)
    dead = cache.with_name(f"{cache.name}.{dead_pid()}.tmp")
    dead.write_bytes(b"\0" * 1000)
    busy = cache.with_name(f"{cache.name}.{dead_pid()}.tmp")  # another host's build
    with open(busy, "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = invoke("data", "prepare", str(path), "--workers", "0")
        assert result.exit_code == 0, result.output
        assert not dead.exists() and busy.exists()
    assert cache.is_file()
    busy.unlink()


def test_a_build_killed_midway_leaves_nothing_the_next_build_keeps(tmp_path: Path) -> None:
    # SIGKILL: no handler runs, the temporary file stays until the next build of its key.
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(40):  # enough to take a while to decode
        pixels = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i:03d}.png", compress_level=0)
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(images))
    dataset = build_image_folder(ImageFolderParams(root=str(images), image_size=16))
    temporaries = f"{cache_path(dataset).name}.*.tmp"
    cache = cache_path(dataset).parent
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ganlab.commands.cli",
            "data",
            "prepare",
            str(path),
            "--workers",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(cache.glob(temporaries)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode != 0  # killed during the build, not after it
    result = invoke("data", "prepare", str(path), "--workers", "0")
    assert result.exit_code == 0, result.output
    assert list(cache.glob(temporaries)) == []


class _Interrupted:
    """A data set whose build is interrupted (Ctrl-C, or a signal turned into an exception)
    at its sixth image."""

    image_shape = (1, 4, 4)

    def __len__(self) -> int:
        return 10

    def load_uint8(self, index: int) -> torch.Tensor:
        if index == 5:
            raise KeyboardInterrupt
        return torch.zeros(self.image_shape, dtype=torch.uint8)

    def cache_key(self) -> str:
        return "an interrupted build"


def test_an_interrupted_build_leaves_no_temporary_file(tmp_path: Path) -> None:
    dataset = _Interrupted()
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(dataset, quiet=True)
    path = cache_path(dataset)
    assert list(path.parent.glob(f"{path.name}*")) == []  # neither the cache nor its .tmp
