"""Tests for the multi-scale sliced Wasserstein distance (ganlab.swd)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from ganlab_plugins.data.faces import make_faces
from ganlab_plugins.metrics.swd import _upsample, laplacian_pyramid, sliced_wasserstein, swd

COUNT = 128
SIZE = 32


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """A fixed set of cartoon faces, uint8 (COUNT, 3, SIZE, SIZE)."""
    return make_faces(COUNT, SIZE, seed=0)


def _noisy(images: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    """Add Gaussian noise of ``sigma`` (in uint8 units) and requantise."""
    g = torch.Generator().manual_seed(seed)
    noisy = images.float() + sigma * torch.randn(images.shape, generator=g)
    return noisy.clamp(0, 255).round().to(torch.uint8)


def _blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-blur with standard deviation ``sigma`` pixels and requantise."""
    out = TF.gaussian_blur(images.float(), kernel_size=[9, 9], sigma=[sigma, sigma])
    return out.clamp(0, 255).round().to(torch.uint8)


# --- sliced_wasserstein -------------------------------------------------------------------


def test_sliced_wasserstein_of_a_set_with_itself_is_zero() -> None:
    a = torch.randn(500, 20, generator=torch.Generator().manual_seed(0))
    assert sliced_wasserstein(a, a) == 0.0
    # Permuting the samples does not change an empirical distribution.
    assert sliced_wasserstein(a, a[torch.randperm(500)]) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_dimensional_case_matches_scipy(seed: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, size=(300, 1))
    b = rng.exponential(2.0, size=(300, 1))
    expected = stats.wasserstein_distance(a[:, 0], b[:, 0])
    # In 1-D the only unit directions are +1 and -1; both give the exact W1 distance.
    got = sliced_wasserstein(torch.from_numpy(a), torch.from_numpy(b), directions=1, repeats=3)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # Equal sizes: W1 is the mean absolute difference of the sorted samples.
    assert got == pytest.approx(np.abs(np.sort(a[:, 0]) - np.sort(b[:, 0])).mean(), rel=1e-9)


@pytest.mark.parametrize(("dim", "directions", "repeats"), [(2, 1, 1), (3, 5, 2), (6, 16, 4)])
def test_low_dimensional_case_matches_numpy_reference(
    dim: int, directions: int, repeats: int
) -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(200, dim))
    b = rng.normal(size=(200, dim)) * 1.5 + 0.3
    got = sliced_wasserstein(
        torch.from_numpy(a),
        torch.from_numpy(b),
        directions=directions,
        repeats=repeats,
        generator=torch.Generator().manual_seed(7),
    )
    # Reproduce the documented draws: per repeat, randn(D, directions), columns normalised.
    g = torch.Generator().manual_seed(7)
    per_repeat = []
    for _ in range(repeats):
        dirs = torch.randn(dim, directions, generator=g, dtype=torch.float64).numpy()
        dirs = dirs / np.linalg.norm(dirs, axis=0, keepdims=True)
        w1 = [stats.wasserstein_distance(a @ dirs[:, j], b @ dirs[:, j]) for j in range(directions)]
        per_repeat.append(np.mean(w1))
    assert got == pytest.approx(float(np.mean(per_repeat)), rel=1e-9)


def test_sliced_wasserstein_of_a_translation() -> None:
    # Shifting a set by t moves every projection onto u by <t, u>: SWD = mean |<t, u>|.
    a = torch.randn(100, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    t = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    got = sliced_wasserstein(a, a + t, directions=64, repeats=2, generator=g)
    g = torch.Generator().manual_seed(5)
    dirs = torch.cat([torch.randn(4, 64, generator=g, dtype=torch.float64) for _ in range(2)], 1)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    assert got == pytest.approx(float((t @ dirs).abs().mean()), rel=1e-9)


def test_sliced_wasserstein_is_deterministic_and_uses_no_global_rng() -> None:
    a = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    b = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    state = torch.get_rng_state()
    first = sliced_wasserstein(a, b)
    assert torch.equal(torch.get_rng_state(), state)
    assert sliced_wasserstein(a, b) == first
    assert sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(0)) == first


@pytest.mark.parametrize(
    ("a_shape", "b_shape"), [((10, 3), (11, 3)), ((10, 3), (10, 4)), ((10,), (10,))]
)
def test_sliced_wasserstein_rejects_mismatched_inputs(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError):
        sliced_wasserstein(torch.zeros(a_shape), torch.zeros(b_shape))


# --- Laplacian pyramid ---------------------------------------------------------------------


