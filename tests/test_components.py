"""The built-in components' contracts, and their equality with the DCGAN tutorial."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganlab
from ganlab.plugin_manager.loading import load_plugins
from ganlab.recipe.resolve import load_recipe, resolve
from ganlab_plugins.dcgan.models import (
    DiscriminatorParams,
    GeneratorParams,
    build_discriminator,
    build_generator,
)
from ganlab_plugins.losses.classic import BCEParams, WGANGPParams, build_bce, build_wgan_gp

# --- the tutorial's networks, written out as in the tutorial (REFERENCE.md) ---------------
nz, ngf, ndf, nc = 100, 64, 64, 3


class TutorialGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class TutorialDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def tutorial_weights_init(m: nn.Module) -> None:
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def layer_signature(module: nn.Module) -> list[str]:
    return [repr(layer) for layer in module.main]


def test_dcgan_64_stack_equals_the_tutorial() -> None:
    ours_g = build_generator(GeneratorParams(), (3, 64, 64))
    ours_d = build_discriminator(DiscriminatorParams(), (3, 64, 64))
    assert layer_signature(ours_g) == layer_signature(TutorialGenerator())
    # The tutorial's final Sigmoid is folded into the loss: everything before it is equal.
    assert layer_signature(ours_d) == layer_signature(TutorialDiscriminator())[:-1]


def test_dcgan_64_init_and_outputs_equal_the_tutorial() -> None:
    """Same seed -> the same initial weights and the same outputs as the tutorial's code."""
    torch.manual_seed(999)
    ref_g = TutorialGenerator()  # the tutorial's order: build G, init G, build D, init D
    ref_g.apply(tutorial_weights_init)
    ref_d = TutorialDiscriminator()
    ref_d.apply(tutorial_weights_init)
    torch.manual_seed(999)
    ours_g = build_generator(GeneratorParams(), (3, 64, 64))
    ours_d = build_discriminator(DiscriminatorParams(), (3, 64, 64))
    for ours, ref in ((ours_g, ref_g), (ours_d, ref_d)):
        ours_state, ref_state = ours.state_dict(), ref.state_dict()
        assert ours_state.keys() == ref_state.keys()
        for key in ref_state:
            assert torch.equal(ours_state[key], ref_state[key]), key
    z = torch.randn(4, nz, 1, 1)
    fake = ours_g(z)
    assert torch.equal(fake, ref_g(z))
    torch.testing.assert_close(torch.sigmoid(ours_d(fake)), ref_d(fake).view(-1))


