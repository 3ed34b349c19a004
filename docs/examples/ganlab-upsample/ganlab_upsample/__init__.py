"""A generator that doubles the image size with nearest-neighbour upsampling and a 3x3
convolution, instead of DCGAN's strided transposed convolutions, whose uneven overlap draws
checkerboard patterns (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts")."""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

import ganlab


class UpsampleParams(ganlab.Params):
    nz: int = Field(default=100, gt=0, description="length of the latent vector")
    width: int = Field(default=64, gt=0, description="channels of the last block")


def block(channels_in: int, channels_out: int) -> list[nn.Module]:
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(True),
    ]


class UpsampleGenerator(nn.Module):
    """z (nz) -> 4x4 feature maps -> one upsampling block per doubling -> image in [-1, 1]."""

    def __init__(self, nz: int, width: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, side = image_shape
        doublings = int(math.log2(side)) - 2
        if height != side or side < 8 or 4 * 2**doublings != side:
            raise ganlab.GanlabError(
                f"upsample generator: {height}x{side} images cannot be built; it needs square "
                "images whose side is a power of two from 8 up."
            )
        self.latent_shape = (nz,)
        top = width * 2 ** (doublings - 1)
        self.top = top
        self.project = nn.Sequential(nn.Linear(nz, top * 16, bias=False), nn.ReLU(True))
        layers: list[nn.Module] = [nn.BatchNorm2d(top)]
        for i in range(doublings - 1):
            layers += block(top >> i, top >> (i + 1))
        layers += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Tanh(),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, self.top, 4, 4))


def build_upsample(params: UpsampleParams, image_shape: tuple[int, int, int]) -> nn.Module:
    """Nearest-neighbour upsampling and 3x3 convolutions (no checkerboard artifacts)."""
    return UpsampleGenerator(params.nz, params.width, image_shape)


@ganlab.hookimpl
def ganlab_register_generators(register: ganlab.Register) -> None:
    register("upsample", build_upsample, params=UpsampleParams)
