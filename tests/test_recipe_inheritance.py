"""Recipes that inherit (``base:``): chains, merging, ``!delete``, errors that name the file
and line that set a bad value, the flat recipe a run saves, ``recipe diff``, and the shipped
variants, each its base plus what it says."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from ganlab.recipe.diff import differing_keys, flatten
from ganlab.recipe.yamlfile import load_yaml
from tests.conftest import RECIPES, invoke, only_run_dir, tiny_recipe, write_recipe


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def show(path: Path, *sets: str) -> dict[str, Any]:
    """``ganlab recipe show PATH --set ...`` as a mapping."""
    args = ["recipe", "show", str(path)]
    for override in sets:
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)


def refused(*args: str) -> str:
    """The message of a command that must fail with a user error (exit 2)."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output.removeprefix("ganlab: error: ").strip()


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """a.yaml -> sub/b.yaml -> base.yaml (a tiny recipe with two callbacks): b's base is
    ``../base.yaml``, relative to b itself."""
    write_recipe(
        tmp_path / "base.yaml",
        tiny_recipe(
            tmp_path / "images",
            callbacks=[
                {"name": "console", "params": {"every": 1}},
                {"name": "samples", "params": {"every": 3}},
            ],
        ),
    )
    write(
        tmp_path / "sub" / "b.yaml",
        """
        base: ../base.yaml
        train:
          steps: 5
        """,
    )
    return write(
        tmp_path / "a.yaml",
        """
        base: sub/b.yaml
        generator:
          params: {ngf: 4}
        callbacks:
          - name: console
            params: {every: 2}
        """,
    )


def test_a_chain_merges_maps_key_by_key_and_replaces_lists_whole(chain: Path) -> None:
    resolved = show(chain)
    assert "base" not in resolved
    assert resolved["name"] == "a"  # the file given names the run, not a base
    # b's train.steps and base.yaml's batch_size: the map merged across three files
    assert resolved["train"]["steps"] == 5 and resolved["train"]["batch_size"] == 8
    # a's ngf and base.yaml's name and nz
    assert resolved["generator"]["name"] == "dcgan"
    assert resolved["generator"]["params"]["ngf"] == 4
    assert resolved["generator"]["params"]["nz"] == 16
    # the list is a's alone: base.yaml's samples callback is gone
    assert [(c["name"], c["params"]["every"]) for c in resolved["callbacks"]] == [("console", 2)]


def test_set_applies_after_the_merge(chain: Path) -> None:
    resolved = show(chain, "train.steps=7", "generator.params.nz=8")
    assert resolved["train"]["steps"] == 7
    assert resolved["generator"]["params"] == {**show(chain)["generator"]["params"], "nz": 8}


def test_delete_removes_a_key_so_that_its_default_applies(tmp_path: Path, chain: Path) -> None:
    deleting = write(
        tmp_path / "deleting.yaml",
        """
        base: a.yaml
        discriminator:
          params:
            ndf: !delete
        callbacks: !delete
        """,
    )
    resolved = show(deleting)
    assert resolved["callbacks"] == []
    # the width a recipe gets that never set ndf
    flat = tiny_recipe(tmp_path / "images")
    flat["discriminator"] = {"name": "dcgan"}
    assert (
        resolved["discriminator"]
        == show(write_recipe(tmp_path / "flat.yaml", flat))["discriminator"]
    )
    assert resolved["discriminator"] != show(chain)["discriminator"]
    # YAML needs a space after a tag before a flow mapping's brace: said, with the fix
    flow = write(tmp_path / "flow.yaml", "base: a.yaml\ngenerator: {params: {ngf: !delete}}\n")
    assert "A tag needs a space after it: write `!delete }`" in refused("recipe", "show", str(flow))
    fixed = write(tmp_path / "fixed.yaml", "base: a.yaml\ngenerator: {params: {ngf: !delete }}\n")
    assert "ngf" in show(fixed)["generator"]["params"]  # the default again


def test_delete_of_a_key_no_base_sets_is_refused_at_its_line(tmp_path: Path, chain: Path) -> None:
    typo = write(tmp_path / "typo.yaml", "base: a.yaml\ntrain:\n  stepz: !delete\n")
    assert refused("recipe", "validate", str(typo)).startswith(
        f"{typo}:3: train.stepz: !delete removes a key that a base sets, and no base sets"
    )
    in_list = write(
        tmp_path / "in_list.yaml",
        "base: a.yaml\ncallbacks:\n  - {name: console, params: !delete }\n",
    )
    assert refused("recipe", "validate", str(in_list)).startswith(
        f"{in_list}:3: callbacks.0.params: !delete removes a key that a base sets; here it is "
        "inside a value that replaces callbacks whole"
    )


def test_delete_in_a_set_is_refused_with_what_to_do_instead(chain: Path) -> None:
    assert refused("recipe", "show", str(chain), "--set", "callbacks=!delete").startswith(
        "--set callbacks=!delete: !delete works only in a recipe file, on a key that its base sets."
    )


