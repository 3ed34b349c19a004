"""Plugins: from a .py file, from an installed distribution's entry point, and their errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import invoke, only_run_dir, tiny_recipe, write_jpegs, write_recipe

LSGAN_PLUGIN = """
import json
import torch
import ganlab


class LeastSquares(ganlab.GanLoss):
    def discriminator_loss(self, real_scores, fake_scores):
        return ((real_scores - 1) ** 2).mean() + (fake_scores ** 2).mean()

    def generator_loss(self, fake_scores):
        return ((fake_scores - 1) ** 2).mean()


class StepParams(ganlab.Params):
    filename: str = "steps.json"


class RecordSteps:
    def __init__(self, filename):
        self.filename, self.seen = filename, []

    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        self.seen.append([stats.step, float(stats.loss_g)])

    @ganlab.hookimpl
    def ganlab_run_end(self, run):
        (run.dir / self.filename).write_text(json.dumps(self.seen))


@ganlab.hookimpl
def ganlab_register_losses(register):
    register("my_lsgan", lambda params: LeastSquares())


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("record_steps", lambda params: RecordSteps(params.filename), params=StepParams)
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_jpegs(root, 8, (24, 24))
    return root


def test_plugin_file_named_in_the_recipe(tmp_path: Path, images: Path) -> None:
    (tmp_path / "my_plugin.py").write_text(LSGAN_PLUGIN)
    recipe = tiny_recipe(
        images,
        plugins=["my_plugin.py"],  # relative to the recipe's folder
        loss={"name": "my_lsgan"},
        callbacks=[{"name": "record_steps", "params": {"filename": "seen.json"}}],
    )
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    result = invoke("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")
    seen = (run_dir / "seen.json").read_text()
    assert seen.startswith("[[1, ") and "[3, " in seen
    assert (run_dir / "recipe.yaml").read_text().count("my_lsgan") == 1


