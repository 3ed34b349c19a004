"""Property: whatever a recipe file holds, loading it gives a valid recipe or ganlab's own
error, never another exception."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganlab.errors import GanlabError
from ganlab.plugin_manager.loading import load_plugins
from ganlab.recipe.resolve import load_recipe, resolve

REGISTRY = load_plugins().registry
KEYS = [
    "seed",
    "device",
    "name",
    "plugins",
    "data",
    "generator",
    "discriminator",
    "loss",
    "optimizers",
    "train",
    "callbacks",
    "metrics",
    "loggers",
    "params",
    "epochs",
    "steps",
    "batch_size",
    "lr",
    "betas",
    "generator",
    "discriminator",
    "every",
    "nz",
    "ngf",
    "ndf",
    "root",
    "image_size",
    "count",
    "precision",
    "workers",
    "log_every",
    "checkpoint_every",
]
NAMES = ["dcgan", "bce", "celeba", "cartoon_faces", "console", "samples", "adam", "x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.sampled_from(NAMES),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=25,
)

VALID: dict[str, Any] = {
    "seed": 1,
    "data": {"name": "cartoon_faces", "params": {"count": 16, "image_size": 16}},
    "generator": {"name": "dcgan", "params": {"ngf": 8}},
    "discriminator": {"name": "dcgan"},
    "loss": {"name": "bce"},
    "train": {"steps": 2, "batch_size": 4},
    "callbacks": [{"name": "console"}],
}


def load(text: str, overrides: list[str] = ()) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.yaml"
        path.write_text(text, encoding="utf-8")
        with contextlib.suppress(GanlabError):  # the one acceptable failure
            resolve(load_recipe(path, overrides), REGISTRY)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    load(text)


@settings(max_examples=150, deadline=None)
@given(values)
def test_any_yaml_value(value: Any) -> None:
    load(yaml.safe_dump(value))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "seed",
                    "data",
                    "generator",
                    "discriminator",
                    "loss",
                    "train",
                    "callbacks",
                    "optimizers",
                    "device",
                    "plugins",
                    "name",
                ]
            ),
            values,
        ),
        max_size=3,
    ),
    st.lists(
        st.tuples(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3), st.text(max_size=8)),
        max_size=2,
    ),
)
def test_mutated_valid_recipe_and_overrides(changes: list, sets: list) -> None:
    recipe = dict(VALID)
    for key, value in changes:
        recipe[key] = value
    overrides = [f"{'.'.join(keys)}={text}" for keys, text in sets]
    load(yaml.safe_dump(recipe), overrides)
