"""`ganlab sample`: grids, separate files and latent walks from a finished run's generator."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image

from ganlab.commands.sample import frame_columns, sample
from ganlab.engine.restore import restored_generator
from ganlab.engine.sampling import images_of, latent_series, slerp
from ganlab.files.checkpoint import load_checkpoint
from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, only_run_dir

SIZE = 16  # image side of the tiny run
PAD = 2  # make_grid's padding, as in the tutorial


def grid_size(n: int, nrow: int) -> tuple[int, int]:
    """(width, height) of torchvision's make_grid for n images of SIZE, padding 2."""
    if n == 1:
        return SIZE, SIZE  # make_grid returns a single image as it is, without padding
    columns, rows = min(nrow, n), -(-n // nrow)
    return columns * (SIZE + PAD) + PAD, rows * (SIZE + PAD) + PAD


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny quickstart run (3 steps, 16x16, narrow networks), made with the CLI."""
    out = tmp_path_factory.mktemp("sample_runs")
    overrides = [*TINY_QUICKSTART, f"data.params.image_size={SIZE}", "train.steps=3"]
    args = ["run", str(RECIPES / "quickstart.yaml"), "--out", str(out)]
    for override in overrides:
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return only_run_dir(out)


def run_sample(*args: object) -> Result:
    return CliRunner().invoke(sample, [str(a) for a in args], catch_exceptions=True)


def ok(*args: object) -> Result:
    result = run_sample(*args)
    assert result.exit_code == 0, result.output
    return result


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def tile(image: np.ndarray, row: int, column: int) -> np.ndarray:
    """One image of a make_grid grid."""
    top, left = PAD + row * (SIZE + PAD), PAD + column * (SIZE + PAD)
    return image[top : top + SIZE, left : left + SIZE]


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to one grey level (float rounding may differ between batch sizes)."""
    return a.shape == b.shape and int(np.abs(a - b).max()) <= 1


# --- grids --------------------------------------------------------------------------------


def test_grid_in_the_run_folder_by_default(run_dir: Path) -> None:
    result = ok(run_dir, "--seed", 11)
    target = run_dir / "samples" / "sample-s11.png"
    assert str(target) in result.output
    assert Image.open(target).size == grid_size(64, 8)


@pytest.mark.parametrize(("n", "nrow"), [(10, 4), (3, 8), (1, 8)])
def test_grid_size_follows_n_and_nrow(run_dir: Path, tmp_path: Path, n: int, nrow: int) -> None:
    ok(run_dir, "-n", n, "--nrow", nrow, "--out", tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").size == grid_size(n, nrow)


def test_same_seed_same_bytes_other_seed_other_images(run_dir: Path, tmp_path: Path) -> None:
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        ok(run_dir, "-n", 8, "--seed", seed, "--out", tmp_path / f"{name}.png")
    a, b, c = ((tmp_path / f"{x}.png").read_bytes() for x in "abc")
    assert a == b
    assert a != c


def test_checkpoint_file_and_run_folder_give_the_same_images(run_dir: Path, tmp_path: Path) -> None:
    ok(run_dir, "-n", 4, "--out", tmp_path / "folder.png")
    ok(run_dir / "checkpoints" / "final.pt", "-n", 4, "--out", tmp_path / "file.png")
    assert (tmp_path / "folder.png").read_bytes() == (tmp_path / "file.png").read_bytes()


def test_separate_writes_n_files_equal_to_the_grid(run_dir: Path, tmp_path: Path) -> None:
    result = ok(run_dir, "-n", 5, "--separate", "--out", tmp_path / "each")
    files = sorted((tmp_path / "each").iterdir())
    assert [f.name for f in files] == [f"{i:04d}.png" for i in range(5)]
    assert "Wrote 5 images" in result.output
    ok(run_dir, "-n", 5, "--nrow", 5, "--out", tmp_path / "grid.png")
    grid = pixels(tmp_path / "grid.png")
    for i, path in enumerate(files):
        assert (pixels(path) == tile(grid, 0, i)).all()


# --- eval mode and latent vectors ---------------------------------------------------------


def test_generator_is_in_eval_mode(run_dir: Path, tmp_path: Path) -> None:
    generator, state, _, _ = restored_generator(run_dir, torch.device("cpu"))
    assert state["step"] == 3
    assert not any(m.training for m in generator.modules())
    # In eval mode an image depends only on its own latent vector ...
    latents = latent_series(generator, 8, seed=0)
    one, eight = (
        torch.cat(list(images_of(generator, z, torch.device("cpu"))))
        for z in (latents[:1], latents)
    )
    assert torch.allclose(one[0], eight[0], atol=1e-6)
    # ... in training mode batch-norm would use the batch's statistics (the check has teeth).
    with torch.no_grad():
        generator.train()
        assert (generator(latents[:2])[0] - generator(latents)[0]).abs().max() > 1e-3
    # The same through the command: image 0 alone and in a batch of 8.
    ok(run_dir, "-n", 1, "--separate", "--out", tmp_path / "one")
    ok(run_dir, "-n", 8, "--out", tmp_path / "eight.png")
    first = tile(pixels(tmp_path / "eight.png"), 0, 0)
    assert close(pixels(tmp_path / "one" / "0000.png"), first)


def test_a_run_with_ema_samples_with_the_averaged_weights(tmp_path: Path) -> None:
    overrides = [*TINY_QUICKSTART, "train.steps=3", "train.ema=0.5"]
    args = ["run", str(RECIPES / "quickstart.yaml"), "--out", str(tmp_path)]
    for override in overrides:
        args += ["--set", override]
    assert invoke(*args).exit_code == 0
    run_dir = only_run_dir(tmp_path)
    generator, state, _, _ = restored_generator(run_dir, torch.device("cpu"))
    loaded = generator.state_dict()
    for key, value in loaded.items():
        assert torch.equal(value, state["generator_ema"][f"module.{key}"]), key
    assert not torch.equal(loaded["main.0.weight"], state["generator"]["main.0.weight"])
    result = ok(run_dir, "-n", 4, "--out", tmp_path / "ema.png")
    assert "Moving average of the generator of" in result.output


def test_latents_do_not_depend_on_n() -> None:
    # 100 values per vector: one batched randn of (1, 100) and of (8, 100) differ on a CPU.
    fake = SimpleNamespace(latent_shape=(100, 1, 1))
    eight = latent_series(fake, 8, seed=3)  # type: ignore[arg-type]
    assert eight.shape == (8, 100, 1, 1)
    assert torch.equal(latent_series(fake, 1, seed=3)[0], eight[0])  # type: ignore[arg-type]
    assert not torch.equal(latent_series(fake, 1, seed=4)[0], eight[0])  # type: ignore[arg-type]


def test_slerp_keeps_ends_exact_and_stays_on_the_sphere() -> None:
    start = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    end = torch.tensor([[0.0, 1.0], [4.0, 0.0]])  # orthogonal; parallel (linear fallback)
    walk = slerp(start, end, 5)
    assert walk.shape == (2, 5, 2)
    assert torch.equal(walk[:, 0], start) and torch.equal(walk[:, -1], end)
    assert torch.allclose(walk[0].norm(dim=1), torch.ones(5))  # lerp would dip to 0.707
    assert torch.allclose(walk[0, 2], torch.tensor([0.5**0.5, 0.5**0.5]))
    assert torch.allclose(walk[1, :, 0], torch.tensor([2.0, 2.5, 3.0, 3.5, 4.0]))


def test_frame_columns_near_square() -> None:
    assert [frame_columns(k) for k in (1, 2, 3, 4, 5, 6, 8, 9, 12)] == [1, 2, 2, 2, 3, 3, 4, 3, 4]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_images_on_cpu_and_gpu(run_dir: Path, tmp_path: Path) -> None:
    ok(run_dir, "-n", 8, "--device", "cpu", "--out", tmp_path / "cpu.png")
    ok(run_dir, "-n", 8, "--device", "cuda", "--out", tmp_path / "gpu.png")
    difference = np.abs(pixels(tmp_path / "cpu.png") - pixels(tmp_path / "gpu.png"))
    assert difference.max() <= 2, difference.max()  # same latents; float rounding only


# --- interpolation ------------------------------------------------------------------------


def test_interpolate_writes_a_walk_grid_and_a_looping_gif(run_dir: Path, tmp_path: Path) -> None:
    rows, frames = 3, 5
    out = tmp_path / "walk.png"
    result = ok(run_dir, "--interpolate", "--rows", rows, "--frames", frames, "--out", out)
    gif_path = tmp_path / "walk.gif"
    assert str(out) in result.output and str(gif_path) in result.output

    walks = pixels(out)
    assert Image.open(out).size == grid_size(rows * frames, frames)  # one walk per row
    # The walks are one path through rows + 1 random points: each starts where the last ended.
    for row in range(rows - 1):
        assert close(tile(walks, row, frames - 1), tile(walks, row + 1, 0))
    # ... and walk i starts at image i of a plain sample with the same seed.
    ok(run_dir, "-n", rows, "--nrow", 1, "--out", tmp_path / "points.png")
    points = pixels(tmp_path / "points.png")
    for row in range(rows):
        assert close(tile(walks, row, 0), tile(points, row, 0))

    gif = Image.open(gif_path)
    assert gif.n_frames == 2 * frames - 2  # forward, then back without repeating the ends
    columns = frame_columns(rows)
    assert gif.size == grid_size(rows, columns)
    shown = []
    for k in range(gif.n_frames):
        gif.seek(k)
        shown.append(np.asarray(gif.convert("RGB")).astype(int))
    for k in range(1, frames - 1):  # the way back replays the way there
        assert (shown[k] == shown[2 * frames - 2 - k]).all()
    # Frame t shows every walk at step t (GIF colours are quantised: compare loosely).
    for k, step in [(0, 0), (frames - 1, frames - 1)]:
        for row in range(rows):
            gif_tile = tile(shown[k], row // columns, row % columns)
            assert np.abs(gif_tile - tile(walks, row, step)).mean() < 8


def test_walk_files_go_to_the_run_folder_by_default(run_dir: Path) -> None:
    result = ok(run_dir, "--interpolate", "--seed", 12, "--rows", 2, "--frames", 3)
    png, gif = run_dir / "samples" / "walk-s12.png", run_dir / "samples" / "walk-s12.gif"
    assert png.is_file() and gif.is_file()
    assert str(png) in result.output and str(gif) in result.output


# --- finding checkpoints, and mistakes ----------------------------------------------------


def test_folder_without_final_takes_the_newest_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "run"
    (other / "checkpoints").mkdir(parents=True)
    shutil.copy(run_dir / "checkpoints" / "final.pt", other / "checkpoints" / "last.pt")
    result = ok(other, "-n", 2)
    assert (other / "samples" / "sample-s0.png").is_file()
    assert "last.pt" in result.output


@pytest.mark.parametrize("kind", ["missing", "empty folder"])
def test_nothing_to_sample_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nothing"
    if kind == "empty folder":
        (target / "checkpoints").mkdir(parents=True)
    result = run_sample(target)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    if kind == "missing":
        assert (
            f"{str(target)!r} not found" in result.output
            and "folder of a finished run" in result.output
        )
    else:
        assert f"No checkpoint in {target / 'checkpoints'}" in result.output


def test_recipe_naming_a_component_that_is_gone(run_dir: Path, tmp_path: Path) -> None:
    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    state["recipe"]["generator"]["name"] = "dcgann"
    torch.save(state, tmp_path / "old.pt")
    result = run_sample(tmp_path / "old.pt", "--out", tmp_path / "x.png")
    assert result.exit_code == 2, result.output
    assert "generator.name: unknown generator 'dcgann'" in result.output
    assert 'Did you mean "dcgan"?' in result.output
    assert not (tmp_path / "x.png").exists()


def test_existing_output_is_never_overwritten(run_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "taken.png"
    png.write_bytes(b"mine")
    result = run_sample(run_dir, "--out", png)
    assert result.exit_code == 2
    assert f"{png} already exists" in result.output and "--seed" in result.output
    assert png.read_bytes() == b"mine"

    # A walk whose GIF exists writes neither file.
    (tmp_path / "walk.gif").write_bytes(b"mine")
    result = run_sample(run_dir, "--interpolate", "--out", tmp_path / "walk.png")
    assert result.exit_code == 2 and "walk.gif already exists" in result.output
    assert not (tmp_path / "walk.png").exists()
    assert (tmp_path / "walk.gif").read_bytes() == b"mine"

    # A folder for --separate may exist if it is empty, not if it holds anything.
    (tmp_path / "each").mkdir()
    ok(run_dir, "-n", 2, "--separate", "--out", tmp_path / "each")
    result = run_sample(run_dir, "-n", 2, "--separate", "--out", tmp_path / "each")
    assert result.exit_code == 2 and "already exists" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interpolate", "-n", "4"], "-n/--num does not apply with --interpolate"),
        (["--interpolate", "--separate"], "--separate does not apply with --interpolate"),
        (["--frames", "4"], "--frames does not apply without --interpolate"),
        (["--separate", "--nrow", "4"], "--nrow does not apply with --separate"),
        (["--out", "grid.jpg"], "give a file name ending in .png"),
        (["--device", "gpu"], "device 'gpu': not a device"),
    ],
)
def test_option_mistakes(run_dir: Path, args: list[str], message: str) -> None:
    result = run_sample(run_dir, *args)
    assert result.exit_code == 2
    assert message in result.output
