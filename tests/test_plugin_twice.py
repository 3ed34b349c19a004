"""The same plugin code seen twice (a file plugin also installed as a package) is loaded
once; a real clash of two plugins says how to pick one (`-p no:NAME`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import invoke, only_run_dir, tiny_recipe, write_jpegs, write_recipe

PLUGIN = """
import ganlab
from ganlab_plugins.dcgan.models import GeneratorParams, build_generator


@ganlab.hookimpl
def ganlab_register_generators(register):
    register("twice_gen", build_generator, params=GeneratorParams)
"""


def install(site: Path, source: str) -> None:
    """A distribution `ganlab-twice` with the ganlab entry point `twice`, as pip leaves it."""
    (site / "ganlab_twice").mkdir(parents=True)
    (site / "ganlab_twice" / "__init__.py").write_text(source)
    info = site / "ganlab_twice-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ganlab-twice\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ganlab]\ntwice = ganlab_twice\n")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    write_jpegs(tmp_path / "images", 8, (24, 24))
    return tmp_path / "images"


def test_a_file_plugin_also_installed_is_loaded_once(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old run whose recipe names the file keeps working once the plugin is installed."""
    (tmp_path / "twice.py").write_text(PLUGIN)
    recipe = tiny_recipe(
        images, plugins=["twice.py"], generator={"name": "twice_gen", "params": {"nz": 16}}
    )
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    result = invoke("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")

    install(tmp_path / "site", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    listing = invoke("plugins", "-p", str(tmp_path / "twice.py"))
    assert listing.exit_code == 0, listing.output
    assert listing.output.count("twice_gen") == 1
    out = tmp_path / "samples.png"
    result = invoke("sample", str(run_dir), "--out", str(out), "-n", "4")
    assert result.exit_code == 0, result.output


def test_a_real_clash_says_how_to_pick_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two different plugins registering one name: the message says `-p no:NAME`, and
    that leaves either one out."""
    (tmp_path / "twice_file.py").write_text(PLUGIN + "\n# another version\n")
    install(tmp_path / "site", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    result = invoke("plugins", "-p", str(tmp_path / "twice_file.py"))
    assert result.exit_code == 2, result.output
    assert "Two plugins register the generator 'twice_gen'" in result.output
    assert "-p no:NAME" in result.output
    for dropped in ("no:twice", "no:ganlab-twice", "no:twice_file.py"):
        result = invoke("plugins", "-p", str(tmp_path / "twice_file.py"), "-p", dropped)
        assert result.exit_code == 0, result.output
        assert result.output.count("twice_gen") == 1
