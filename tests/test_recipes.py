"""Recipes: validation, did-you-mean errors, --set overrides, the resolved recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import RECIPES, invoke, tiny_recipe, write_recipe


def error_of(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_shipped_recipes_validate() -> None:
    for path in sorted(RECIPES.glob("*.yaml")):
        result = invoke("recipe", "validate", str(path))
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_resolved_recipe_fills_every_default() -> None:
    result = invoke("recipe", "show", str(RECIPES / "dcgan_celeba.yaml"))
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["name"] == "dcgan_celeba"
    assert resolved["seed"] == 999
    assert resolved["generator"]["params"] == {"nz": 100, "ngf": 64}
    assert resolved["discriminator"]["params"] == {
        "ndf": 64,
        "norm": "batch",
        "spectral_norm": False,
    }
    assert resolved["loss"] == {"name": "bce", "params": {"real_label": 1.0}}
    assert resolved["optimizers"]["generator"] == {
        "name": "adam",
        "lr": 0.0002,
        "betas": [0.5, 0.999],
        "weight_decay": 0.0,
        "schedule": None,
    }
    assert resolved["train"]["batch_size"] == 128 and resolved["train"]["epochs"] == 5
    assert resolved["train"]["cuda_graphs"] is False  # off unless a recipe asks
    assert resolved["data"]["params"] == {"root": "data/celeba", "image_size": 64}


def test_set_overrides_values_with_yaml_types() -> None:
    result = invoke(
        "recipe",
        "show",
        str(RECIPES / "dcgan_celeba.yaml"),
        "--set",
        "optimizers.generator.lr=1e-4",
        "--set",
        "seed=3",
        "--set",
        "callbacks.1.params.every=10",
        "--set",
        "optimizers.discriminator.betas=[0, 0.9]",
    )
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["optimizers"]["generator"]["lr"] == 1e-4
    assert resolved["optimizers"]["discriminator"]["betas"] == [0, 0.9]
    assert resolved["seed"] == 3
    assert resolved["callbacks"][1]["params"]["every"] == 10


def test_unknown_key_names_its_path_and_suggests(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path)
    recipe["train"]["batch_sise"] = 8
    out = error_of("recipe", "validate", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert "train.batch_sise: unknown key" in out
    assert 'Did you mean "batch_size"?' in out


def test_unknown_param_names_its_path_and_suggests(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path)
    recipe["generator"]["params"]["ngff"] = 8
    out = error_of("recipe", "validate", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert "generator.params.ngff: unknown key" in out
    assert 'Did you mean "ngf"?' in out


def test_unknown_component_suggests_a_known_one(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path)
    recipe["generator"]["name"] = "dcgna"
    out = error_of("recipe", "validate", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert "generator.name: unknown generator 'dcgna'" in out
    assert 'Did you mean "dcgan"?' in out


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("optimizers.generator.lr=0", "optimizers.generator.lr"),
        ("optimizers.generator.lr=-1e-3", "optimizers.generator.lr"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.epochs=-1", "train.epochs"),
        ("generator.params.ngf=abc", "generator.params.ngf"),
        ("device=tpu", "device"),
    ],
)
def test_bad_values_name_their_dotted_path(override: str, path: str) -> None:
    out = error_of("recipe", "validate", str(RECIPES / "dcgan_celeba.yaml"), "--set", override)
    assert f": {path}: " in out


def test_set_on_a_key_that_does_not_exist() -> None:
    out = error_of(
        "recipe", "validate", str(RECIPES / "dcgan_celeba.yaml"), "--set", "train.lr=1e-4"
    )
    assert "train.lr: unknown key" in out


def test_set_needs_key_equals_value() -> None:
    out = error_of("recipe", "validate", str(RECIPES / "dcgan_celeba.yaml"), "--set", "seed")
    assert "expected KEY=VALUE" in out


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 1\ntrain:\n  steps: [1, 2\n  batch_size: 8\n")
    out = error_of("recipe", "validate", str(path))
    assert "broken.yaml:4:" in out and "not valid YAML" in out


def test_missing_sections_are_named(tmp_path: Path) -> None:
    path = write_recipe(tmp_path / "r.yaml", {"seed": 1})
    out = error_of("recipe", "validate", str(path))
    for section in ("data", "generator", "discriminator", "loss", "train"):
        assert f"{section}: missing" in out


def test_train_needs_a_length(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path)
    recipe["train"] = {"batch_size": 8}
    out = error_of("recipe", "validate", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert "train.epochs or train.steps" in out


def test_missing_recipe_file() -> None:
    out = error_of("recipe", "validate", "nope.yaml")
    assert "Recipe 'nope.yaml' not found" in out
