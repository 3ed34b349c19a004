"""The third-party plugin example in docs/examples/ installs with pip and works as a user
would use it: found through its entry point, listed, and its recipe runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "ganlab-upsample"
TINY = [
    "data.params.count=32",
    "data.params.image_size=16",
    "generator.params.width=8",
    "discriminator.params.ndf=8",
    "train.steps=3",
    "train.batch_size=16",
    "metrics=[]",
]


def ganlab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ganlab", *args], env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed by pip (no network, no build isolation) into its own folder,
    which the commands below get on their PYTHONPATH: the test environment stays as it was."""
    tmp = tmp_path_factory.mktemp("example")
    source = shutil.copytree(EXAMPLE, tmp / "source")  # pip writes build files next to it
    target = tmp / "site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    return target


def test_example_package_installs_and_its_recipe_runs(installed: Path, tmp_path: Path) -> None:
    recipe = str(EXAMPLE / "quickstart_upsample.yaml")
    overrides = [arg for override in TINY for arg in ("--set", override)]
    without = {**os.environ}
    result = ganlab("recipe", "validate", recipe, env=without)
    assert result.returncode == 2 and "unknown generator 'upsample'" in result.stderr

    env = {**os.environ, "PYTHONPATH": str(installed)}
    listing = ganlab("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "upsample (entry point of ganlab-upsample)" in listing.stdout
    result = ganlab("run", recipe, "--out", str(tmp_path), "--device", "cpu", *overrides, env=env)
    assert result.returncode == 0, result.stderr
    run_dir = next(tmp_path.glob("quickstart_upsample/*"))
    assert (run_dir / "samples" / "final.png").is_file()
    assert "name: upsample" in (run_dir / "recipe.yaml").read_text()
