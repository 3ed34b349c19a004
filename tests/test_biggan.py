"""BigGAN (Brock et al. 2019): shapes, parameter counts against a closed form and the paper,
classes and hierarchical latents reaching the image, and the orthogonal penalty's gradient
equal to the one the authors' ``utils.ortho`` adds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import ganlab
from ganlab_plugins.biggan import models as biggan
from ganlab_plugins.biggan.ortho import Ortho, OrthoParams, build_ortho
from tests.conftest import RECIPES, TINY_QUICKSTART, train

# --- closed-form parameter counts, written from the authors' BigGAN.py / layers.py ---------


def conv(cin: int, cout: int, k: int = 3) -> int:
    return k * k * cin * cout + cout  # weight and bias


def attention(ch: int) -> int:
    return 2 * ch * (ch // 8) + 2 * ch * (ch // 2) + 1  # theta, phi, g, o (no bias), gamma


def g_count(
    ch: int, arch: tuple[tuple[int, ...], tuple[int, ...]], classes: int, dim_z: int,
    shared: int, hier: bool, attention_ch: int,
) -> int:  # fmt: skip
    ins, outs = [ch * m for m in arch[0]], [ch * m for m in arch[1]]
    chunk = dim_z // (len(ins) + 1) if hier else dim_z
    cond = shared + (chunk if hier else 0)
    bn = (lambda c: 2 * cond * c) if shared else (lambda c: 2 * classes * c)  # gain, bias
    total = classes * shared + chunk * 16 * ins[0] + 16 * ins[0]  # shared, linear to 4x4
    for cin, cout in zip(ins, outs, strict=True):  # GBlock: conv1, conv2, 1x1 shortcut, two ccbn
        total += conv(cin, cout) + conv(cout, cout) + conv(cin, cout, 1) + bn(cin) + bn(cout)
    total += attention(attention_ch) if attention_ch else 0
    return total + 2 * outs[-1] + conv(outs[-1], 3)  # output BN (affine) and conv


def d_count(ch: int, size: int, classes: int, attention_ch: int) -> int:
    in_mults, out_mults, downs = biggan.D_ARCH[size]
    ins, outs = [3] + [ch * m for m in in_mults], [ch * m for m in out_mults]
    total = 0
    for cin, cout, down in zip(ins, outs, downs, strict=True):  # wide DBlock: 2 convs, shortcut
        shortcut = conv(cin, cout, 1) if cin != cout or down else 0
        total += conv(cin, cout) + conv(cout, cout) + shortcut
    total += attention(attention_ch) if attention_ch else 0
    return total + outs[-1] + 1 + classes * outs[-1]  # linear score, projection embedding


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# The authors' CIFAR-10 config (scripts/launch_cifar_ema.sh with train.py's defaults): 32 px,
# G_ch = D_ch = 64, dim_z 128, no shared embedding, no hierarchical z, no attention, 10 classes.
CIFAR_G = biggan.GeneratorParams(ch=64, dim_z=128, shared_dim=0, hier=False, attention=0)
CIFAR_D = biggan.DiscriminatorParams(ch=64, attention=0)


def test_parameter_counts_at_the_authors_cifar_config() -> None:
    g = biggan.build_generator(CIFAR_G, (3, 32, 32), 10)
    d = biggan.build_discriminator(CIFAR_D, (3, 32, 32), 10)
    # Their init_weights prints G's count without the output batch norm's 512 (4,303,875).
    assert count(g) == g_count(64, biggan.G_ARCH[32], 10, 128, 0, False, 0) == 4_304_387
    assert count(d) == d_count(64, 32, 10, 0) == 4_207_361


def test_parameter_counts_with_shared_embedding_hier_and_attention() -> None:
    # 64 px, narrow: the shared embedding, z chunks (125 = 5 slots of 25) and both attentions.
    g = biggan.build_generator(biggan.GeneratorParams(ch=8, shared_dim=16), (3, 64, 64), 5)
    d = biggan.build_discriminator(biggan.DiscriminatorParams(ch=8), (3, 64, 64), 5)
    assert g.latent_shape == (125,)
    assert count(g) == g_count(8, biggan.G_ARCH[64], 5, 128, 16, True, 2 * 8)  # attention at 64
    assert count(d) == d_count(8, 64, 5, 8)  # after D's first block, at 32


def test_closed_form_gives_the_papers_imagenet_sizes() -> None:
    """The closed form, at 128 px and 1,000 classes, gives the paper's Table 1 sizes (G + D,
    millions): the SA-GAN baseline (ch 64, 81.5) and ch 96 (173.5), no shared embedding;
    G alone at BigGAN's setting is 70.4M (the module builds exactly this count at 128 px,
    checked once by hand: too big for the suite)."""
    paper = {64: 81.5, 96: 173.5}
    for ch, millions in paper.items():
        total = g_count(ch, biggan.G_ARCH[128], 1000, 128, 0, False, 2 * ch)
        total += d_count(ch, 128, 1000, ch)
        assert round(total / 1e6, 1) == millions
    assert g_count(96, biggan.G_ARCH[128], 1000, 120, 128, True, 2 * 96) == 70_433_988


@pytest.mark.parametrize("size", [32, 64])
def test_shapes(size: int) -> None:
    g = biggan.build_generator(biggan.GeneratorParams(ch=8), (3, size, size), 5)
    d = biggan.build_discriminator(biggan.DiscriminatorParams(ch=8), (3, size, size), 5)
    z, labels = torch.randn(3, *g.latent_shape), torch.tensor([0, 2, 4])
    images = g(z, labels)
    assert images.shape == (3, 3, size, size)
    assert images.abs().max() <= 1
    assert d(images, labels).shape == (3,)


def test_class_and_every_z_chunk_reach_the_image() -> None:
    torch.manual_seed(0)
    g = biggan.build_generator(biggan.GeneratorParams(ch=4), (3, 32, 32), 5).eval()
    d = biggan.build_discriminator(biggan.DiscriminatorParams(ch=4), (3, 32, 32), 5).eval()
    z = torch.randn(2, *g.latent_shape)
    with torch.no_grad():
        base = g(z, torch.tensor([0, 0]))
        assert not torch.allclose(base, g(z, torch.tensor([3, 3])), atol=1e-4)
        for chunk in range(4):  # the linear layer's chunk and one per block (3 at 32 px)
            moved = z.clone()
            moved[:, chunk * 32 : (chunk + 1) * 32] += 1
            assert not torch.allclose(base, g(moved, torch.tensor([0, 0])), atol=1e-4)
        scores = d(base, torch.tensor([0, 0]))
        assert not torch.allclose(scores, d(base, torch.tensor([3, 3])), atol=1e-5)


def test_unsupported_sizes_and_settings_are_refused() -> None:
    with pytest.raises(ganlab.GanlabError, match=r"48x48.*32, 64, 128"):
        biggan.build_generator(biggan.GeneratorParams(ch=4), (3, 48, 48), 5)
    with pytest.raises(ganlab.GanlabError, match=r"attention: 4 is not.*\(8, 16, 32\)"):
        biggan.build_generator(biggan.GeneratorParams(ch=4, attention=4), (3, 32, 32), 5)
    with pytest.raises(ganlab.GanlabError, match="at 32 px would have 4 channels"):
        biggan.build_discriminator(biggan.DiscriminatorParams(ch=4), (3, 64, 64), 5)
    with pytest.raises(ganlab.GanlabError, match="shared_dim is 0"):
        biggan.build_generator(biggan.GeneratorParams(ch=4, shared_dim=0), (3, 32, 32), 5)


# --- orthogonal regularization -------------------------------------------------------------


def their_gradient(weight: torch.Tensor) -> torch.Tensor:
    """What utils.ortho adds to a weight's gradient per unit strength: 2 ((W W^T)(1 - I)) W."""
    w = weight.reshape(weight.shape[0], -1)
    return (2 * ((w @ w.T) * (1 - torch.eye(w.shape[0]))) @ w).reshape(weight.shape)


