"""W&B is an optional extra (``pip install 'ganlab[wandb]'``). Without it a recipe that names
the wandb logger trains and says once how to install W&B, ``ganlab sweep`` says the same and
does nothing, and ``import ganlab`` never imports W&B.

Each test runs ganlab in a process of its own where ``import wandb`` fails as it does where
W&B is not installed (``sys.modules["wandb"] = None``: Python's own way to make an import
fail, which also hides the module from ``importlib.util.find_spec``). Where W&B really is
not installed (CI's second pass), the tests run the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import RECIPES, TINY_QUICKSTART

#: ``ganlab ARGS`` with W&B not importable.
WITHOUT_WANDB = """
import sys

sys.modules["wandb"] = None
from ganlab.commands.cli import main

sys.argv[0] = "ganlab"
main()
"""

INSTALL = "pip install 'ganlab[wandb]'"


def ganlab_without_wandb(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_WANDB, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def quickstart(out: Path, *sets: str) -> list[str]:
    args = [str(RECIPES / "quickstart.yaml"), "--out", str(out)]
    for override in (*TINY_QUICKSTART, *sets):
        args += ["--set", override]
    return args


def test_a_run_with_the_wandb_logger_trains_and_says_once_how_to_install_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs"
    # --name: the plugin's options of `ganlab run` are there without W&B, and do nothing.
    done = ganlab_without_wandb("run", *quickstart(out, "train.steps=2"), "--name", "mine")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "W&B" in line]
    assert notes == [
        f"W&B: not installed, so this run is not logged to W&B ({INSTALL} adds it)."
    ], done.stderr
    (run_json,) = out.glob("*/*/run.json")
    info = json.loads(run_json.read_text())
    assert info["status"] == "completed" and info["steps"] == 2
    assert "wandb" not in info and "wandb" not in info["versions"]
    assert not (run_json.parent / "wandb").exists()
    assert (run_json.parent / "samples" / "final.png").is_file()


def test_a_sweep_file_needs_wandb_and_says_how_to_install_it(tmp_path: Path) -> None:
    sweep_file = tmp_path / "sweep.yaml"
    done = ganlab_without_wandb(
        "sweep", *quickstart(tmp_path / "runs"), "--seeds", "0,1", "--file", str(sweep_file)
    )
    assert done.returncode == 2, done.stderr  # a user's mistake (docs/errors.md)
    assert done.stderr.splitlines() == [
        "ganlab: error: ganlab sweep writes a sweep for W&B's `wandb sweep` and `wandb "
        f"agent`, and W&B is not installed: {INSTALL}. Or run the grid here, without W&B, "
        "with --local."
    ]
    assert not sweep_file.exists() and not (tmp_path / "runs").exists()


def test_import_ganlab_imports_neither_wandb_nor_matplotlib() -> None:
    code = (
        "import sys, ganlab; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'wandb', 'matplotlib'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
