"""The ResNet SNGAN family (plugins/sngan/models.py): shapes, parameter counts, spectral norm,
classes.

The parameter counts are checked twice: against a closed-form sum per block written here
from the papers' architecture descriptions, and against the numbers the authors' Chainer code
gives (pfnet-research/sngan_projection at its published configurations, counted by
instantiating their ``ResNetGenerator`` / ``SNResNetProjectionDiscriminator`` from
``gen_models/resnet_32.py``, ``resnet_64.py``, ``dis_models/snresnet_32.py``,
``snresnet_64.py`` with Chainer 7.8.1 and summing ``p.size`` over ``params()``; Chainer's
spectral-norm ``u`` vectors and batch-norm averages are not parameters there, nor here).
The forward passes are checked against the same models too: given the same weights, G's
images and D's scores equal what their Chainer code computes (`CHAINER_OUTPUTS`).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import ganlab
from ganlab_plugins.sngan.models import (
    DiscriminatorParams,
    GeneratorParams,
    build_conditional_discriminator,
    build_conditional_generator,
    build_discriminator,
    build_generator,
)
from tests.conftest import RECIPES, invoke, train

RGB32 = (3, 32, 32)
RGB64 = (3, 64, 64)

#: The authors' code's counts: (G, D) at 32 px (G ch 256, D ch 128, dim_z 128,
#: configs/sn_cifar10.yml), unconditional and with 10 classes, and at 64 px (ch 64 both,
#: configs/sn_projection_64.yml's models) with 10 classes. (Their unconditional 64 px pair,
#: 12,220,675 and 10,141,441, matches too; left out to keep the suite fast: it differs from
#: the conditional one only in the norms and embedding that the 32 px cases cover.)
AUTHORS_COUNTS = {
    (32, None): (4_276_739, 1_053_824),
    (32, 10): (4_304_387, 1_055_104),
    (64, 10): (12_272_515, 10_151_681),
}


def conv(cin: int, cout: int, k: int) -> int:
    """A k x k convolution with bias."""
    return cin * cout * k * k + cout


def g_block(cin: int, cout: int, classes: int | None) -> int:
    """G's up-sampling block: two 3x3 convs, a 1x1 shortcut, two batch norms of gain and
    bias (one pair per class when conditional)."""
    norms = 2 * (cin + cout) * (classes or 1)
    return conv(cin, cout, 3) + conv(cout, cout, 3) + conv(cin, cout, 1) + norms


def d_block(cin: int, cout: int, shortcut: bool) -> int:
    """D's block: 3x3 convs cin->cin->cout, a 1x1 shortcut where the shape changes."""
    return conv(cin, cin, 3) + conv(cin, cout, 3) + (conv(cin, cout, 1) if shortcut else 0)


def d_first_block(cin: int, cout: int) -> int:
    """D's first (optimized) block: 3x3 convs cin->cout->cout and a 1x1 shortcut."""
    return conv(cin, cout, 3) + conv(cout, cout, 3) + conv(cin, cout, 1)


def closed_form(size: int, classes: int | None, nz: int = 128) -> tuple[int, int]:
    """(G, D) parameter counts at the paper's widths, summed block by block."""
    if size == 32:
        widths, ch = [256] * 4, 128
        d_blocks = [d_block(ch, ch, True), d_block(ch, ch, False), d_block(ch, ch, False)]
        d_width, d_bias = ch, 0
    else:
        widths, ch = [64 * 16, 64 * 8, 64 * 4, 64 * 2, 64], 64
        d_blocks = [d_block(ch * 2**i, ch * 2 ** (i + 1), True) for i in range(4)]
        d_width, d_bias = ch * 16, 1
    g = nz * 16 * widths[0] + 16 * widths[0]  # linear to widths[0] x 4 x 4
    g += sum(g_block(i, o, classes) for i, o in itertools.pairwise(widths))
    g += 2 * widths[-1] + conv(widths[-1], 3, 3)  # last batch norm, conv to RGB
    d = d_first_block(3, ch) + sum(d_blocks) + d_width + d_bias + d_width * (classes or 0)
    return g, d


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("size, classes", list(AUTHORS_COUNTS))
def test_parameter_counts_at_the_papers_configurations(size: int, classes: int | None) -> None:
    shape = (3, size, size)
    if classes is None:
        g = build_generator(GeneratorParams(), shape)
        d = build_discriminator(DiscriminatorParams(), shape)
    else:
        g = build_conditional_generator(GeneratorParams(), shape, classes)
        d = build_conditional_discriminator(DiscriminatorParams(), shape, classes)
    assert (count(g), count(d)) == closed_form(size, classes) == AUTHORS_COUNTS[size, classes]


