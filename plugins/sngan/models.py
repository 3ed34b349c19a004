"""ResNet SNGAN generator and discriminator, unconditional and class-conditional.

From the paper: Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for
Generative Adversarial Networks" (ICLR), its ResNet models for CIFAR-10, and Miyato &
Koyama 2018, "cGANs with Projection Discriminator" (ICLR), for the conditional pair and the
64 px models. Written from the papers and the authors' Chainer code, pfnet-research/sngan_projection
(``gen_models/resnet_32.py``, ``gen_models/resnet_64.py``, ``gen_models/resblocks.py``,
``dis_models/snresnet_32.py``, ``dis_models/snresnet_64.py``, ``dis_models/resblocks.py``,
``source/links/categorical_conditional_batch_normalization.py``), whose block structure,
widths, initialisation, parameter counts and forward passes these match:

- **32 px** (their CIFAR-10 configuration, ``configs/sn_cifar10.yml``): G maps z (128) by a
  linear layer to ``ch`` x 4 x 4 (ch 256), then three up-sampling residual blocks of ``ch``
  channels, batch norm, ReLU, a 3x3 convolution and tanh. D has an "optimized" first block
  (convolutions before the pooling, shortcut pooled first), one down-sampling block and two
  that keep 8x8, all ``ch`` = 128 wide, then ReLU, a sum over space and a linear layer
  without bias.
- **64 px** (their ``resnet_64.py`` / ``snresnet_64.py``, the ImageNet 64x64 models of
  ``configs/sn_projection_64.yml``):
  G from 16ch x 4 x 4 through four up-sampling blocks halving the width (16ch ... ch, ch 64);
  D an optimized block of ``ch`` then four down-sampling blocks doubling it up to 16ch, the
  linear layer with a bias.

Every D layer is spectrally normalised (torch's ``spectral_norm`` parametrization, one power
iteration per forward pass, as the paper). The conditional G replaces the batch norms of its
blocks (not the last one) by categorical conditional batch norm: a gain and a bias
embedding with one row per class, initialised to 1 and 0. The conditional D adds the
projection ``<embed(y), phi(x)>`` of a spectrally normalised class embedding with the pooled
features ``phi(x)`` to its unconditional score.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganlab

#: The sizes the authors defined the ResNets for, with their default widths (G, D).
PAPER_WIDTHS = {32: (256, 128), 64: (64, 64)}

#: The batch norm epsilon of the authors' code (Chainer's default; torch's is 1e-5).
BN_EPS = 2e-5


class GeneratorParams(ganlab.Params):
    nz: int = Field(default=128, gt=0, description="length of the latent vector (the paper's 128)")
    ch: int | None = Field(
        default=None,
        gt=0,
        description="width: at 32 px the channels of every block (the paper: 256); at 64 px "
        "the last block's, the first having 16 times as many (the paper: 64); null: the "
        "paper's width for the image size",
    )


class DiscriminatorParams(ganlab.Params):
    ch: int | None = Field(
        default=None,
        gt=0,
        description="width: at 32 px the channels of every block (the paper: 128); at 64 px "
        "the first block's, doubling up to 16 times as many (the paper: 64); null: the "
        "paper's width for the image size",
    )


def _resolution(image_shape: tuple[int, int, int], role: str) -> int:
    """The image side, if the authors defined the ResNets for it; else a GanlabError."""
    _, height, width = image_shape
    if height != width or height not in PAPER_WIDTHS:
        sizes = " and ".join(f"{s}x{s}" for s in PAPER_WIDTHS)
        raise ganlab.GanlabError(
            f"sngan {role}: images of {height}x{width} cannot be built; the SNGAN ResNets are "
            f"defined for {sizes} (the paper's CIFAR-10 and 64 px models). Set the data "
            "set's image_size to one of them, e.g. --set data.params.image_size=32."
        )
    return height


def _xavier(layer: nn.Module, gain: float) -> None:
    """The authors' init (Chainer's GlorotUniform(gain)): xavier-uniform weight, zero bias."""
    nn.init.xavier_uniform_(layer.get_parameter("weight"), gain=gain)
    bias = getattr(layer, "bias", None)
    if bias is not None:
        nn.init.zeros_(bias)


class CategoricalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up per class, ``norm(x) * gain[y] +
    bias[y]``: the authors' CategoricalConditionalBatchNormalization, two embeddings of one
    row per class, every class starting as a plain batch norm (gain 1, bias 0)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=BN_EPS, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gain = self.gain(labels)[:, :, None, None]
        return self.norm(x) * gain + self.bias(labels)[:, :, None, None]


class GeneratorBlock(nn.Module):
    """G's residual block: (BN, ReLU, 2x nearest up-sampling, 3x3 conv, BN, ReLU, 3x3 conv)
    plus a shortcut of up-sampling and a 1x1 conv. With ``num_classes`` its batch norms are
    categorical conditional ones."""

    def __init__(self, in_ch: int, out_ch: int, num_classes: int | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)  # always learnable: every block up-samples
        self.norm1: nn.Module
        self.norm2: nn.Module
        if num_classes is None:
            self.norm1 = nn.BatchNorm2d(in_ch, eps=BN_EPS)
            self.norm2 = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        else:
            self.norm1 = CategoricalBatchNorm2d(in_ch, num_classes)
            self.norm2 = CategoricalBatchNorm2d(out_ch, num_classes)
        # The authors' init: sqrt(2) gain in the residual path (it follows a ReLU), 1 for
        # the shortcut.
        _xavier(self.conv1, math.sqrt(2))
        _xavier(self.conv2, math.sqrt(2))
        _xavier(self.shortcut, 1.0)

    def _norm(self, norm: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return norm(x) if labels is None else norm(x, labels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self._norm(self.norm1, x, labels))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(self._norm(self.norm2, h, labels)))
        # The authors up-sample, then convolve; a 1x1 convolution commutes with nearest
        # up-sampling, so convolving first computes the same pixels at a quarter of the cost.
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class Generator(ganlab.Generator):
    """z (nz) -> image (C x S x S) in [-1, 1], S 32 or 64; with ``num_classes``, (z, class)
    -> image through conditional batch norms."""

    def __init__(
        self, nz: int, ch: int, image_shape: tuple[int, int, int], num_classes: int | None = None
    ) -> None:
        super().__init__()
        self.latent_shape = (nz,)
        size = _resolution(image_shape, "generator")
        # Block widths from 4x4 up: 32 px keeps ch; 64 px halves from 16ch down to ch.
        widths = [ch] * 4 if size == 32 else [ch * 16, ch * 8, ch * 4, ch * 2, ch]
        self.bottom = widths[0]
        self.linear = nn.Linear(nz, 4 * 4 * widths[0])
        self.blocks = nn.ModuleList(
            GeneratorBlock(i, o, num_classes) for i, o in itertools.pairwise(widths)
        )
        self.norm = nn.BatchNorm2d(widths[-1], eps=BN_EPS)  # never conditional, as the authors'
        self.to_image = nn.Conv2d(widths[-1], image_shape[0], 3, padding=1)
        _xavier(self.linear, 1.0)
        _xavier(self.to_image, 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).reshape(z.shape[0], self.bottom, 4, 4)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.to_image(F.relu(self.norm(h))))


class DiscriminatorBlock(nn.Module):
    """D's residual block: (ReLU, 3x3 conv, ReLU, 3x3 conv[, 2x2 average pooling]) plus a
    shortcut (1x1 conv[, pooling]) where the shape changes, identity otherwise.

    ``first`` is the authors' OptimizedBlock for the image itself: no ReLU before the first
    convolution (the input is an image, not features), and its shortcut pools before the
    1x1 convolution (cheaper, same function). Its hidden width is the output width; a later
    block's is the input width, as theirs.
    """

    def __init__(self, in_ch: int, out_ch: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        self.first, self.downsample = first, downsample
        hidden = out_ch if first else in_ch
        self.conv1 = nn.Conv2d(in_ch, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, out_ch, 3, padding=1)
        _xavier(self.conv1, math.sqrt(2))
        _xavier(self.conv2, math.sqrt(2))
        self.shortcut: nn.Conv2d | None = None
        if first or downsample or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1)
            _xavier(self.shortcut, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.downsample else s)


class Discriminator(nn.Module):
    """image (C x S x S) -> one score per image, S 32 or 64; with ``num_classes``, (image,
    class) -> score, the class entering by projection."""

    def __init__(
        self, ch: int, image_shape: tuple[int, int, int], num_classes: int | None = None
    ) -> None:
        super().__init__()
        size = _resolution(image_shape, "discriminator")
        blocks = [DiscriminatorBlock(image_shape[0], ch, downsample=True, first=True)]
        if size == 32:  # 32 -> 16 -> 8, then two blocks at 8x8
            blocks += [DiscriminatorBlock(ch, ch, downsample=d) for d in (True, False, False)]
            width = ch
        else:  # 64 -> 32 -> 16 -> 8 -> 4 -> 2, widths ch ... 16ch
            blocks += [DiscriminatorBlock(ch * 2**i, ch * 2 ** (i + 1), True) for i in range(4)]
            width = ch * 16
        self.blocks = nn.Sequential(*blocks)
        # The 32 px model's linear layer has no bias, the 64 px one's has (as the authors').
        self.linear = nn.Linear(width, 1, bias=size == 64)
        _xavier(self.linear, 1.0)
        self.embed: nn.Embedding | None = None
        if num_classes is not None:
            self.embed = nn.Embedding(num_classes, width)
            _xavier(self.embed, 1.0)
        # After the init, so that it normalises the initialised weights.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
                spectral_norm(module)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = F.relu(self.blocks(images)).sum(dim=(2, 3))  # the authors' global sum pooling
        scores = self.linear(features).reshape(-1)
        if labels is not None and self.embed is not None:
            scores = scores + (self.embed(labels) * features).sum(dim=1)
        return scores


def _width(ch: int | None, image_shape: tuple[int, int, int], role: str, index: int) -> int:
    return ch if ch is not None else PAPER_WIDTHS[_resolution(image_shape, role)][index]


def build_generator(params: GeneratorParams, image_shape: tuple[int, int, int]) -> Generator:
    """ResNet SNGAN generator (Miyato et al. 2018) at 32 or 64 px: up-sampling residual blocks."""
    return Generator(params.nz, _width(params.ch, image_shape, "generator", 0), image_shape)


def build_discriminator(
    params: DiscriminatorParams, image_shape: tuple[int, int, int]
) -> Discriminator:
    """ResNet SNGAN discriminator (Miyato et al. 2018) at 32 or 64 px, spectrally normalised."""
    return Discriminator(_width(params.ch, image_shape, "discriminator", 1), image_shape)


def build_conditional_generator(
    params: GeneratorParams, image_shape: tuple[int, int, int], num_classes: int
) -> Generator:
    """Conditional ResNet SNGAN generator: categorical conditional batch norm in its blocks."""
    ch = _width(params.ch, image_shape, "generator", 0)
    return Generator(params.nz, ch, image_shape, num_classes)


def build_conditional_discriminator(
    params: DiscriminatorParams, image_shape: tuple[int, int, int], num_classes: int
) -> Discriminator:
    """Projection discriminator (Miyato & Koyama 2018) on the ResNet SNGAN discriminator."""
    ch = _width(params.ch, image_shape, "discriminator", 1)
    return Discriminator(ch, image_shape, num_classes)


@ganlab.hookimpl
def ganlab_register_generators(register: ganlab.Register) -> None:
    register("sngan", build_generator, params=GeneratorParams)
    register("csngan", build_conditional_generator, params=GeneratorParams, conditional=True)


@ganlab.hookimpl
def ganlab_register_discriminators(register: ganlab.Register) -> None:
    register("sngan", build_discriminator, params=DiscriminatorParams)
    register(
        "csngan", build_conditional_discriminator, params=DiscriminatorParams, conditional=True
    )