@pytest.mark.parametrize("size", [16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_contract(size: int, channels: int) -> None:
    shape = (channels, size, size)
    generator = build_generator(GeneratorParams(nz=8, ngf=4), shape)
    discriminator = build_discriminator(DiscriminatorParams(ndf=4), shape)
    z = torch.randn(3, *generator.latent_shape)
    images = generator(z)
    assert images.shape == (3, *shape)
    assert images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    scores = discriminator(images)
    assert scores.shape == (3,)
    scores.sum().backward()
    for model in (generator, discriminator):
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("size", [48, 4])
def test_dcgan_refuses_sizes_it_cannot_build(size: int) -> None:
    with pytest.raises(ganlab.GanlabError, match="power of two"):
        build_generator(GeneratorParams(), (3, size, size))
    with pytest.raises(ganlab.GanlabError, match="power of two"):
        build_discriminator(DiscriminatorParams(), (3, size, size))


def test_bce_equals_the_tutorials_sigmoid_and_bceloss() -> None:
    loss = build_bce(BCEParams())
    torch.manual_seed(0)
    real, fake = torch.randn(64) * 3, torch.randn(64) * 3
    criterion = nn.BCELoss()
    expected_d = criterion(torch.sigmoid(real), torch.ones(64)) + criterion(
        torch.sigmoid(fake), torch.zeros(64)
    )
    expected_g = criterion(torch.sigmoid(fake), torch.ones(64))
    torch.testing.assert_close(loss.discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(loss.generator_loss(fake), expected_g)
    torch.testing.assert_close(loss.readout(real), torch.sigmoid(real))


def test_bce_stays_finite_where_sigmoid_then_bceloss_saturates() -> None:
    loss = build_bce(BCEParams())
    scores = torch.tensor([-200.0, 200.0], dtype=torch.bfloat16).float().requires_grad_()
    value = loss.generator_loss(scores)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(scores.grad).all()
    assert value.item() > 50  # a confident "fake" costs G a lot, not a clamped 100


def _dataset(recipe_changes: dict) -> object:
    from tests.conftest import RECIPES

    recipe = load_recipe(
        RECIPES / "dcgan_celeba.yaml", [f"{k}={v}" for k, v in recipe_changes.items()]
    )
    resolved = resolve(recipe, load_plugins().registry)
    component, params = resolved.get("data")
    return component.build(params)


@pytest.mark.parametrize("source", ["folder", "zip", "zip_parent"])
def test_celeba_reads_the_folder_and_the_zip_alike(
    source, celeba_dir, celeba_zip, tmp_path
) -> None:
    root = {"folder": celeba_dir, "zip": celeba_zip, "zip_parent": celeba_zip.parent}[source]
    dataset = _dataset({"data.params.root": root, "data.params.image_size": 32})
    assert len(dataset) == 20
    image = dataset[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1
    reference = _dataset({"data.params.root": celeba_dir, "data.params.image_size": 32})
    assert torch.equal(image, reference[0])  # same bytes, same decode, same tensor


def test_image_folder_finds_nested_images(tmp_path) -> None:
    from tests.conftest import write_jpegs

    write_jpegs(tmp_path / "a", 2, (40, 30))
    write_jpegs(tmp_path / "b" / "c", 3, (30, 40))
    from ganlab_plugins.data.datasets import ImageFolderParams, build_image_folder

    dataset = build_image_folder(ImageFolderParams(root=str(tmp_path), image_size=16, channels=1))
    assert len(dataset) == 5
    assert dataset[4].shape == (1, 16, 16)


def test_image_decoding_equals_the_tutorials_transform(celeba_dir) -> None:
    """uint8 after Resize + CenterCrop, then to_unit_range, is the tutorial's exact tensor."""
    from PIL import Image
    from torchvision import transforms

    from ganlab_plugins.data.datasets import CelebAParams, build_celeba

    dataset = build_celeba(CelebAParams(root=str(celeba_dir), image_size=64))
    tutorial = transforms.Compose(
        [
            transforms.Resize(64),
            transforms.CenterCrop(64),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
    for index in (0, 7):
        expected = tutorial(Image.open(dataset.files[index]).convert("RGB"))
        assert torch.equal(dataset[index], expected)
        assert dataset.load_uint8(index).dtype == torch.uint8


def test_hinge_and_least_squares_losses() -> None:
    from ganlab_plugins.losses.classic import LSGANParams, build_hinge, build_lsgan

    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    hinge = build_hinge(ganlab.NoParams())
    # relu(1 - real) = [0, .5, 2] -> 5/6; relu(1 + fake) = [0, 1, 2.5] -> 7/6
    torch.testing.assert_close(hinge.discriminator_loss(real, fake), torch.tensor(2.0))
    torch.testing.assert_close(hinge.generator_loss(fake), torch.tensor(0.5 / 3))
    ls = build_lsgan(LSGANParams())
    # ((1, .25, 4) mean 1.75 + (4, 0, 2.25) mean 2.0833) / 2
    torch.testing.assert_close(
        ls.discriminator_loss(real, fake), torch.tensor((1.75 + 6.25 / 3) / 2)
    )
    torch.testing.assert_close(ls.generator_loss(fake), torch.tensor((9 + 1 + 0.25) / 3 / 2))


def test_spectrally_normalised_discriminator() -> None:
    torch.manual_seed(0)
    params = DiscriminatorParams(ndf=8, spectral_norm=True, norm="none")
    model = build_discriminator(params, (3, 32, 32))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(4, 3, 32, 32)
    for _ in range(20):  # training-mode calls run the power iteration
        model(x)
    for layer in model.main:
        if isinstance(layer, nn.Conv2d):
            sigma = torch.linalg.matrix_norm(layer.weight.reshape(layer.weight.shape[0], -1), 2)
            assert sigma < 1.05  # every layer is (close to) 1-Lipschitz
    scores = model(x)
    scores.sum().backward()
    assert scores.shape == (4,)


def test_gradient_penalty_of_a_linear_critic() -> None:
    """For D(x) = w.x the gradient is w everywhere, so the penalty is lambda (|w| - 1)^2 and
    its gradient with respect to w is 2 lambda (|w| - 1) w / |w|: D learns from it."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1, bias=False))
    w = critic[1].weight
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    loss = build_wgan_gp(WGANGPParams(penalty_weight=10.0))
    penalty = loss.discriminator_penalty(critic, real, fake)
    norm = w.detach().norm()
    torch.testing.assert_close(penalty, 10.0 * (norm - 1) ** 2)
    penalty.backward()
    torch.testing.assert_close(w.grad, 20.0 * (norm - 1) * w.detach() / norm)
    scores = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    # The critic widens the gap between real and fake scores; G raises its fakes' scores.
    torch.testing.assert_close(loss.discriminator_loss(*scores), torch.tensor(-2.5))
    torch.testing.assert_close(loss.generator_loss(scores[1]), torch.tensor(0.5))


def test_layer_norm_discriminator_treats_each_image_alone() -> None:
    torch.manual_seed(0)
    model = build_discriminator(DiscriminatorParams(ndf=8, norm="layer"), (3, 16, 16))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    batch = torch.randn(6, 3, 16, 16)
    # An image's score does not depend on the other images of the batch (in training mode).
    torch.testing.assert_close(model(batch)[:2], model(batch[:2]))
