"""Every kind of bad input gets one clear message, exit code 2, no traceback, and leaves
every file the user already had exactly as it was."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import invoke, only_run_dir, tiny_recipe, write_jpegs, write_recipe


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A user's folder: images, a working recipe, and a finished run under runs/."""
    write_jpegs(tmp_path / "images", 8, (24, 24))
    write_recipe(tmp_path / "recipe.yaml", tiny_recipe(tmp_path / "images"))
    result = invoke("run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    return tmp_path


def edit_recipe(ws: Path, change: Callable[[dict], None]) -> str:
    recipe = yaml.safe_load((ws / "recipe.yaml").read_text())
    change(recipe)
    return str(write_recipe(ws / "bad.yaml", recipe))


def plugin(ws: Path, source: str) -> str:
    (ws / "bad_plugin.py").write_text(textwrap.dedent(source))
    return str(ws / "bad_plugin.py")


def truncated_image(ws: Path) -> str:
    good = (ws / "images" / "000001.jpg").read_bytes()
    (ws / "images" / "000009.jpg").write_bytes(good[: len(good) // 3])
    return str(ws / "recipe.yaml")


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "malformed yaml": (
        lambda ws: ["run", str(_write(ws / "bad.yaml", "seed: 1\ndata: {name: x\n"))],
        "bad.yaml:3:1: this is not valid YAML",
    ),
    "unknown component": (
        lambda ws: ["run", edit_recipe(ws, lambda r: r["loss"].update(name="bec"))],
        """loss.name: unknown loss 'bec'. Did you mean "bce"?""",
    ),
    "wrong type": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "--set", "generator.params.ngf=wide"],
        "generator.params.ngf: Input should be a valid integer",
    ),
    "lr <= 0": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "--set", "optimizers.discriminator.lr=0"],
        "optimizers.discriminator.lr: Input should be greater than 0",
    ),
    "negative epochs": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "--set", "train.epochs=-2"],
        "train.epochs: Input should be greater than 0",
    ),
    "batch size 0": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "--set", "train.batch_size=0"],
        "train.batch_size: Input should be greater than 0",
    ),
    "missing data folder": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "--set", f"data.params.root={ws}/nope"],
        "data.params.root: folder",
    ),
    "empty data folder": (
        lambda ws: [
            "run",
            str(ws / "recipe.yaml"),
            "--set",
            f"data.params.root={_mkdir(ws / 'e')}",
        ],
        "holds no images",
    ),
    "truncated image": (
        lambda ws: ["run", truncated_image(ws)],
        "000009.jpg: cannot decode this image",
    ),
    "image size the architecture cannot build": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "--set", "data.params.image_size=24"],
        "24x24 cannot be built",
    ),
    "plugin fails to import": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "-p", plugin(ws, "import nonexistent_mod\n")],
        "failed to import: ModuleNotFoundError",
    ),
    "duplicate component name": (
        lambda ws: [
            "run",
            str(ws / "recipe.yaml"),
            "-p",
            plugin(
                ws,
                """
                import ganlab

                @ganlab.hookimpl
                def ganlab_register_losses(register):
                    register("bce", lambda params: None)
            """,
            ),
        ],
        "Two plugins register the loss 'bce'",
    ),
    "unknown hook": (
        lambda ws: [
            "run",
            str(ws / "recipe.yaml"),
            "-p",
            plugin(
                ws,
                """
                import ganlab

                @ganlab.hookimpl
                def ganlab_run_started(run):
                    pass
            """,
            ),
        ],
        """'ganlab_run_started', which is not a ganlab hook. Did you mean "ganlab_run_start"?""",
    ),
    "--set on a key that does not exist": (
        lambda ws: ["run", str(ws / "recipe.yaml"), "--set", "train.learning_rate=1"],
        "train.learning_rate: unknown key",
    ),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_message(workspace: Path, case: str) -> None:
    make_args, message = CASES[case]
    args = make_args(workspace)
    before = snapshot(workspace)
    result = invoke(*args, "--out", str(workspace / "runs"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("ganlab: error: ") == 1
    assert "Traceback" not in result.output
    after = snapshot(workspace)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing changed


@pytest.mark.parametrize("case", ["malformed yaml", "truncated image", "unknown hook"])
def test_the_console_script_prints_no_traceback(workspace: Path, case: str) -> None:
    make_args, message = CASES[case]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganlab.commands.cli",
            *make_args(workspace),
            "--out",
            str(workspace / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_an_existing_run_folder_is_never_reused(workspace: Path) -> None:
    recipe = yaml.safe_load((workspace / "recipe.yaml").read_text())
    parent = workspace / "runs" / "recipe"
    # Occupy the folder names of this second and the next few, as a run started now would.
    now = time.time()
    for ahead in range(4):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now + ahead))
        folder = parent / f"{stamp}-s{recipe['seed']}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "notes.txt").write_text("mine")
    before = snapshot(workspace)
    result = invoke("run", str(workspace / "recipe.yaml"), "--out", str(workspace / "runs"))
    assert result.exit_code == 0, result.output
    assert snapshot(workspace).items() >= before.items()
    folders = [line for line in result.output.splitlines() if line.startswith("Run folder: ")]
    assert len(folders) == 1  # printed once, when the run starts
    new = folders[0].removeprefix("Run folder: ")
    assert new.endswith("-2") and (Path(new) / "run.json").is_file()


def test_full_disk_while_writing_a_checkpoint_keeps_the_old_one(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("needs root to mount a small tmpfs as a disk that fills up")
    try:
        write_jpegs(tmp_path / "images", 8, (24, 24))
        recipe = tiny_recipe(tmp_path / "images")
        recipe["train"] = {"steps": 4, "batch_size": 4, "checkpoint_every": 2}
        path = write_recipe(tmp_path / "r.yaml", recipe)
        assert invoke("run", str(path), "--out", str(disk)).exit_code == 0
        run_dir = only_run_dir(disk)
        checkpoint = run_dir / "checkpoints" / "step_000004.pt"
        # Fill the disk until less than half a checkpoint is left.
        room = shutil.disk_usage(disk).free - checkpoint.stat().st_size // 2
        (disk / "filler").write_bytes(b"\0" * room)
        kept = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()}
        result = invoke("run", str(path), "--resume", str(run_dir), "--set", "train.steps=8")
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "No space left on device" in result.output and "--resume" in result.output
        after = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()}
        assert after == kept  # the old checkpoints intact, no half-written file left
    finally:
        subprocess.run(["umount", str(disk)], check=False)
