"""StyleGAN2's building blocks (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN"), written from the paper and the authors' PyTorch code, NVlabs/stylegan2-ada-pytorch
(``training/networks.py``, ``torch_utils/ops/upfirdn2d.py``, ``conv2d_resample.py``).

- Equalized learning rate: every weight is stored as N(0, 1) (divided by the layer's learning-rate
  multiplier) and scaled at run time by ``lr_multiplier / sqrt(fan_in)``, as their
  ``FullyConnectedLayer`` and ``Conv2dLayer``; biases by ``lr_multiplier``.
- Activations as their ``bias_act``: leaky ReLU (slope 0.2) times sqrt(2), or linear.
- Resampling with their low-pass filter [1, 3, 3, 1] (outer product, normalised to sum 1),
  through the same ``upfirdn2d`` (upsample by zero insertion, pad, FIR filter, downsample) in
  plain ``conv2d``: their reference implementation, without the CUDA kernels. An upsampling
  3x3 convolution is a stride-2 transposed convolution followed by the filter, a downsampling
  one the filter followed by a stride-2 convolution, with their paddings, so the output
  is numerically theirs for the same weights.
- Modulated convolution in their non-fused form (scale the input by the styles, convolve with
  the shared weight, scale the output by the demodulation coefficients), which their code
  uses in training; the fused grouped form computes the same.
No activation clamping (their ``conv_clamp`` is only used with float16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["linear", "lrelu"]

#: Their low-pass filter for every up- and downsampling.
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)


def lowpass_filter(taps: Sequence[float] = RESAMPLE_TAPS) -> torch.Tensor:
    """The 2-D FIR filter of ``taps``: their outer product, normalised to sum 1."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample (zero insertion), pad (x0, x1, y0, y1; negative crops), filter with ``f``
    (2-D, flipped: a true convolution), downsample (keep every ``down``-th pixel)."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = padding
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    kernel = (f * gain).flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, kernel, groups=c)
    return x[:, :, ::down, ::down]


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Twice the size, low-pass filtered (their ``upfirdn2d.upsample2d``: G's skip images)."""
    fw = f.shape[-1]
    p0, p1 = (fw + 1) // 2, (fw - 2) // 2
    return upfirdn2d(x, f, up=2, padding=(p0, p1, p0, p1), gain=4.0)


def conv2d_resample(
    x: torch.Tensor,
    weight: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
) -> torch.Tensor:
    """A 'same' convolution with ``weight`` (odd kernel), optionally upsampling (3x3 and
    up) or downsampling by 2 with the filter ``f``, as their ``conv2d_resample`` does it."""
    k, pad = weight.shape[-1], weight.shape[-1] // 2
    if f is None or (up == 1 and down == 1):
        return F.conv2d(x, weight, padding=pad)
    fw = f.shape[-1]
    if up > 1:  # transposed stride-2 convolution, then the filter (their path for k > 1)
        p0 = pad + (fw + 1) // 2 - (k - 1)
        p1 = pad + (fw - 2) // 2 - (k - 2)
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        return upfirdn2d(x, f, padding=(p0, p1, p0, p1), gain=4.0)
    p0, p1 = pad + (fw - 1) // 2, pad + (fw - 2) // 2  # downsampling
    if k == 1:  # filter and downsample first, then the 1x1 convolution
        return F.conv2d(upfirdn2d(x, f, down=2, padding=(p0, p1, p0, p1)), weight)
    return F.conv2d(upfirdn2d(x, f, padding=(p0, p1, p0, p1)), weight, stride=2)


def bias_act(
    x: torch.Tensor, bias: torch.Tensor | None, activation: Activation, gain: float = 1.0
) -> torch.Tensor:
    """Add the bias (per channel, dimension 1), apply the activation and its gain (leaky
    ReLU: sqrt(2), their ``def_gain``, so that activations keep unit scale)."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    if activation == "lrelu":
        return F.leaky_relu(x, 0.2) * (math.sqrt(2) * gain)
    return x * gain if gain != 1 else x


class FullyConnected(nn.Module):
    """Their ``FullyConnectedLayer``: equalized learning rate with a multiplier."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: Activation = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.activation: Activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.bias_gain if self.bias is not None else None
        return bias_act(x @ (self.weight * self.weight_gain).t(), bias, self.activation)


class Conv2dLayer(nn.Module):
    """Their ``Conv2dLayer``: equalized learning rate, optional 2x downsampling."""

    resample_filter: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        activation: Activation = "linear",
        bias: bool = True,
        down: int = 1,
    ) -> None:
        super().__init__()
        self.activation: Activation = activation
        self.down = down
        self.register_buffer("resample_filter", lowpass_filter())
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w, self.resample_filter, down=self.down)
        return bias_act(x, self.bias, self.activation, gain)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    demodulate: bool = True,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution: each image's input channels scaled by its
    ``styles`` (N, in); with ``demodulate``, each output channel divided by the norm of its
    modulated weights, so that unit-variance input gives unit-variance output (the paper's
    eq. 3, replacing StyleGAN's instance norm)."""
    n = x.shape[0]
    x = x * styles.reshape(n, -1, 1, 1)
    x = conv2d_resample(x, weight, f, up=up)
    if demodulate:
        modulated = weight[None] * styles.reshape(n, 1, -1, 1, 1)  # (N, out, in, k, k)
        coefficients = (modulated.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * coefficients.reshape(n, -1, 1, 1)
    return x


class MinibatchStd(nn.Module):
    """Their ``MinibatchStdLayer``: appends the standard deviation of each feature over a
    group of images, averaged over features and pixels, as ``num_channels`` new channels.

    Their code needs the batch to be a multiple of the group; here a batch that is not
    (the last of an epoch) uses the largest group size up to ``group_size`` that divides it.
    """

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # (n/g, F)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)
