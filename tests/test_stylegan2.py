"""StyleGAN2 (plugins/stylegan2/models.py) and its path-length penalty
(plugins/stylegan2/path_length.py):
shapes, parameter counts against the authors' configurations, demodulation, style mixing,
the intermediates protocol, and the penalty against its closed form on a linear G."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import ganlab
from ganlab.files.metrics_log import read_metrics
from ganlab_plugins.stylegan2 import models as sg
from ganlab_plugins.stylegan2.layers import lowpass_filter, modulated_conv2d
from ganlab_plugins.stylegan2.path_length import PathLength
from tests.conftest import train, write_recipe

TINY_G = sg.GeneratorParams(z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)
TINY_D = sg.DiscriminatorParams(channel_base=64, channel_max=8)


@pytest.mark.parametrize("size", [32, 64])
def test_shapes(size: int) -> None:
    g = sg.build_generator(TINY_G, (3, size, size))
    d = sg.build_discriminator(TINY_D, (3, size, size))
    z = torch.randn(4, *g.latent_shape)
    images, found = g.forward_with_intermediates(z)
    assert g.latent_shape == (8,)
    assert images.shape == (4, 3, size, size)
    # One w per convolution plus the last toRGB: 2 log2(size) - 2 (8 at 32 px, 10 at 64 px).
    assert found["w"].shape == (4, 2 * int(math.log2(size)) - 2, 8)
    assert d(images).shape == (4,)
    assert d(images[:3]).shape == (3,)  # a batch that is no multiple of the mbstd group


def closed_form_counts(
    size: int, channel_base: int, channel_max: int, mapping_layers: int, z: int = 512, w: int = 512
) -> tuple[int, int]:
    """G's and D's parameter counts, layer by layer, from the paper's architecture."""

    def ch(res: int) -> int:
        return min(channel_base // res, channel_max)

    def fc(fan_in: int, fan_out: int) -> int:
        return fan_in * fan_out + fan_out

    def modulated(fan_in: int, fan_out: int, k: int) -> int:  # affine, weight, bias
        return fc(w, fan_in) + fan_out * fan_in * k * k + fan_out

    g = fc(z, w) + (mapping_layers - 1) * fc(w, w)
    resolutions = [2**i for i in range(2, int(math.log2(size)) + 1)]
    for res in resolutions:
        if res == 4:
            g += ch(4) * 4 * 4  # the constant input
        else:
            g += modulated(ch(res // 2), ch(res), 3) + 1  # conv0 (upsampling), noise strength
        g += modulated(ch(res), ch(res), 3) + 1  # conv1, noise strength
        g += modulated(ch(res), 3, 1)  # toRGB
    d = 3 * ch(size) + ch(size)  # fromRGB
    for res in reversed(resolutions[1:]):
        tmp, out = ch(res), ch(res // 2)
        d += fc(tmp * 9, tmp) + fc(tmp * 9, out) + tmp * out  # conv0, conv1, skip (no bias)
    c = ch(4)
    d += fc((c + 1) * 9, c) + fc(c * 16, c) + fc(c, 1)  # epilogue: conv (+ mbstd), fc, out
    return g, d


@pytest.mark.parametrize(
    ("size", "channel_base", "mapping_layers", "authors"),
    [
        # Their cfg 'auto' at 32 px on one GPU (fmaps 0.5, map 2), and cfg 'paper256'.
        (32, 16384, 2, (19_947_539, 21_507_073)),
        (256, 16384, 8, (24_767_458, 24_001_089)),
    ],
)
def test_parameter_counts_are_the_papers(
    size: int, channel_base: int, mapping_layers: int, authors: tuple[int, int]
) -> None:
    """``authors``: what NVlabs/stylegan2-ada-pytorch's Generator and Discriminator count
    (z_dim = w_dim = 512, channel_max 512) in these configurations (their train.py)."""
    g_params = sg.GeneratorParams(
        mapping_layers=mapping_layers, channel_base=channel_base, channel_max=512
    )
    d_params = sg.DiscriminatorParams(channel_base=channel_base, channel_max=512)
    with torch.device("meta"):  # counts without allocating the weights
        g = sg.build_generator(g_params, (3, size, size))
        d = sg.build_discriminator(d_params, (3, size, size))
    counts = (sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters()))
    assert counts == closed_form_counts(size, channel_base, 512, mapping_layers)
    assert counts == authors


def test_demodulation_gives_unit_variance_feature_maps() -> None:
    """For independent unit-variance inputs, each demodulated output channel has unit
    variance whatever the weights and styles (the paper's eq. 3); without, it does not."""
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, 16, 16, generator=rng)
    weight = (
        torch.randn(8, 16, 3, 3, generator=rng) * torch.linspace(0.1, 5, 8)[:, None, None, None]
    )
    styles = torch.randn(64, 16, generator=rng) * 3
    f = lowpass_filter()
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # away from the zero padding
    demodulated = modulated_conv2d(x, weight, styles, f)[inner]
    stds = demodulated.transpose(0, 1).reshape(8, -1).std(dim=1)
    torch.testing.assert_close(stds, torch.ones(8), atol=0.05, rtol=0)
    plain = modulated_conv2d(x, weight, styles, f, demodulate=False)[inner]
    assert plain.transpose(0, 1).reshape(8, -1).std(dim=1).max() > 10


def test_style_mixing_uses_two_ws() -> None:
    g = sg.build_generator(TINY_G.model_copy(update={"style_mixing": 1.0}), (3, 16, 16))
    z = torch.randn(5, 8)
    torch.manual_seed(3)
    _, found = g.forward_with_intermediates(z)
    ws = found["w"]
    own = g.mapping(z, track=False)
    for image in range(5):
        rows = torch.unique(ws[image], dim=0)
        assert len(rows) == 2  # its own w for the layers before the cut-off, another after
        torch.testing.assert_close(ws[image, 0], own[image])
        assert not torch.equal(ws[image, -1], own[image])
    g.eval()  # no mixing outside training
    _, found = g.forward_with_intermediates(z)
    assert all(len(torch.unique(found["w"][i], dim=0)) == 1 for i in range(5))


def test_forward_with_intermediates_draws_as_forward() -> None:
    g = sg.build_generator(TINY_G, (3, 16, 16))
    with torch.no_grad():
        for layer in g.modules():
            if isinstance(layer, sg.SynthesisLayer):
                layer.noise_strength.fill_(0.5)  # so that the noise draws show
    z = torch.randn(4, 8)
    torch.manual_seed(7)
    plain = g(z)
    torch.manual_seed(7)
    images, _ = g.forward_with_intermediates(z)
    torch.testing.assert_close(images, plain, rtol=0, atol=0)
    torch.manual_seed(8)
    assert not torch.equal(g(z), plain)  # the draws matter: noise and mixing


def test_truncation_pulls_every_image_to_the_average() -> None:
    g = sg.build_generator(TINY_G.model_copy(update={"truncation_psi": 0.0}), (3, 16, 16))
    g(torch.randn(16, 8))  # training mode: tracks w_avg
    assert g.mapping.w_avg.abs().sum() > 0
    g.eval()
    images = g(torch.randn(4, 8))  # psi 0: every image is w_avg's (noise strengths are 0)
    torch.testing.assert_close(images, images[:1].expand(4, -1, -1, -1))


class LinearG(nn.Module):
    """images = A w with w = z M (M the identity): the Jacobian of the images in w is A."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.latent_shape = (a.shape[1],)
        self.a = nn.Parameter(a)
        self.mix = nn.Parameter(torch.eye(a.shape[1]))

    def forward_with_intermediates(
        self, z: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = z @ self.mix
        return (w @ self.a.t()).reshape(len(z), 3, 4, 4), {"w": w}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.forward_with_intermediates(z)[0]


def penalty_pass(g: nn.Module, latents: torch.Tensor) -> ganlab.GeneratorPass:
    return ganlab.GeneratorPass(g, latents, torch.zeros(0))


def test_path_length_equals_its_closed_form_on_a_linear_g() -> None:
    """Exact: with the noise draw fixed by the seed, the lengths are |A^T y| for the same
    y = noise / sqrt(H W) (A known, no autograd), the moving average a lerp of their mean,
    the penalty the mean of (length - average)^2, and its gradient in A the closed form
    d|A^T y| / dA = y (A^T y)^T / |A^T y|, through the average's share too."""
    a = torch.randn(48, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = LinearG(a.float())
    penalty = PathLength(weight=2.0, every=4, batch_shrink=2, decay=0.01)
    latents = torch.cat([torch.randn(4, 6), torch.full((4, 6), math.nan)])  # only 4 are used
    average = 0.0
    for seed in (1, 2):
        torch.manual_seed(seed)
        value = penalty.value(penalty_pass(g, latents))
        (grad,) = torch.autograd.grad(value, g.a)
        torch.manual_seed(seed)
        y = torch.randn(4, 3, 4, 4).double().reshape(4, 48) / 4  # sqrt(H W) = 4
        jty = y @ a  # (A^T y_i) for each image
        lengths = jty.norm(dim=1)
        average = average + 0.01 * (lengths.mean().item() - average)
        expected = (lengths - average).square().mean()
        torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=0)
        torch.testing.assert_close(
            penalty.pl_mean.double(), torch.tensor(average, dtype=torch.float64)
        )
        torch.testing.assert_close(penalty.statistics()["length"].double(), lengths.mean())
        d_length = y[:, :, None] * jty[:, None, :] / lengths[:, None, None]  # (4, 48, 6)
        d_average = 0.01 * d_length.mean(dim=0)
        residual = (lengths - average)[:, None, None]
        expected_grad = (2 * residual * (d_length - d_average)).mean(dim=0)
        torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-4, atol=1e-7)


def test_path_length_in_expectation() -> None:
    """With A = c Q (Q with orthonormal columns), |A^T y| = c / sqrt(H W) chi_d exactly, so
    over 20,000 images the mean squared length is c^2 d / (H W) and the mean length
    c / sqrt(H W) E[chi_d], within 4 standard errors."""
    d, c = 6, 3.0
    q, _ = torch.linalg.qr(torch.randn(48, d, generator=torch.Generator().manual_seed(0)))
    g = LinearG(c * q)
    penalty = PathLength(weight=2.0, every=4, batch_shrink=2, decay=1.0)  # average = this batch
    torch.manual_seed(0)
    value = penalty.value(penalty_pass(g, torch.randn(40_000, d)))
    scale = c / 4  # c / sqrt(H W)
    mean_chi = math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
    variance = scale**2 * (d - mean_chi**2)  # of one length
    assert abs(penalty.statistics()["length"].item() - scale * mean_chi) < 4 * math.sqrt(
        variance / 20_000
    )
    # decay 1: the penalty is the lengths' variance around their own mean.
    assert abs(value.item() - variance) < 4 * variance * math.sqrt(2 / 20_000) * 2


def test_path_length_resumes_its_average() -> None:
    g = LinearG(torch.randn(48, 6))
    latents = torch.randn(8, 6)
    first, resumed = PathLength(2.0, 4, 2, 0.01), PathLength(2.0, 4, 2, 0.01)
    for seed in (1, 2):
        torch.manual_seed(seed)
        first.value(penalty_pass(g, latents))
    resumed.load_state_dict(first.state_dict())
    torch.manual_seed(3)
    expected = first.value(penalty_pass(g, latents))
    torch.manual_seed(3)
    assert torch.equal(resumed.value(penalty_pass(g, latents)), expected)
    assert torch.equal(resumed.pl_mean, first.pl_mean)


def test_path_length_needs_a_generator_that_exposes_w() -> None:
    g = nn.Sequential(nn.Linear(6, 48), nn.Unflatten(1, (3, 4, 4)))
    with pytest.raises(ganlab.GanlabError, match="exposes no 'w'"):
        PathLength(2.0, 4, 2, 0.01).value(penalty_pass(g, torch.randn(8, 6)))


def test_a_stylegan2_run_trains_with_its_regularizers(tmp_path: Path) -> None:
    """Through the step: lazy R1 and path length are logged at their steps only, with
    path length's moving average, and the run finishes with the EMA ramp."""
    recipe = {
        "seed": 0,
        "device": "cpu",
        "data": {"name": "cartoon_faces", "params": {"count": 32, "image_size": 16}},
        "generator": {"name": "stylegan2", "params": TINY_G.model_dump()},
        "discriminator": {"name": "stylegan2", "params": TINY_D.model_dump()},
        "loss": {"name": "bce"},
        "train": {"steps": 3, "batch_size": 8, "ema": 0.99, "ema_rampup": 0.05},
        "penalties": [
            {"name": "r1", "params": {"weight": 0.5, "every": 2}},
            {"name": "path_length", "params": {"every": 2}},
        ],
    }
    folder = train(write_recipe(tmp_path / "sg2.yaml", recipe), tmp_path / "out")
    rows = [row for row in read_metrics(folder / "metrics.jsonl") if "loss_g" in row]
    assert [("r1" in row, "path_length" in row) for row in rows] == [
        (True, True),
        (False, False),
        (True, True),
    ]
    averages = [row["path_length.pl_mean"] for row in rows]
    assert 0 < averages[0] == averages[1] < averages[2]  # kept between its steps
