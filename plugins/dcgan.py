"""DCGAN generator and discriminator (Radford et al. 2015), as in the PyTorch tutorial.

At 64x64 the layer stacks are exactly the tutorial's (same layers, same order, same
parameter names under ``main``), except that the discriminator's final Sigmoid is left to
the loss: it returns logits, which the ``bce`` loss reads with a numerically safe
BCE-with-logits. Other power-of-two sizes add or drop one block per factor of two.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

import ganlab


class GeneratorParams(ganlab.Params):
    nz: int = Field(default=100, gt=0, description="length of the latent vector")
    ngf: int = Field(default=64, gt=0, description="feature-map width of the last block")


class DiscriminatorParams(ganlab.Params):
    ndf: int = Field(default=64, gt=0, description="feature-map width of the first block")
    norm: Literal["batch", "layer", "none"] = Field(
        default="batch",
        description="normalisation after each inner convolution: batch (the tutorial's), "
        "layer (for WGAN-GP, whose gradient penalty must treat each image on its own) or none",
    )
    spectral_norm: bool = Field(
        default=False, description="spectral normalisation of every convolution (SN-GAN)"
    )


def _doublings(image_shape: tuple[int, int, int], role: str) -> int:
    """How many times the stack doubles from 4x4 to the image size; checks the size."""
    _, height, width = image_shape
    if height != width or height < 8 or height & (height - 1):
        raise ganlab.GanlabError(
            f"dcgan {role}: images of {height}x{width} cannot be built; DCGAN needs square "
            "images whose side is a power of two from 8 up (16, 32, 64, 128, ...). Set the "
            "data set's image_size accordingly, e.g. --set data.params.image_size=64."
        )
    return int(math.log2(height)) - 2


def weights_init(module: nn.Module) -> None:
    """The tutorial's init: conv weights ~ N(0, 0.02); batch-norm weights ~ N(1, 0.02), bias 0."""
    classname = module.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(module.get_parameter("weight").data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(module.get_parameter("weight").data, 1.0, 0.02)
        nn.init.constant_(module.get_parameter("bias").data, 0)


class Generator(ganlab.Generator):
    """z (nz x 1 x 1) -> image (C x S x S) in [-1, 1]."""

    def __init__(self, nz: int, ngf: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.latent_shape = (nz, 1, 1)
        doublings = _doublings(image_shape, "generator")
        width = ngf * 2 ** (doublings - 1)  # 8*ngf at 64x64
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(doublings - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, image_shape[0], 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":  # one group: normalises each image over all its channels
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class Discriminator(nn.Module):
    """image (C x S x S) -> one logit per image."""

    def __init__(self, ndf: int, image_shape: tuple[int, int, int], norm: str = "batch") -> None:
        super().__init__()
        doublings = _doublings(image_shape, "discriminator")
        layers: list[nn.Module] = [
            nn.Conv2d(image_shape[0], ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for _ in range(doublings - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                _norm_layer(norm, width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))  # the tutorial's Sigmoid
        self.main = nn.Sequential(*layers)  # moves into the loss (BCE with logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).reshape(-1)


def build_generator(params: GeneratorParams, image_shape: tuple[int, int, int]) -> Generator:
    """DCGAN generator: transposed convolutions with batch norm and ReLU, tanh output."""
    model = Generator(params.nz, params.ngf, image_shape)
    model.apply(weights_init)
    return model


def build_discriminator(
    params: DiscriminatorParams, image_shape: tuple[int, int, int]
) -> Discriminator:
    """DCGAN discriminator: strided convolutions with batch norm and LeakyReLU, logit out."""
    model = Discriminator(params.ndf, image_shape, params.norm)
    model.apply(weights_init)
    if params.spectral_norm:  # after the init: it normalises the initialised weights
        for layer in model.main:
            if isinstance(layer, nn.Conv2d):
                nn.utils.parametrizations.spectral_norm(layer)
    return model


@ganlab.hookimpl
def ganlab_register_generators(register: ganlab.Register) -> None:
    register("dcgan", build_generator, params=GeneratorParams)


@ganlab.hookimpl
def ganlab_register_discriminators(register: ganlab.Register) -> None:
    register("dcgan", build_discriminator, params=DiscriminatorParams)
