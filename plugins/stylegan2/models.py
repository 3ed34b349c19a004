"""StyleGAN2 at small scale (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), written from the paper and the authors' code, NVlabs/stylegan2-ada-pytorch
(``training/networks.py``, ``training/loss.py``, ``train.py``; NVlabs/stylegan2 for the
original TensorFlow), with their block structure, names and defaults except the widths.

- Generator ``stylegan2``: a mapping network (z normalised to unit second moment, fully
  connected layers with learning-rate multiplier 0.01, a moving average ``w_avg`` of w for
  truncation) and a synthesis network of modulated, demodulated 3x3 convolutions from a
  learned constant 4x4 input, with a noise input of learned strength per layer and the
  'skip' architecture (one toRGB per resolution, their upsampled sum is the image). In
  training mode, style mixing: with probability 0.9 a second latent's w drives the layers
  from a random cut-off on (their ``StyleGAN2Loss.run_G``, moved into G so that every pass
  of G in the step has it). It exposes ``w`` (`ganlab.ExposesIntermediates`) for the
  path-length penalty. Truncation (``truncation_psi``) applies in eval mode only.
- Discriminator ``stylegan2``: their 'resnet' architecture: fromRGB at the top resolution,
  residual blocks (two 3x3 convolutions, the second downsampling, plus a 1x1 downsampling
  skip, summed with gain sqrt(1/2)), then the epilogue: minibatch standard deviation, a 3x3
  convolution, a fully connected layer and the output.
- The rest of their recipe is made of other parts: path-length regularization is the G
  penalty ``path_length`` (plugins/stylegan2/path_length.py), lazy R1 the built-in ``r1`` with
  ``every: 16`` and ``weight: gamma / 2``, the loss the built-in ``bce`` (softplus: their
  non-saturating logistic loss), the EMA ramp ``train.ema_rampup``;
  recipes/stylegan2_cartoon.yaml puts them together. One difference stays: ganlab's step
  gives G's update the fakes of D's update (``train.g_batch_size`` draws fresh ones, as
  their separate phases do).

With their weights loaded, both networks give the outputs of the authors' code to float
rounding (checked once at 16 and 32 px, with noise and style mixing off, outside the tests).

Channels per resolution follow their formula, ``min(channel_base // res, channel_max)``; the
defaults here are small for a CPU (theirs: 32768 and 512, 16384 for 'paper256' and 'auto').
Equalized learning rate, filters and convolutions: `ganlab_plugins.stylegan2.layers`. Noise
inputs are always random (their ``noise_mode='random'``, the default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from pydantic import Field
from torch import nn

import ganlab
from ganlab_plugins.stylegan2.layers import (
    Conv2dLayer,
    FullyConnected,
    MinibatchStd,
    bias_act,
    lowpass_filter,
    modulated_conv2d,
    upsample2d,
)


class GeneratorParams(ganlab.Params):
    z_dim: int = Field(default=512, gt=0, description="length of the latent vector z (paper: 512)")
    w_dim: int = Field(default=512, gt=0, description="length of the intermediate latent w (512)")
    mapping_layers: int = Field(
        default=8,
        gt=0,
        description="fully connected layers of the mapping network (8; 2 in "
        "their 'cifar' and 'auto' configurations)",
    )
    mapping_lr_multiplier: float = Field(
        default=0.01, gt=0, description="learning-rate multiplier of the mapping network (0.01)"
    )
    w_avg_beta: float = Field(
        default=0.995, gt=0, lt=1, description="decay of the moving average of w (0.995)"
    )
    channel_base: int = Field(
        default=2048,
        gt=0,
        description="channels at resolution r: min(channel_base // r, "
        "channel_max); small for a CPU (paper: 32768; 16384 in 'paper256' and 'auto')",
    )
    channel_max: int = Field(default=128, gt=0, description="at most this many channels (512)")
    style_mixing: float = Field(
        default=0.9, ge=0, le=1, description="probability of style mixing in training (0.9)"
    )
    truncation_psi: float = Field(
        default=1.0,
        description="truncation in eval mode (metrics, `ganlab sample`): w_avg "
        "+ psi (w - w_avg); 1: none",
    )


class DiscriminatorParams(ganlab.Params):
    channel_base: int = Field(
        default=2048,
        gt=0,
        description="channels at resolution r: min(channel_base // r, "
        "channel_max), as the generator's (paper: 32768)",
    )
    channel_max: int = Field(default=128, gt=0, description="at most this many channels (512)")
    mbstd_group_size: int = Field(
        default=4, gt=0, description="images per minibatch-standard-deviation group (4)"
    )
    mbstd_channels: int = Field(
        default=1, ge=0, description="features of the minibatch standard deviation (1; 0: off)"
    )


def _resolutions(image_shape: tuple[int, int, int], role: str) -> int:
    """log2 of the image side; checks that the images are square powers of two from 8."""
    _, height, width = image_shape
    if height != width or height < 8 or height & (height - 1):
        raise ganlab.GanlabError(
            f"stylegan2 {role}: images of {height}x{width} cannot be built; StyleGAN2 needs "
            "square images whose side is a power of two from 8 up (16, 32, 64, ...). Set the "
            "data set's image_size accordingly, e.g. --set data.params.image_size=32."
        )
    return int(math.log2(height))


def _channels(base: int, most: int, res: int) -> int:
    return max(1, min(base // res, most))


class MappingNetwork(nn.Module):
    """z -> w: normalise z, then ``num_layers`` leaky-ReLU fully connected layers."""

    w_avg: torch.Tensor

    def __init__(
        self, z_dim: int, w_dim: int, num_layers: int, lr_multiplier: float, w_avg_beta: float
    ) -> None:
        super().__init__()
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        features = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            layer = FullyConnected(features[i], features[i + 1], "lrelu", lr_multiplier)
            self.add_module(f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, track: bool) -> torch.Tensor:
        x = z.float() * (z.float().square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if track:  # the average w that truncation pulls towards
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return x


class SynthesisLayer(nn.Module):
    """A modulated 3x3 convolution (upsampling with ``up=2``), noise, bias, leaky ReLU."""

    resample_filter: torch.Tensor

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1
    ) -> None:
        super().__init__()
        self.resolution, self.up = resolution, up
        self.register_buffer("resample_filter", lowpass_filter())
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        size = (x.shape[0], 1, self.resolution, self.resolution)
        noise = torch.randn(size, device=x.device) * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, self.resample_filter, up=self.up)
        return bias_act(x + noise, self.bias, "lrelu")


class ToRGB(nn.Module):
    """A modulated 1x1 convolution to the image's channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, "linear")


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' generator: (the constant, or conv0 upsampling) and conv1,
    then toRGB added to the upsampled image so far. Uses 3 ws (2 at 4x4); its toRGB's w is
    the next block's first, as in their code."""

    resample_filter: torch.Tensor

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int
    ) -> None:
        super().__init__()
        self.register_buffer("resample_filter", lowpass_filter())
        self.num_conv = 1 if in_channels == 0 else 2
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x is None:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, 0])
        else:
            x = self.conv1(self.conv0(x, ws[:, 0]), ws[:, 1])
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images, one `SynthesisBlock` per resolution from 4x4."""

    def __init__(
        self, w_dim: int, log2_size: int, img_channels: int, channel_base: int, channel_max: int
    ) -> None:
        super().__init__()
        self.resolutions = [2**i for i in range(2, log2_size + 1)]
        self.num_ws = 0
        for res in self.resolutions:
            in_ch = _channels(channel_base, channel_max, res // 2) if res > 4 else 0
            out_ch = _channels(channel_base, channel_max, res)
            block = SynthesisBlock(in_ch, out_ch, w_dim, res, img_channels)
            self.add_module(f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last toRGB's

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        x = img = None
        first = 0
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, first : first + block.num_conv + 1])
            first += block.num_conv
        assert img is not None
        return img


class Generator(ganlab.Generator):
    """z (z_dim,) -> image (C x S x S), roughly in [-1, 1] (no tanh, as theirs)."""

    def __init__(self, params: GeneratorParams, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.latent_shape = (params.z_dim,)
        self.style_mixing, self.truncation_psi = params.style_mixing, params.truncation_psi
        self.synthesis = SynthesisNetwork(
            params.w_dim,
            _resolutions(image_shape, "generator"),
            image_shape[0],
            params.channel_base,
            params.channel_max,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            params.z_dim,
            params.w_dim,
            params.mapping_layers,
            params.mapping_lr_multiplier,
            params.w_avg_beta,
        )

    def ws(self, z: torch.Tensor) -> torch.Tensor:
        """The ws (N, num_ws, w_dim) that the synthesis network gets for ``z``: in training
        mode style-mixed (with the draws of their ``run_G``, in its order), in eval mode
        truncated when ``truncation_psi`` is not 1."""
        w = self.mapping(z, track=self.training)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.style_mixing > 0:
            cutoff = torch.empty([], dtype=torch.int64, device=z.device).random_(1, self.num_ws)
            mixing = torch.rand([], device=z.device) < self.style_mixing
            cutoff = torch.where(mixing, cutoff, torch.full_like(cutoff, self.num_ws))
            other = self.mapping(torch.randn_like(z), track=False).unsqueeze(1)
            layer = torch.arange(self.num_ws, device=z.device).reshape(1, -1, 1)
            ws = torch.where(layer >= cutoff, other, ws)
        elif not self.training and self.truncation_psi != 1:
            ws = self.mapping.w_avg.lerp(ws, self.truncation_psi)
        return ws

    def forward_with_intermediates(
        self, latents: torch.Tensor, *labels: torch.Tensor
    ) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
        """The images and ``{"w": ws}``, the ws the synthesis network was given."""
        ws = self.ws(latents)
        return self.synthesis(ws), {"w": ws}

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.forward_with_intermediates(latents)[0]


class DiscriminatorBlock(nn.Module):
    """A 'resnet' block: (fromRGB at the top) conv0, conv1 downsampling, plus a 1x1
    downsampling skip; both branches scaled by sqrt(1/2)."""

    def __init__(
        self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int
    ) -> None:
        super().__init__()
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, "lrelu")
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, "lrelu")
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, "lrelu", down=2)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "fromrgb"):
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class Discriminator(nn.Module):
    """image (C x S x S) -> one logit per image."""

    def __init__(self, params: DiscriminatorParams, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        log2_size = _resolutions(image_shape, "discriminator")
        self.resolutions = [2**i for i in range(log2_size, 2, -1)]
        size = image_shape[1]
        for res in self.resolutions:
            tmp = _channels(params.channel_base, params.channel_max, res)
            out = _channels(params.channel_base, params.channel_max, res // 2)
            block = DiscriminatorBlock(0 if res == size else tmp, tmp, out, image_shape[0])
            self.add_module(f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(
            _channels(params.channel_base, params.channel_max, 4),
            params.mbstd_group_size,
            params.mbstd_channels,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x)
        return self.b4(x).reshape(-1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 features -> logit: minibatch std, 3x3 convolution, fully connected, output."""

    def __init__(self, channels: int, mbstd_group_size: int, mbstd_channels: int) -> None:
        super().__init__()
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_channels) if mbstd_channels else None
        self.conv = Conv2dLayer(channels + mbstd_channels, channels, 3, "lrelu")
        self.fc = FullyConnected(channels * 16, channels, "lrelu")
        self.out = FullyConnected(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.out(self.fc(self.conv(x).flatten(1)))


def build_generator(params: GeneratorParams, image_shape: tuple[int, int, int]) -> Generator:
    """StyleGAN2 generator: mapping network, modulated convolutions, noise, skip toRGBs."""
    return Generator(params, image_shape)


def build_discriminator(
    params: DiscriminatorParams, image_shape: tuple[int, int, int]
) -> Discriminator:
    """StyleGAN2 discriminator: residual blocks, minibatch standard deviation, epilogue."""
    return Discriminator(params, image_shape)


@ganlab.hookimpl
def ganlab_register_generators(register: ganlab.Register) -> None:
    register("stylegan2", build_generator, params=GeneratorParams)


@ganlab.hookimpl
def ganlab_register_discriminators(register: ganlab.Register) -> None:
    register("stylegan2", build_discriminator, params=DiscriminatorParams)
