"""BigGAN at small scale: Brock, Donahue & Simonyan 2019, "Large Scale GAN Training for High
Fidelity Natural Image Synthesis" (ICLR 2019), written from the paper and the authors' code,
ajbrock/BigGAN-PyTorch (``BigGAN.py``, ``layers.py``, ``utils.py``).

The generator ``biggan`` is class-conditional: a shared class embedding (``shared_dim``) and,
with hierarchical latents, one chunk of z per block are joined and turned into every
conditional batch norm's gains and biases by two linear layers (their ``ccbn``); residual
blocks BN-ReLU-upsample-conv-BN-ReLU-conv with a learned 1x1 shortcut (their ``GBlock``); one
SAGAN self-attention block (their ``Attention``); spectral norm on every convolution and
linear layer; orthogonal init. The discriminator ``biggan`` stacks their pre-activation
``DBlock``s (wide: the hidden width is the output width), sums ReLU features over space and
adds the projection of a spectrally normalised class embedding (Miyato & Koyama 2018).

Channel multipliers are their ``G_arch`` / ``D_arch`` at 32, 64 and 128 px. Spectral norm is
torch's (one power iteration per call, eps 1e-12: their num_svs 1, num_itrs 1, SN_eps), which
runs 15 iterations once when it is attached where theirs starts from a random vector.
Orthogonal regularization, their modified form, is the G penalty ``ortho`` (`biggan_ortho`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import ganlab

#: Their G_arch: (input, output) channel multipliers of each up block (from 4x4 up).
G_ARCH: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    32: ((4, 4, 4), (4, 4, 4)),
    64: ((16, 16, 8, 4), (16, 8, 4, 2)),
    128: ((16, 16, 8, 4, 2), (16, 8, 4, 2, 1)),
}
#: Their D_arch: input multipliers (after the image), output multipliers, which blocks
#: downsample. At 32 px the last two blocks keep 8x8 (their CIFAR D: 16, 8, 8, 8 out).
D_ARCH: dict[int, tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]]] = {
    32: ((4, 4, 4), (4, 4, 4, 4), (True, True, False, False)),
    64: ((1, 2, 4, 8), (1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((1, 2, 4, 8, 16), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
}


def _size(image_shape: tuple[int, int, int], role: str) -> int:
    """The image side, checked against the sizes their arch dicts define."""
    _, height, width = image_shape
    if height != width or height not in G_ARCH:
        raise ganlab.GanlabError(
            f"biggan {role}: images of {height}x{width} cannot be built; BigGAN's arch tables "
            f"cover square images of {', '.join(map(str, G_ARCH))} px. Set the data set's "
            "image_size to one of them, e.g. --set data.params.image_size=32."
        )
    return height


def _init(model: nn.Module, style: str) -> None:
    """Their init_weights: every conv, linear and embedding weight orthogonal ('ortho') or
    N(0, 0.02) ('N02'); biases keep torch's default. Run before spectral norm is attached."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
            if style == "ortho":
                nn.init.orthogonal_(module.weight)
            else:
                nn.init.normal_(module.weight, 0.0, 0.02)


def _spectral_norm(model: nn.Module, kinds: tuple[type[nn.Module], ...]) -> None:
    """Spectral norm (one power iteration per forward) on every module of ``kinds``."""
    for module in list(model.modules()):
        if isinstance(module, kinds):
            nn.utils.parametrizations.spectral_norm(module)


def _conv(cin: int, cout: int, kernel: int = 3, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)


class Attention(nn.Module):
    """SAGAN's self-attention block as their released code has it: 1x1 convs to theta and
    phi (ch/8) and g (ch/2), phi and g max-pooled 2x2, softmax over the pooled positions, a 1x1
    conv back to ch, scaled by a learned gain that starts at 0 (the block starts as identity)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.theta = _conv(ch, ch // 8, 1, bias=False)
        self.phi = _conv(ch, ch // 8, 1, bias=False)
        self.g = _conv(ch, ch // 2, 1, bias=False)
        self.o = _conv(ch // 2, ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ch, height, width = x.shape
        theta = self.theta(x).flatten(2)  # (N, ch/8, HW)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # (N, ch/8, HW/4)
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # (N, ch/2, HW/4)
        beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (N, HW, HW/4)
        o = (g @ beta.transpose(1, 2)).view(n, ch // 2, height, width)
        return self.gamma * self.o(o) + x


def _attention(
    role: str, at: int, resolutions: list[int], channels: list[int]
) -> tuple[int, Attention | None]:
    """Where the one attention block goes: after the first block whose output resolution is
    ``at`` (0: nowhere); returns that block's index (-1: none) and the block."""
    if not at:
        return -1, None
    if at not in resolutions:
        raise ganlab.GanlabError(
            f"biggan {role}: attention: {at} is not the output resolution of any of its blocks "
            f"({', '.join(map(str, sorted(set(resolutions))))}). Pick one of them, or 0 for none."
        )
    index = resolutions.index(at)
    if channels[index] < 8:
        raise ganlab.GanlabError(
            f"biggan {role}: the attention block at {at} px would have {channels[index]} "
            "channels, and it needs at least 8 (its queries and keys have channels / 8). "
            "Raise ch, or set attention to 0 (none)."
        )
    return index, Attention(channels[index])