def test_plugin_module_given_with_p(tmp_path: Path, images: Path, monkeypatch) -> None:
    (tmp_path / "gan_extras.py").write_text(LSGAN_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = invoke("plugins", "-p", "gan_extras")
    assert result.exit_code == 0, result.output
    assert "my_lsgan" in result.output and "[gan_extras]" in result.output
    assert "record_steps" in result.output and "filename: str = 'steps.json'" in result.output


def test_installed_entry_point_plugin(tmp_path: Path, images: Path) -> None:
    """A real distribution, installed with pip, found through the `ganlab` entry-point group."""
    package = tmp_path / "ganlab-lsgan"
    (package / "ganlab_lsgan").mkdir(parents=True)
    (package / "ganlab_lsgan" / "__init__.py").write_text(LSGAN_PLUGIN)
    (package / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "ganlab-lsgan"
        version = "0.1"
        [project.entry-points.ganlab]
        lsgan = "ganlab_lsgan"
    """)
    )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(package),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run(
        [sys.executable, "-m", "ganlab.commands.cli", "plugins"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    assert "my_lsgan" in listing.stdout and "entry point of ganlab-lsgan" in listing.stdout

    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(images, loss={"name": "my_lsgan"}))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganlab.commands.cli",
            "run",
            str(recipe),
            "--out",
            str(tmp_path / "runs"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (only_run_dir(tmp_path / "runs") / "checkpoints" / "final.pt").is_file()


def _plugin_error(tmp_path: Path, source: str) -> str:
    (tmp_path / "bad_plugin.py").write_text(textwrap.dedent(source))
    result = invoke("plugins", "-p", str(tmp_path / "bad_plugin.py"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_duplicate_component_names_both_plugins(tmp_path: Path) -> None:
    out = _plugin_error(
        tmp_path,
        """
        import ganlab

        @ganlab.hookimpl
        def ganlab_register_generators(register):
            register("dcgan", lambda params, image_shape: None)
    """,
    )
    assert "Two plugins register the generator 'dcgan'" in out
    assert "'ganlab_plugins.dcgan.models'" in out and "bad_plugin.py" in out


def test_misspelled_hook_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    out = _plugin_error(
        tmp_path,
        """
        import ganlab

        @ganlab.hookimpl
        def ganlab_register_loss(register):
            pass
    """,
    )
    assert "'ganlab_register_loss', which is not a ganlab hook" in out
    assert 'Did you mean "ganlab_register_losses"?' in out
    assert "bad_plugin.py" in out


def test_plugin_that_fails_to_import_is_named(tmp_path: Path) -> None:
    out = _plugin_error(tmp_path, "import numpy_that_does_not_exist\n")
    assert "bad_plugin.py" in out and "failed to import" in out
    assert "numpy_that_does_not_exist" in out


def test_params_model_must_forbid_unknown_keys(tmp_path: Path) -> None:
    out = _plugin_error(
        tmp_path,
        """
        import ganlab, pydantic

        class Loose(pydantic.BaseModel):
            k: int = 1

        @ganlab.hookimpl
        def ganlab_register_losses(register):
            register("loose", lambda params: None, params=Loose)
    """,
    )
    assert "must forbid unknown keys" in out and "ganlab.Params" in out


def test_missing_plugin_module() -> None:
    result = invoke("plugins", "-p", "no_such_plugin_module")
    assert result.exit_code == 2
    assert "Plugin module 'no_such_plugin_module' not found" in result.output


def test_plugins_lists_the_builtins() -> None:
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    for name in ("dcgan", "celeba", "image_folder", "cartoon_faces", "bce", "console", "samples"):
        assert f"  {name} " in result.output, name


def test_hook_arguments_with_defaults_are_refused(tmp_path: Path) -> None:
    out = _plugin_error(
        tmp_path,
        """
        import ganlab

        @ganlab.hookimpl
        def ganlab_register_losses(register=None):
            pass
    """,
    )
    assert "ganlab_register_losses gives default values to register" in out


def test_same_plugin_from_recipe_and_p_loads_once_and_is_recorded(
    tmp_path: Path, images: Path, monkeypatch
) -> None:
    (tmp_path / "my_plugin.py").write_text(LSGAN_PLUGIN)
    (tmp_path / "extra.py").write_text(
        LSGAN_PLUGIN.replace('"my_lsgan"', '"lsgan2"').replace('"record_steps"', '"record_steps2"')
    )
    recipe = tiny_recipe(images, plugins=["my_plugin.py"], loss={"name": "lsgan2"})
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    monkeypatch.chdir(tmp_path)
    result = invoke(
        "run", str(path), "-p", "./my_plugin.py", "-p", "extra.py", "--out", str(tmp_path / "a")
    )
    assert result.exit_code == 0, result.output
    saved = only_run_dir(tmp_path / "a") / "recipe.yaml"
    # The run folder's recipe names both plugins and runs again without -p, from elsewhere.
    monkeypatch.chdir(images)
    again = invoke("run", str(saved), "--out", str(tmp_path / "b"))
    assert again.exit_code == 0, again.output


def test_metrics_are_computed_logged_in_step_order(tmp_path: Path, images: Path) -> None:
    (tmp_path / "metric.py").write_text(
        textwrap.dedent("""
        import ganlab

        def mean_pixel(run):
            fake = run.generate(run.fixed_latents[:8])
            return {"mean_pixel": float(fake.mean())}

        @ganlab.hookimpl
        def ganlab_register_metrics(register):
            register("mean_pixel", lambda params: mean_pixel)
    """)
    )
    recipe = tiny_recipe(images, plugins=["metric.py"], metrics=[{"name": "mean_pixel"}])
    recipe["train"] = {"steps": 5, "batch_size": 4, "log_every": 4, "eval_every": 2}
    result = invoke("run", str(write_recipe(tmp_path / "r.yaml", recipe)), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    from ganlab.files.metrics_log import read_metrics

    rows = read_metrics(only_run_dir(tmp_path) / "metrics.jsonl")
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps)
    assert [r["step"] for r in rows if "mean_pixel" in r] == [2, 4, 5]  # every 2, and the end
    assert all(-1 <= r["mean_pixel"] <= 1 for r in rows if "mean_pixel" in r)


def test_callback_with_a_misspelled_hook_leaves_no_run_folder(tmp_path: Path, images: Path) -> None:
    (tmp_path / "cb.py").write_text(
        textwrap.dedent("""
        import ganlab

        class Typo:
            @ganlab.hookimpl
            def ganlab_step_ends(self, run, stats):
                pass

        @ganlab.hookimpl
        def ganlab_register_callbacks(register):
            register("typo", lambda params: Typo())
    """)
    )
    recipe = tiny_recipe(images, plugins=["cb.py"], callbacks=[{"name": "typo"}])
    out = tmp_path / "runs"
    result = invoke("run", str(write_recipe(tmp_path / "r.yaml", recipe)), "--out", str(out))
    assert result.exit_code == 2
    assert "'ganlab_step_ends', which is not a ganlab hook" in result.output
    assert 'Did you mean "ganlab_step_end"?' in result.output
    assert not out.exists()