def test_ortho_value_has_the_authors_gradient() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Conv2d(2, 4, 3))
    penalty = build_ortho(OrthoParams())
    assert (penalty.weight, penalty.every) == (1e-4, 1)
    g_pass = ganlab.GeneratorPass(net, torch.zeros(1, 3), torch.zeros(1, 4, 1, 1))
    (penalty.weight * penalty.value(g_pass)).backward()
    for layer in net:
        assert isinstance(layer, (nn.Linear, nn.Conv2d))
        expected = 1e-4 * their_gradient(layer.weight.detach())
        torch.testing.assert_close(layer.weight.grad, expected, rtol=1e-5, atol=1e-10)
        assert layer.bias is not None and layer.bias.grad is None  # 1-D: left alone
    # An orthogonal matrix's rows are orthogonal: nothing to penalize.
    square = nn.Linear(4, 4, bias=False)
    nn.init.orthogonal_(square.weight)
    assert Ortho(1.0, 1, []).value(ganlab.GeneratorPass(square, *[torch.zeros(1)] * 2)) < 1e-10


def test_ortho_skips_the_shared_embedding_and_reads_raw_sn_weights() -> None:
    g = biggan.build_generator(biggan.GeneratorParams(ch=4), (3, 32, 32), 5)
    build_ortho(OrthoParams()).value(ganlab.GeneratorPass(g, *[torch.zeros(1)] * 2)).backward()
    names = {name for name, p in g.named_parameters() if p.grad is not None}
    assert "shared.weight" not in names
    assert "linear.parametrizations.weight.original" in names  # the weight before SN
    assert "blocks.0.bn1.gain.parametrizations.weight.original" in names
    assert not any(name.endswith("bias") or name.endswith("gamma") for name in names)


def test_ortho_trains_through_the_step(tmp_path: Path) -> None:
    """As a recipe's G penalty, `ortho` is logged at every step and, weighted up, makes G's
    weights more orthogonal than the same run without it (on any G: here the tiny DCGAN)."""
    logged = {}
    for weight in (0.0, 1.0):
        penalty = f"penalties=[{{name: ortho, params: {{weight: {weight}}}}}]"
        run = train(
            RECIPES / "quickstart.yaml",
            tmp_path / str(weight),
            *TINY_QUICKSTART,
            penalty,
            "train.steps=2",
        )
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        logged[weight] = [row["ortho"] for row in rows if "ortho" in row]
    assert len(logged[0.0]) == len(logged[1.0]) == 2
    assert logged[0.0][0] == logged[1.0][0]  # the same G before its first update
    assert logged[1.0][-1] < logged[0.0][-1]
