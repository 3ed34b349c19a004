"""What validation refuses before anything runs: numbers that are not finite, a component
changed on resume, a plugin that ends the process while it loads, a folder given as a recipe."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, train


@pytest.mark.parametrize(
    ("override", "place"),
    [
        ("optimizers.generator.lr=.inf", "optimizers.generator.lr"),
        ("optimizers.discriminator.weight_decay=.inf", "optimizers.discriminator.weight_decay"),
        ("penalties=[{name: r1, params: {weight: .nan}}]", "penalties.0.params.weight"),
        (
            "optimizers.generator.schedule="
            "{name: CosineAnnealingLR, params: {T_max: 10, eta_min: -.inf}}",
            "optimizers.generator.schedule.params.eta_min",
        ),
    ],
)
def test_values_that_are_not_finite_are_refused(override: str, place: str) -> None:
    """Any field, any component's params, any schedule argument: inf and nan can only
    train NaN, so they do not validate."""
    result = invoke("recipe", "validate", str(RECIPES / "quickstart.yaml"), "--set", override)
    assert result.exit_code == 2, result.output
    assert f"{place}: " in result.output and "not a finite number" in result.output
    assert "Traceback" not in result.output


def test_changing_a_component_on_resume_says_it_cannot_change(tmp_path: Path) -> None:
    """Not "real_label: unknown key" blamed on the run's own recipe.yaml."""
    out = tmp_path / "runs"
    run_dir = train(RECIPES / "quickstart.yaml", out, *TINY_QUICKSTART, "train.steps=2")
    before = (run_dir / "recipe.yaml").read_text()
    for section, name in (("loss", "hinge"), ("generator", "nosuch"), ("data", "image_folder")):
        result = invoke(
            "run", "--resume", str(run_dir), "--set", "train.steps=4", "--set",
            f"{section}.name={name}",
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert f"its {section} is" in result.output and "cannot change" in result.output
        assert "unknown key" not in result.output
    assert (run_dir / "recipe.yaml").read_text() == before


def test_a_plugin_that_exits_while_it_loads_is_named(tmp_path: Path) -> None:
    """sys.exit(3) in a plugin's module (or in its registration hook) ends ganlab with one
    message naming the plugin, not with the plugin's exit code and no word."""
    plugin = tmp_path / "exits.py"
    plugin.write_text("import sys\nsys.exit(3)\n")
    result = invoke("plugins", "-p", str(plugin))
    assert result.exit_code == 1, result.output
    assert "exits.py" in result.output and "SystemExit: 3" in result.output
    hook = tmp_path / "exits_in_hook.py"
    hook.write_text(
        textwrap.dedent("""
        import ganlab

        @ganlab.hookimpl
        def ganlab_register_losses(register):
            raise SystemExit(4)
        """)
    )
    result = invoke("plugins", "-p", str(hook))
    assert result.exit_code == 1, result.output
    assert "exits_in_hook.py" in result.output and "ganlab_register_losses" in result.output


def test_rotation_deletes_only_the_checkpoints_ganlab_wrote(tmp_path: Path) -> None:
    """Files the user put in checkpoints/ that look like checkpoints (step_7.pt, a name
    ganlab never writes: its names have six digits) survive rotation."""
    sets = (*TINY_QUICKSTART, "train.steps=2", "train.checkpoint_every=1")
    run_dir = train(
        RECIPES / "quickstart.yaml", tmp_path / "runs", *sets, "train.keep_checkpoints=1"
    )
    mine = [
        run_dir / "checkpoints" / name for name in ("step_7.pt", "step_0000001.pt", "step_1.pt")
    ]
    for path in mine:
        path.write_bytes(b"the user's own file")
    result = invoke("run", "--resume", str(run_dir), "--set", "train.steps=4")
    assert result.exit_code == 0, result.output
    assert all(path.read_bytes() == b"the user's own file" for path in mine)
    left = {p.name for p in (run_dir / "checkpoints").glob("step_*.pt")}
    assert left == {"step_000004.pt", *(path.name for path in mine)}


def test_a_folder_given_as_the_recipe_says_so(tmp_path: Path) -> None:
    """Not "not found": a folder, and for a run folder the commands meant."""
    run_dir = train(
        RECIPES / "quickstart.yaml", tmp_path / "runs", *TINY_QUICKSTART, "train.steps=1"
    )
    result = invoke("run", str(run_dir))
    assert result.exit_code == 2, result.output
    assert "is a folder" in result.output and "not found" not in result.output
    assert f"--resume {run_dir}" in result.output and str(run_dir / "recipe.yaml") in result.output
    result = invoke("run", str(RECIPES))
    assert result.exit_code == 2 and "quickstart.yaml" in result.output, result.output


def test_divergence_names_the_term_that_went_non_finite_first(tmp_path: Path) -> None:
    """A penalty of weight 1e300 is named, with its weight to lower, not a learning rate."""
    penalty = "penalties=[{name: r1, params: {weight: 1e300}}]"
    sets = [arg for s in (*TINY_QUICKSTART, penalty) for arg in ("--set", s)]
    result = invoke("run", str(RECIPES / "quickstart.yaml"), "--out", str(tmp_path), *sets)
    assert result.exit_code == 2, result.output
    message = result.output.splitlines()[-1]
    assert "diverged at step 1" in message and "penalty 'r1'" in message, message
    assert "penalties.0.params.weight" in message and "learning rate" not in message