@pytest.mark.parametrize(("size", "levels"), [(16, 1), (20, 1), (32, 2), (48, 2), (100, 3)])
def test_laplacian_pyramid_levels_and_exact_reconstruction(size: int, levels: int) -> None:
    images = make_faces(2, size, seed=3).float()
    pyramid = laplacian_pyramid(images, min_resolution=16)
    assert len(pyramid) == levels
    assert pyramid[0].shape == images.shape
    rebuilt = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        rebuilt = band + _upsample(rebuilt, (band.shape[-2], band.shape[-1]))
    torch.testing.assert_close(rebuilt, images, rtol=0, atol=1e-3)


# --- multi-scale swd -----------------------------------------------------------------------


def test_swd_keys_and_mean(faces: torch.Tensor) -> None:
    result = swd(faces[:16], make_faces(16, SIZE, seed=1))
    assert list(result) == ["swd", "swd_32", "swd_16"]
    assert result["swd"] == pytest.approx((result["swd_32"] + result["swd_16"]) / 2)
    odd = swd(make_faces(4, 48, seed=0), make_faces(4, 48, seed=1))
    assert list(odd) == ["swd", "swd_48", "swd_24"]
    assert all(isinstance(v, float) and v >= 0 for v in odd.values())


def test_swd_is_deterministic_given_seed(faces: torch.Tensor) -> None:
    other = make_faces(32, SIZE, seed=1)
    state = torch.get_rng_state()
    first = swd(faces[:32], other, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert swd(faces[:32], other, seed=4) == first
    assert swd(faces[:32], other, seed=5) != first


def test_identical_and_same_distribution_sets_score_far_below_noise(faces: torch.Tensor) -> None:
    identical = swd(faces, faces)["swd"]
    same_distribution = swd(faces, make_faces(COUNT, SIZE, seed=1))["swd"]
    g = torch.Generator().manual_seed(9)
    noise = torch.randint(0, 256, faces.shape, generator=g, dtype=torch.uint8)
    versus_noise = swd(faces, noise)["swd"]
    # Patches are drawn independently for the two sets, so identical sets are not at
    # exactly 0, but both are an order of magnitude below faces vs. uniform noise.
    assert identical < 0.15 * versus_noise
    assert same_distribution < 0.15 * versus_noise
    assert identical < same_distribution * 1.5


def test_swd_grows_monotonically_with_noise(faces: torch.Tensor) -> None:
    scores = [swd(faces, _noisy(faces, sigma))["swd"] for sigma in (0, 10, 20, 40, 80)]
    assert all(x < y for x, y in itertools.pairwise(scores)), scores


def test_swd_grows_monotonically_with_blur(faces: torch.Tensor) -> None:
    scores = [swd(faces, faces)["swd"]]
    scores += [swd(faces, _blurred(faces, sigma))["swd"] for sigma in (0.7, 1.2, 2.0, 3.0)]
    assert all(x < y for x, y in itertools.pairwise(scores)), scores


def test_float_input_in_minus_one_one_matches_uint8(faces: torch.Tensor) -> None:
    other = make_faces(16, SIZE, seed=2)
    as_uint8 = swd(faces[:16], other)
    as_float = swd(faces[:16].float() / 127.5 - 1.0, other.float() / 127.5 - 1.0)
    assert as_float == pytest.approx(as_uint8, rel=1e-4)


def test_single_image_and_any_channel_count() -> None:
    one = swd(make_faces(1, SIZE, seed=0), make_faces(1, SIZE, seed=1))
    assert one["swd"] > 0
    gray = swd(make_faces(4, SIZE, seed=0)[:, :1], make_faces(4, SIZE, seed=1)[:, :1])
    assert gray["swd"] > 0
    g = torch.Generator().manual_seed(0)
    five = torch.randint(0, 256, (4, 5, 20, 20), generator=g, dtype=torch.uint8)
    assert list(swd(five, five.flip(0))) == ["swd", "swd_20"]


@pytest.mark.parametrize(
    ("real_shape", "fake_shape"),
    [
        ((4, 3, 32, 32), (5, 3, 32, 32)),  # different N
        ((4, 3, 32, 32), (4, 1, 32, 32)),  # different channels
        ((4, 3, 32, 32), (4, 3, 16, 16)),  # different size
        ((4, 3, 8, 8), (4, 3, 8, 8)),  # smaller than min_resolution
        ((3, 32, 32), (3, 32, 32)),  # not 4-D
    ],
)
def test_swd_rejects_bad_shapes(real_shape: tuple[int, ...], fake_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        swd(torch.zeros(real_shape, dtype=torch.uint8), torch.zeros(fake_shape, dtype=torch.uint8))


def test_swd_mismatched_counts_message() -> None:
    with pytest.raises(ValueError, match="same shape"):
        swd(make_faces(4, SIZE), make_faces(5, SIZE))