def test_a_cycle_is_refused_naming_the_chain(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "seed: 1\nbase: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    message = refused("recipe", "show", str(a))
    assert message.startswith(f"{tmp_path / 'b.yaml'}:1: base: the recipes name each other")
    assert f"({a} -> {tmp_path / 'b.yaml'} -> {a})" in message
    itself = write(tmp_path / "itself.yaml", "base: itself.yaml\n")
    assert f"({itself} -> {itself})" in refused("recipe", "show", str(itself))


def test_a_missing_base_names_the_file_that_refers_to_it(tmp_path: Path, chain: Path) -> None:
    orphan = write(tmp_path / "sub" / "orphan.yaml", "seed: 2\nbase: base.yaml\n")
    assert refused("recipe", "validate", str(orphan)) == (
        f"{orphan}:2: base: 'base.yaml' not found (looked for {tmp_path / 'sub' / 'base.yaml'}). "
        "The path is relative to the recipe that names it; give the path of a .yaml file."
    )


def test_an_error_names_the_file_and_line_that_set_the_bad_value(
    tmp_path: Path, chain: Path
) -> None:
    # set in the variant: the variant and its line
    typo = write(tmp_path / "small.yaml", "base: a.yaml\ntrain:\n  bacth_size: 4\n")
    assert refused("recipe", "validate", str(typo)).startswith(
        f'{typo}:3: train.bacth_size: unknown key. Did you mean "batch_size"?'
    )
    # set in a base two files up, inherited unchanged: that base and its line
    bad_base = write(tmp_path / "sub" / "b.yaml", "base: ../base.yaml\ntrain:\n  steps: true\n")
    assert refused("recipe", "validate", str(chain)).startswith(
        f"{bad_base}:3: train.steps: Input should be a valid integer (got True)"
    )
    # a component's params (stage 2), from the variant
    ngf = write(tmp_path / "ngf.yaml", "base: base.yaml\ngenerator:\n  params: {ngf: 0}\n")
    assert refused("recipe", "validate", str(ngf)).startswith(f"{ngf}:3: generator.params.ngf:")
    # given with --set: the recipe given, no line
    assert refused("recipe", "validate", str(ngf), "--set", "train.batch_size=0").startswith(
        f"{ngf}: train.batch_size: Input should be greater than 0"
    )


def test_a_run_saves_the_flat_recipe_that_recipe_show_prints(tmp_path: Path) -> None:
    base = tiny_recipe("unused", device="cpu")
    base["data"] = {"name": "cartoon_faces", "params": {"count": 16, "image_size": 16}}
    base["train"] = {"steps": 2, "batch_size": 8}
    write_recipe(tmp_path / "base.yaml", base)
    variant = write(tmp_path / "variant.yaml", "base: base.yaml\nloss: {name: hinge}\n")
    result = invoke("run", str(variant), "--out", str(tmp_path / "runs"), "--set", "seed=4")
    assert result.exit_code == 0, result.output
    saved = (only_run_dir(tmp_path / "runs") / "recipe.yaml").read_text(encoding="utf-8")
    shown = invoke("recipe", "show", str(variant), "--set", "seed=4")
    assert saved == shown.output
    recipe = yaml.safe_load(saved)
    assert "base" not in recipe and recipe["name"] == "variant" and recipe["seed"] == 4
    assert recipe["loss"]["name"] == "hinge" and recipe["train"]["steps"] == 2


def test_recipe_diff_prints_the_keys_that_differ(chain: Path, tmp_path: Path) -> None:
    result = invoke("recipe", "diff", str(tmp_path / "base.yaml"), str(chain))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "name: base -> a" in lines
    assert "train.steps: 3 -> 5" in lines
    assert "generator.params.ngf: 8 -> 4" in lines
    assert "callbacks.0.params.every: 1 -> 2" in lines
    assert "callbacks.1.name: samples -> (not set)" in lines
    same = invoke("recipe", "diff", str(chain), str(chain), "--set", "seed=3")
    assert same.exit_code == 0 and same.output == ""


VARIANTS = sorted(p for p in RECIPES.glob("*.yaml") if "base" in load_yaml(p.read_text()))


def test_shipped_variants_exist() -> None:
    names = {p.stem for p in VARIANTS}
    assert {"small_ada", "quickstart_hinge", "sngan_cartoon_conditional"} <= names


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda p: p.stem)
def test_a_shipped_variant_is_its_base_plus_what_it_says(variant: Path) -> None:
    """The variant's resolved recipe equals its base's, except for its name and the keys its
    delta sets (a component whose name it changes may have other params; a list it gives is
    its own); and every value the delta sets is the value the variant runs with."""
    delta = load_yaml(variant.read_text(encoding="utf-8"))
    parent = flatten(show(variant.parent / delta.pop("base")))
    child = flatten(show(variant))
    said = flatten(delta)
    for key, value in said.items():
        assert child[key] == value, key
    allowed = {"name", *said}
    allowed |= {key.removesuffix(".name") + ".params" for key in said if key.endswith(".name")}
    allowed |= {key for key, value in delta.items() if isinstance(value, list)}
    changed = [k for k in differing_keys([parent, child]) if k != "name"]
    assert changed, "a variant that changes nothing"
    stray = [k for k in changed if not any(k == a or k.startswith(f"{a}.") for a in allowed)]
    assert not stray, f"{variant.name} differs from its base where its delta says nothing"
    assert child["name"] == variant.stem
