"""DCGAN generator and discriminator (Radford et al. 2015), as in the PyTorch tutorial.

At 64x64 the layer stacks are exactly the tutorial's (same layers, same order, same
parameter names under ``main``), except that the discriminator's final Sigmoid is left to
the loss: it returns logits, which the ``bce`` loss reads with a numerically safe
BCE-with-logits. Other power-of-two sizes add or drop one block per factor of two.

``cdcgan`` is the class-conditional DCGAN, for a data set with classes: the generator's
batch norms take their scale and shift from the class (conditional batch norm, de Vries et
al. 2017, as the generator of Miyato & Koyama 2018), and the discriminator is DCGAN's with a
projection (Miyato & Koyama 2018, "cGANs with Projection Discriminator"): the inner product
of a class embedding with its penultimate features is added to its unconditional score.
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


# --- conditional DCGAN --------------------------------------------------------------------


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are the class's own: ``norm(x) * gamma[y] + beta[y]``
    (de Vries et al. 2017), the per-class form of DCGAN's batch norm."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale_shift = nn.Embedding(num_classes, 2 * channels)
        # Every class starts as DCGAN's batch norm does: scale ~ N(1, 0.02), shift 0.
        nn.init.normal_(self.scale_shift.weight[:, :channels], 1.0, 0.02)
        nn.init.zeros_(self.scale_shift.weight[:, channels:])

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift(labels)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * scale + shift


class ConditionalGenerator(ganlab.Generator):
    """(z, class) -> image: DCGAN's generator with a conditional batch norm in every block.

    Conditional batch norm rather than a class embedding joined to z: the class sets every
    block's features, not only the first layer's input, so later layers cannot wash it out;
    it is what the projection discriminator's paper trained its generators with (and
    BigGAN after it), and in DCGAN, which has a batch norm in every block already, it adds
    nothing but two vectors per class and block.
    """

    def __init__(
        self, nz: int, ngf: int, image_shape: tuple[int, int, int], num_classes: int
    ) -> None:
        super().__init__()
        self.latent_shape = (nz, 1, 1)
        doublings = _doublings(image_shape, "generator")
        width = ngf * 2 ** (doublings - 1)  # as in `Generator`
        convs: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False)]
        norms = [ConditionalBatchNorm2d(width, num_classes)]
        for _ in range(doublings - 1):
            convs.append(nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False))
            norms.append(ConditionalBatchNorm2d(width // 2, num_classes))
            width //= 2
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(norms)
        self.to_image = nn.ConvTranspose2d(width, image_shape[0], 4, 2, 1, bias=False)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = z
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = torch.relu(norm(conv(h), labels))
        return torch.tanh(self.to_image(h))


class ProjectionDiscriminator(nn.Module):
    """(image, class) -> one logit per image: DCGAN's discriminator plus the projection of
    Miyato & Koyama 2018, ``psi(phi(x)) + <embed(y), phi(x)>``, where ``phi(x)`` is the last
    block's features summed over space and ``psi`` DCGAN's last convolution."""

    def __init__(
        self, ndf: int, image_shape: tuple[int, int, int], norm: str, num_classes: int
    ) -> None:
        super().__init__()
        self.main = Discriminator(ndf, image_shape, norm).main  # DCGAN's layers, as named there
        head = self.main[-1]
        assert isinstance(head, nn.Conv2d)
        self.embed = nn.Embedding(num_classes, head.in_channels)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = self.main[:-1](images)  # (N, width, 4, 4), after the last LeakyReLU
        unconditional = self.main[-1](features).reshape(-1)
        projection = (self.embed(labels) * features.sum(dim=(2, 3))).sum(dim=1)
        return unconditional + projection


def _init_convolutions(model: nn.Module) -> None:
    # DCGAN's init for the convolutions; the conditional batch norms init themselves (the
    # tutorial's weights_init would look for a weight they do not have).
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)


def build_conditional_generator(
    params: GeneratorParams, image_shape: tuple[int, int, int], num_classes: int
) -> ConditionalGenerator:
    """Conditional DCGAN generator: DCGAN's, with class-conditional batch norm."""
    model = ConditionalGenerator(params.nz, params.ngf, image_shape, num_classes)
    _init_convolutions(model)
    return model


def build_conditional_discriminator(
    params: DiscriminatorParams, image_shape: tuple[int, int, int], num_classes: int
) -> ProjectionDiscriminator:
    """Conditional DCGAN discriminator: DCGAN's, with a class projection (Miyato & Koyama)."""
    model = ProjectionDiscriminator(params.ndf, image_shape, params.norm, num_classes)
    model.main.apply(weights_init)
    nn.init.normal_(model.embed.weight, 0.0, 0.02)  # on the scale of the last convolution's
    if params.spectral_norm:  # the embedding too, as in the paper: it is a linear layer of D
        for layer in [*model.main, model.embed]:
            if isinstance(layer, (nn.Conv2d, nn.Embedding)):
                nn.utils.parametrizations.spectral_norm(layer)
    return model


@ganlab.hookimpl
def ganlab_register_generators(register: ganlab.Register) -> None:
    register("dcgan", build_generator, params=GeneratorParams)
    register("cdcgan", build_conditional_generator, params=GeneratorParams, conditional=True)


@ganlab.hookimpl
def ganlab_register_discriminators(register: ganlab.Register) -> None:
    register("dcgan", build_discriminator, params=DiscriminatorParams)
    register(
        "cdcgan", build_conditional_discriminator, params=DiscriminatorParams, conditional=True
    )
