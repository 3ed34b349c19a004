"""The relativistic average losses equal the paper's equations on fixed scores (written here
with plain floats and math, from Jolicoeur-Martineau 2019, eqs. for RaSGAN, RaLSGAN and
RaHingeGAN, halved as her code does), for D and for G, and the recipe picks which real
scores G's loss is given."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

import ganlab
from ganlab.plugin_manager.loading import load_plugins
from ganlab.recipe.resolve import load_recipe, resolve
from ganlab_plugins.losses.relativistic import (
    RaLSGAN,
    RaSGAN,
    RelativisticParams,
    build_ragan,
    build_rahinge,
    build_ralsgan,
)
from tests.conftest import RECIPES

REAL = [1.5, -0.25, 0.75, 2.0]
FAKE = [-1.0, 0.5, -2.5]  # another batch size: the means are over each batch


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def sigmoid(y: float) -> float:
    return 1 / (1 + math.exp(-y))


def relativistic(
    f_real: Callable[[float], float], f_fake: Callable[[float], float]
) -> tuple[float, float]:
    """(L_D, L_G) of the paper's relativistic average form on REAL and FAKE:
    D: E_x[f_real(C(x) - E C(G(z)))] + E_z[f_fake(C(G(z)) - E C(x))], G with f swapped."""
    real_rel = [r - mean(FAKE) for r in REAL]
    fake_rel = [f - mean(REAL) for f in FAKE]
    loss_d = (mean([f_real(y) for y in real_rel]) + mean([f_fake(y) for y in fake_rel])) / 2
    loss_g = (mean([f_fake(y) for y in real_rel]) + mean([f_real(y) for y in fake_rel])) / 2
    return loss_d, loss_g


CASES = {
    # RaSGAN: -log(sigmoid(y)) for the side D calls real, -log(1 - sigmoid(y)) for the other.
    "ragan": (
        build_ragan,
        lambda y: -math.log(sigmoid(y)),
        lambda y: -math.log(1 - sigmoid(y)),
    ),
    # RaLSGAN: targets +1 and -1 on the relativistic scores.
    "ralsgan": (build_ralsgan, lambda y: (y - 1) ** 2, lambda y: (y + 1) ** 2),
    # RaHingeGAN: margins 1.
    "rahinge": (build_rahinge, lambda y: max(0.0, 1 - y), lambda y: max(0.0, 1 + y)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_loss_is_the_papers_formula_for_d_and_g(name: str) -> None:
    build, f_real, f_fake = CASES[name]
    loss = build(RelativisticParams())
    expected_d, expected_g = relativistic(f_real, f_fake)
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator_loss(fake, real).item() == pytest.approx(expected_g, rel=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_d_learns_to_separate_and_g_to_pass_the_reals(name: str) -> None:
    """D's loss falls as real scores rise and fake ones fall; G's falls as its fakes rise
    (through the mean of the fakes in the real term as well); the reals get no gradient in
    G's update (they come detached)."""
    loss = CASES[name][0](RelativisticParams())
    # An untrained D's scores: near 0, inside every margin.
    real = torch.tensor([0.1, -0.2, 0.05, 0.0], requires_grad=True)
    fake = torch.tensor([0.0, 0.1, -0.1], requires_grad=True)
    loss.discriminator_loss(real, fake).backward()
    assert real.grad is not None and fake.grad is not None
    assert real.grad.sum() < 0 < fake.grad.sum()
    fake.grad = None
    loss.generator_loss(fake, real.detach()).backward()
    assert fake.grad.sum() < 0


def built_loss(*overrides: str) -> ganlab.GanLoss:
    """The loss the quickstart recipe builds with ``overrides``."""
    recipe = load_recipe(RECIPES / "quickstart.yaml", list(overrides))
    component, params = resolve(recipe, load_plugins().registry).get("loss")
    built = component.build(params)
    assert isinstance(built, ganlab.GanLoss)
    return built


def test_the_recipe_picks_current_or_last_real_scores() -> None:
    """`current` (the default, her code's) rescores the reals with the updated D; `last`
    reuses the scores of D's update, per loss object; a typo is refused."""
    assert isinstance(built_loss("loss={name: ragan}"), RaSGAN)
    assert built_loss("loss={name: ragan}").needs_real_scores == "current"
    last = built_loss("loss={name: ralsgan, params: {real_scores: last}}")
    assert isinstance(last, RaLSGAN) and last.needs_real_scores == "last"
    assert built_loss("loss={name: rahinge}").needs_real_scores == "current"
    with pytest.raises(ganlab.GanlabError, match="real_scores"):
        built_loss("loss={name: rahinge, params: {real_scores: stale}}")


def test_g_loss_without_real_scores_says_what_it_needs() -> None:
    with pytest.raises(ValueError, match="needs D's scores of the real batch"):
        build_ragan(RelativisticParams()).generator_loss(torch.tensor(FAKE))