@pytest.mark.parametrize("shape", [RGB32, RGB64])
def test_shapes_unconditional_and_conditional(shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    z = torch.randn(4, 8)
    labels = torch.tensor([0, 1, 2, 1])
    for g, d, args in [
        (
            build_generator(GeneratorParams(nz=8, ch=4), shape),
            build_discriminator(DiscriminatorParams(ch=4), shape),
            (),
        ),
        (
            build_conditional_generator(GeneratorParams(nz=8, ch=4), shape, 3),
            build_conditional_discriminator(DiscriminatorParams(ch=4), shape, 3),
            (labels,),
        ),
    ]:
        assert g.latent_shape == (8,)
        images = g(z, *args)
        assert images.shape == (4, *shape)
        assert images.abs().max() <= 1  # tanh
        assert d(images, *args).shape == (4,)


def test_every_discriminator_layer_is_spectrally_normalised() -> None:
    for shape in (RGB32, RGB64):
        d = build_conditional_discriminator(DiscriminatorParams(ch=4), shape, 3)
        layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
        assert len(layers) == (12 if shape == RGB32 else 17)  # convs, linear, embedding
        for layer in layers:
            assert parametrize.is_parametrized(layer, "weight")
            (norm,) = layer.parametrizations["weight"]
            assert type(norm).__name__ == "_SpectralNorm"
            assert norm.n_power_iterations == 1  # one power iteration a forward pass, as the paper


def test_conditional_generator_output_follows_the_class() -> None:
    """As the authors', every class starts with gain 1 and bias 0, so a fresh G draws the
    same image for every class; once a class's gains move (as training moves them), that
    class's images change and the others' do not."""
    torch.manual_seed(0)
    g = build_conditional_generator(GeneratorParams(nz=8, ch=4), RGB32, 3).eval()
    z = torch.randn(2, 8)
    zeros, ones = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    with torch.no_grad():
        before = g(z, zeros), g(z, ones)
        assert torch.equal(*before)
        g.get_submodule("blocks.0.norm1.gain").weight[1] += 0.5
        after = g(z, zeros), g(z, ones)
    assert torch.equal(after[0], before[0])
    assert (after[1] - before[1]).abs().max() > 1e-3


def test_projection_discriminator_scores_depend_on_the_class() -> None:
    torch.manual_seed(0)
    d = build_conditional_discriminator(DiscriminatorParams(ch=4), RGB32, 3)
    images = torch.randn(1, *RGB32).expand(3, -1, -1, -1)
    scores = d(images, torch.tensor([0, 1, 2]))
    assert len(set(scores.tolist())) == 3


@pytest.mark.parametrize("side", [16, 48, 128])
def test_unsupported_size_is_refused_with_the_sizes_that_work(side: int) -> None:
    with pytest.raises(ganlab.GanlabError, match="32x32 and 64x64") as error:
        build_generator(GeneratorParams(ch=4), (3, side, side))
    assert f"{side}x{side}" in str(error.value)
    with pytest.raises(ganlab.GanlabError, match="image_size"):
        build_conditional_discriminator(DiscriminatorParams(ch=4), (3, side, side), 3)


#: The conditional recipe shrunk to two steps of a 4-channel pair on 80 faces.
TINY_SNGAN = [
    "data.params.count=80",
    "generator.params.ch=4",
    "discriminator.params.ch=4",
    "train.steps=2",
    "train.batch_size=8",
    "train.g_batch_size=16",
    "metrics=[]",
    "callbacks=[]",
]


def test_the_conditional_recipe_trains_and_a_wrong_size_is_refused(tmp_path: Path) -> None:
    recipe = str(RECIPES / "sngan_cartoon_conditional.yaml")
    run_dir = train(Path(recipe), tmp_path / "runs", *TINY_SNGAN)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    assert all(math.isfinite(row["loss_d"]) and math.isfinite(row["loss_g"]) for row in rows)

    sets = [f"--set={s}" for s in [*TINY_SNGAN, "data.params.image_size=16"]]
    result = invoke("run", recipe, "--out", str(tmp_path / "bad"), *sets)
    assert result.exit_code == 2, result.output
    assert "images of 16x16 cannot be built" in result.output
    assert "32x32 and 64x64" in result.output


# --- the same function as the authors' models ----------------------------------------------


def fill_deterministically(model: nn.Module) -> None:
    """Every parameter set from a formula, no random numbers: weights that the authors'
    Chainer models were given too, parameter by parameter, to compute `CHAINER_OUTPUTS`.
    D's spectral norm is removed first (their SN layers were given the same weights and
    told to use them as they are): this checks the architecture, and the test above that
    every layer of D is normalised."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(0.3 * torch.sin(0.37 * torch.arange(p.numel()) + i).reshape(p.shape))


def pattern(*shape: int, rate: float) -> torch.Tensor:
    """A fixed input of the given shape: a sine over its elements."""
    return torch.sin(rate * torch.arange(math.prod(shape), dtype=torch.float32)).reshape(shape)


def checksums(images: torch.Tensor) -> list[float]:
    """Sum, sum of squares and a sine-weighted sum of G's images: any change of structure
    (order of norm and up-sampling, a missing shortcut, another init) moves all three."""
    weights = pattern(*images.shape, rate=0.05)
    return [images.sum().item(), (images**2).sum().item(), (images * weights).sum().item()]


def conditional_pair(size: int) -> tuple[nn.Module, nn.Module]:
    """A conditional G (nz 4, ch 2) and D (ch 2) for 3 classes, filled deterministically."""
    shape = (3, size, size)
    g = build_conditional_generator(GeneratorParams(nz=4, ch=2), shape, 3)
    d = build_conditional_discriminator(DiscriminatorParams(ch=2), shape, 3)
    fill_deterministically(g)
    fill_deterministically(d)
    return g, d


#: What the authors' models compute for these weights and inputs (their ResNetGenerator with
#: n_classes 3 in training mode, their SNResNetProjectionDiscriminator; 32 px from
#: resnet_32.py / snresnet_32.py, 64 px from resnet_64.py / snresnet_64.py; Chainer 7.8.1,
#: each parameter copied from `conditional_pair`'s by name): G's checksums, D's two scores.
CHAINER_OUTPUTS = {
    32: ([-1201.2198, 303.76495, 4.4137621], [32.012012, 5.2662392]),
    64: ([5757.0205, 2387.9512, 8.3398933], [36.279808, 50.461205]),
}


@pytest.mark.parametrize("size", [32, 64])
def test_forward_passes_equal_the_authors_models(size: int) -> None:
    g, d = conditional_pair(size)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        images = g(pattern(2, 4, rate=0.9), labels)  # training mode: batch statistics
        scores = d(pattern(2, 3, size, size, rate=0.011), labels)
    expected_images, expected_scores = CHAINER_OUTPUTS[size]
    assert checksums(images) == pytest.approx(expected_images, rel=1e-4)
    assert scores.tolist() == pytest.approx(expected_scores, rel=1e-4)
