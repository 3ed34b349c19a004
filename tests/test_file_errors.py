"""File-system errors anywhere (a full disk, a read-only folder) and sizes the machine cannot
hold: one message that names the path and what to do, exit 2, and no half-made run folder."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    RECIPES,
    TINY_QUICKSTART,
    invoke,
    only_run_dir,
    tiny_recipe,
    write_jpegs,
    write_recipe,
)
from tests.test_bad_input import snapshot


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"needs to mount a file system (as root): {done.stderr.strip()}")


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` cannot be written to for the duration: by its mode for a normal user, by a
    read-only bind mount for root (whom modes do not stop)."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    mount("--bind", str(folder), str(folder))
    try:
        mount("-o", "remount,ro,bind", str(folder))
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@contextlib.contextmanager
def full_disk(folder: Path, size: str = "2m") -> Iterator[None]:
    """A small file system at ``folder``, filled to the last byte."""
    folder.mkdir(parents=True, exist_ok=True)
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    try:
        with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def images_recipe(tmp_path: Path) -> Path:
    write_jpegs(tmp_path / "images", 8, (24, 24))
    return write_recipe(tmp_path / "recipe.yaml", tiny_recipe(tmp_path / "images"))


def test_a_full_disk_at_the_start_of_a_run_leaves_no_run_folder(
    tmp_path: Path, images_recipe: Path
) -> None:
    disk = tmp_path / "disk"
    with full_disk(disk):
        before = snapshot(disk)
        result = invoke("run", str(images_recipe), "--out", str(disk))
        assert result.exit_code == 2, result.output
        assert "No space left on device" in result.output and str(disk) in result.output
        assert "Give --out a folder you can write to, on a disk with free space" in result.output
        assert "Traceback" not in result.output
        assert snapshot(disk) == before
        assert [p.name for p in disk.iterdir()] == ["filler"]  # no folder left behind


def test_a_read_only_out_folder(tmp_path: Path, images_recipe: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with read_only(out):
        result = invoke("run", str(images_recipe), "--out", str(out))
    assert result.exit_code == 2, result.output
    assert f"Cannot create the run folder under {str(out)!r}" in result.output
    assert "Give --out a folder you can write to" in result.output
    assert list(out.iterdir()) == []


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    args = [f"--set={change}" for change in TINY_QUICKSTART]
    result = invoke("run", str(RECIPES / "quickstart.yaml"), *args, "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    return only_run_dir(tmp_path / "r")


def test_sample_into_a_read_only_run_folder(finished: Path) -> None:
    before = snapshot(finished)
    with read_only(finished / "samples"):
        result = invoke("sample", str(finished), "-n", "4")
    assert result.exit_code == 2, result.output
    assert f"{finished / 'samples' / 'sample-s0.png'}: " in result.output
    assert "Check that the path exists, that you may read and write it" in result.output
    assert "Traceback" not in result.output
    assert snapshot(finished) == before


def test_compare_in_a_read_only_folder(finished: Path, tmp_path: Path, monkeypatch) -> None:
    here = tmp_path / "here"
    here.mkdir()
    with read_only(here):
        monkeypatch.chdir(here)  # into the mount: a folder entered before it stays writable
        result = invoke("compare", str(finished))
        monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert "compare.png: " in result.output and "Traceback" not in result.output
    assert list(here.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("data.params.image_size=1000000", "One step (8 real images of 3x1000000x1000000"),
        ("train.batch_size=100000000000", "One step (100000000000 real images of 3x16x16"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_before_allocating(
    tmp_path: Path, images_recipe: Path, change: str, message: str
) -> None:
    before = snapshot(tmp_path)
    result = invoke("run", str(images_recipe), "--out", str(tmp_path / "runs"), "--set", change)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "TiB of memory, but cpu has" in result.output
    assert snapshot(tmp_path) == before and not (tmp_path / "runs").exists()


def test_a_data_cache_larger_than_its_disk_is_refused(
    tmp_path: Path, images_recipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    with full_disk(cache, size="1m"):
        monkeypatch.setenv("GANLAB_CACHE", str(cache))
        (cache / "filler").unlink()  # 1 MiB free; the cache needs 8 x 3 x 256 x 256 bytes
        size = ("--set", "data.params.image_size=256")
        for args in (
            ["run", str(images_recipe), *size, "--out", str(tmp_path / "runs")],
            ["data", "prepare", str(images_recipe), *size],
        ):
            result = invoke(*args)
            assert result.exit_code == 2, result.output
            assert (
                "The data cache of 8 images of 3x256x256 (uint8) needs 1.5 MiB on disk, but "
                f"{cache} has" in result.output
            )
            assert "set GANLAB_CACHE to a folder on a larger disk" in result.output
            assert list(cache.iterdir()) == [] and not (tmp_path / "runs").exists()


def test_resuming_a_read_only_run_folder(finished: Path) -> None:
    before = snapshot(finished)
    with read_only(finished):
        result = invoke("run", "--resume", str(finished), "--set", "train.steps=8")
    assert result.exit_code == 2, result.output
    assert f"{finished / 'recipe.yaml'}: Read-only file system" in result.output or (
        f"{finished / 'recipe.yaml'}: Permission denied" in result.output
    )
    assert snapshot(finished) == before


def test_sampling_more_images_than_memory_holds_is_refused(finished: Path) -> None:
    before = snapshot(finished)
    result = invoke("sample", str(finished), "-n", str(10**12))
    assert result.exit_code == 2, result.output
    assert "Sampling 1000000000000 images needs at least" in result.output
    assert "or write them one by one with --separate" in result.output
    assert snapshot(finished) == before