class ConditionalBatchNorm(nn.Module):
    """Their ``ccbn``: batch norm without affine, then ``(1 + gain(y)) * x + bias(y)``. With a
    shared embedding, ``y`` is the embedding (joined with a z chunk) and gain and bias are
    linear layers without bias; without one, per-class tables (nn.Embedding)."""

    def __init__(self, channels: int, cond_size: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain: nn.Module
        self.bias: nn.Module
        if cond_size:
            self.gain = nn.Linear(cond_size, channels, bias=False)
            self.bias = nn.Linear(cond_size, channels, bias=False)
        else:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(y)[:, :, None, None]
        return self.norm(x) * gain + self.bias(y)[:, :, None, None]


class GBlock(nn.Module):
    """Their GBlock: BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus upsample-conv1x1 of x."""

    def __init__(self, cin: int, cout: int, cond_size: int, num_classes: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm(cin, cond_size, num_classes)
        self.conv1 = _conv(cin, cout)
        self.bn2 = ConditionalBatchNorm(cout, cond_size, num_classes)
        self.conv2 = _conv(cout, cout)
        self.conv_sc = _conv(cin, cout, 1)  # learnable: every block upsamples

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class GeneratorParams(ganlab.Params):
    ch: int = Field(default=64, gt=0, description="channel multiplier (their G_ch, 64)")
    dim_z: int = Field(
        default=128,
        gt=0,
        description="latent length (their default and CIFAR config, 128; the paper's 128 px "
        "BigGAN 120); with `hier`, rounded down to a multiple of the blocks + 1 as theirs is",
    )
    shared_dim: int = Field(
        default=128,
        ge=0,
        description="length of the shared class embedding (their 128 px BigGAN, 128); 0: no "
        "shared embedding, per-class gain and bias tables in each batch norm (their CIFAR "
        "config, G_shared off)",
    )
    hier: bool = Field(
        default=True,
        description="hierarchical latents: z split into one chunk for the first linear "
        "layer and one per block, joined to the shared embedding (needs shared_dim > 0)",
    )
    attention: int | None = Field(
        default=None,
        ge=0,
        description="the resolution of the G block that the self-attention block follows "
        "(their G_attn); null: 64, or the image size below 64 px; 0: no attention",
    )
    init: Literal["ortho", "N02"] = Field(
        default="ortho",
        description="weight init: orthogonal (their G_init default) or N(0, 0.02) (N02, "
        "their CIFAR config)",
    )


class Generator(ganlab.Generator):
    """(z, class) -> image in [-1, 1]: linear to 4x4, up blocks, BN-ReLU-conv3x3-tanh."""

    def __init__(self, p: GeneratorParams, image_shape: tuple[int, int, int], classes: int):
        super().__init__()
        size = _size(image_shape, "generator")
        ins, outs = ([p.ch * m for m in mults] for mults in G_ARCH[size])
        if p.hier and not p.shared_dim:
            raise ganlab.GanlabError(
                "biggan generator: hier: true joins z chunks to the shared class embedding, "
                "but shared_dim is 0. Set shared_dim > 0 (e.g. 128) or hier: false."
            )
        slots = len(ins) + 1 if p.hier else 1
        self.chunk = p.dim_z // slots
        self.latent_shape = (self.chunk * slots,)
        self.hier = p.hier
        self.shared = nn.Embedding(classes, p.shared_dim) if p.shared_dim else nn.Identity()
        cond = (p.shared_dim + (self.chunk if p.hier else 0)) if p.shared_dim else 0
        self.linear = nn.Linear(self.chunk, ins[0] * 16)
        pairs = zip(ins, outs, strict=True)
        self.blocks = nn.ModuleList(GBlock(i, o, cond, classes) for i, o in pairs)
        at = min(64, size) if p.attention is None else p.attention
        resolutions = [8 * 2**i for i in range(len(outs))]
        self.attention_after, self.attention = _attention("generator", at, resolutions, outs)
        self.out_bn = nn.BatchNorm2d(outs[-1])
        self.out_conv = _conv(outs[-1], image_shape[0])

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = self.shared(labels)
        if self.hier:
            z, *chunks = z.split(self.chunk, dim=1)
            ys = [torch.cat([y, chunk], dim=1) for chunk in chunks]
        else:
            ys = [y] * len(self.blocks)
        h = self.linear(z).view(z.shape[0], -1, 4, 4)
        for index, block in enumerate(self.blocks):
            h = block(h, ys[index])
            if index == self.attention_after and self.attention is not None:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class DBlock(nn.Module):
    """Their DBlock, wide: [ReLU]-conv3x3-ReLU-conv3x3-[avgpool] plus a shortcut (conv1x1
    then avgpool after a pre-activated block, the other way round for the first)."""

    def __init__(self, cin: int, cout: int, preactivation: bool, downsample: bool) -> None:
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = _conv(cin, cout)
        self.conv2 = _conv(cout, cout)
        self.conv_sc = _conv(cin, cout, 1) if cin != cout or downsample else None

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Out of place (F.relu, not an in-place ReLU): the shortcut below still reads x.
        h = self.conv1(F.relu(x) if self.preactivation else x)
        h = self._down(self.conv2(F.relu(h)))
        if self.conv_sc is None:
            return h + x
        if self.preactivation:
            return h + self._down(self.conv_sc(x))
        return h + self.conv_sc(self._down(x))


class DiscriminatorParams(ganlab.Params):
    ch: int = Field(default=64, gt=0, description="channel multiplier (their D_ch, 64)")
    attention: int | None = Field(
        default=None,
        ge=0,
        description="the output resolution of the D block that the self-attention block "
        "follows, the first such block (their D_attn); null: after the first block; 0: none",
    )
    init: Literal["ortho", "N02"] = Field(
        default="ortho", description="weight init: orthogonal (their D_init default) or N02"
    )


class Discriminator(nn.Module):
    """(image, class) -> one score per image: down blocks, ReLU, sum over space, a linear
    score plus the projection ``<embed(y), h>``."""

    def __init__(self, p: DiscriminatorParams, image_shape: tuple[int, int, int], classes: int):
        super().__init__()
        size = _size(image_shape, "discriminator")
        in_mults, out_mults, downs = D_ARCH[size]
        ins = [image_shape[0]] + [p.ch * m for m in in_mults]
        outs = [p.ch * m for m in out_mults]
        self.blocks = nn.ModuleList(
            DBlock(i, o, index > 0, down)
            for index, (i, o, down) in enumerate(zip(ins, outs, downs, strict=True))
        )
        resolutions, side = [], size
        for down in downs:
            side //= 2 if down else 1
            resolutions.append(side)
        at = resolutions[0] if p.attention is None else p.attention
        self.attention_after, self.attention = _attention("discriminator", at, resolutions, outs)
        self.linear = nn.Linear(outs[-1], 1)
        self.embed = nn.Embedding(classes, outs[-1])

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = images
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index == self.attention_after and self.attention is not None:
                h = self.attention(h)
        h = F.relu(h).sum(dim=(2, 3))  # global sum pooling, as SN-GAN
        return self.linear(h).reshape(-1) + (self.embed(labels) * h).sum(dim=1)


def build_generator(
    params: GeneratorParams, image_shape: tuple[int, int, int], num_classes: int
) -> Generator:
    """BigGAN generator (Brock et al. 2019): shared embedding, hierarchical z, attention."""
    model = Generator(params, image_shape, num_classes)
    _init(model, params.init)
    # Their G: SN on every conv and linear, the ccbn's gains and biases included, but not on
    # embeddings ("applying SN to G's embedding seems to randomly cripple G").
    _spectral_norm(model, (nn.Conv2d, nn.Linear))
    return model


def build_discriminator(
    params: DiscriminatorParams, image_shape: tuple[int, int, int], num_classes: int
) -> Discriminator:
    """BigGAN discriminator (Brock et al. 2019): residual down blocks, projection, all SN."""
    model = Discriminator(params, image_shape, num_classes)
    _init(model, params.init)
    _spectral_norm(model, (nn.Conv2d, nn.Linear, nn.Embedding))
    return model


@ganlab.hookimpl
def ganlab_register_generators(register: ganlab.Register) -> None:
    register("biggan", build_generator, params=GeneratorParams, conditional=True)


@ganlab.hookimpl
def ganlab_register_discriminators(register: ganlab.Register) -> None:
    register("biggan", build_discriminator, params=DiscriminatorParams, conditional=True)
