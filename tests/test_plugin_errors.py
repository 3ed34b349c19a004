"""A plugin whose code fails gets one message (exit 1) that names the component, its kind, the
plugin and the plugin's own file and line; the run folder, if any, is marked failed and keeps
its last checkpoint; the user's own files are untouched. --debug shows the traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import invoke, only_run_dir, tiny_recipe, write_jpegs, write_recipe
from tests.test_bad_input import snapshot

#: A plugin file with one broken component of each kind; each test picks one by name.
BROKEN = """
import errno

import torch
from torch import nn

import ganlab


class TooSmall(nn.Module):
    '''Makes 8x8 images whatever the data set's size.'''

    def __init__(self):
        super().__init__()
        self.latent_shape = (4, 1, 1)
        self.net = nn.Sequential(nn.ConvTranspose2d(4, 3, 8), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class PerImageLoss(ganlab.GanLoss):
    def discriminator_loss(self, real_scores, fake_scores):
        return (real_scores - fake_scores) ** 2  # forgot the .mean()

    def generator_loss(self, fake_scores):
        return -fake_scores.mean()


class CrashAtTwo:
    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if stats.step == 2:
            raise RuntimeError("the callback broke at step two")


class FullDiskAtTwo:
    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if stats.step == 2:  # what a write to a full disk raises
            raise OSError(errno.ENOSPC, "No space left on device", str(run.dir / "big.bin"))


class Flaky:
    '''A data set whose fifth image cannot be read.'''

    image_shape = (3, 16, 16)

    def __len__(self):
        return 16

    def __getitem__(self, index):
        if index == 5:
            raise ValueError(f"image {index} is unreadable")
        return torch.zeros(self.image_shape)


def broken_build(params, image_shape):
    raise ValueError("this generator cannot be built")


def nan_metric(run):
    return {"nanscore": float("nan")}


@ganlab.hookimpl
def ganlab_register_generators(register):
    register("broken", broken_build)
    register("too_small", lambda params, image_shape: TooSmall())


@ganlab.hookimpl
def ganlab_register_losses(register):
    register("per_image", lambda params: PerImageLoss())
    register("nothing", lambda params: None)


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("crash_at_two", lambda params: CrashAtTwo())
    register("full_disk_at_two", lambda params: FullDiskAtTwo())
    register("no_hooks", lambda params: object())


@ganlab.hookimpl
def ganlab_register_metrics(register):
    register("divide", lambda params: lambda run: {"x": 1 / 0})
    register("words", lambda params: lambda run: "fine")
    register("nanscore", lambda params: nan_metric)


@ganlab.hookimpl
def ganlab_register_datasets(register):
    register("flaky", lambda params: Flaky())
"""


def line_of(text: str, source: str) -> int:
    """The line number of ``text`` in ``source``."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A user's folder: images, a working recipe that loads the broken plugin."""
    write_jpegs(tmp_path / "images", 16, (24, 24))
    (tmp_path / "broken.py").write_text(BROKEN)
    recipe = tiny_recipe(tmp_path / "images", plugins=["broken.py"])
    recipe["train"] = {"steps": 4, "batch_size": 4, "checkpoint_every": 1, "log_every": 1}
    write_recipe(tmp_path / "recipe.yaml", recipe)
    return tmp_path


def run_with(ws: Path, *sets: str) -> tuple[int, str]:
    args = ["run", str(ws / "recipe.yaml"), "--out", str(ws / "runs")]
    for change in sets:
        args += ["--set", change]
    result = invoke(*args)
    return result.exit_code, result.output


PLUGIN = "plugin {ws}/broken.py"

#: name -> (--set changes, the message's start, the line of broken.py it names)
CASES: dict[str, tuple[list[str], str, str]] = {
    "a build raises": (
        ["generator={name: broken}"],
        "generator 'broken' (" + PLUGIN + ") failed while building it: ValueError: this "
        "generator cannot be built at {ws}/broken.py:{line}",
        'raise ValueError("this generator cannot be built")',
    ),
    "a build returns None": (
        ["loss={name: nothing}"],
        "loss 'nothing' (" + PLUGIN + ") returned NoneType from its build function, not a "
        "ganlab.GanLoss ({ws}/broken.py:{line})",
        'register("nothing"',
    ),
    "a generator makes images of the wrong size": (
        ["generator={name: too_small}"],
        "generator 'too_small' (" + PLUGIN + ") makes images of shape (3, 8, 8), but the "
        "data set's images are (3, 16, 16) (channels, height, width) ({ws}/broken.py:{line})",
        "def forward(self, z):",
    ),
    "a loss returns one value per image": (
        ["loss={name: per_image}"],
        "loss 'per_image' (" + PLUGIN + ") returned a tensor of shape (4,) from "
        "discriminator_loss; a loss must be one number",
        "def discriminator_loss",
    ),
    "a callback implements no hook": (
        ["callbacks=[{name: no_hooks}]"],
        "callback 'no_hooks' (callbacks.0, " + PLUGIN + ") returned object from its build "
        "function, which implements no ganlab hook",
        'register("no_hooks"',
    ),
    "a metric raises": (
        ["metrics=[{name: divide}]"],
        "metric 'divide' (metrics.0, " + PLUGIN + ") failed at step 4: ZeroDivisionError: "
        "division by zero at {ws}/broken.py:{line}",
        'register("divide"',
    ),
    "a metric returns no numbers": (
        ["metrics=[{name: words}]"],
        "metric 'words' (metrics.0, " + PLUGIN + ") returned 'fine' instead of a mapping of "
        "result names to numbers",
        'register("words"',
    ),
    "a callback raises at step 2": (
        ["callbacks=[{name: crash_at_two}]"],
        "callback 'crash_at_two' (callbacks.0, " + PLUGIN + ") failed in ganlab_step_end at "
        "step 2: RuntimeError: the callback broke at step two at {ws}/broken.py:{line}",
        'raise RuntimeError("the callback broke at step two")',
    ),
    "a data set fails in a loader worker": (
        ["data={name: flaky}", "train.workers=2"],
        "data set 'flaky' (" + PLUGIN + ") failed at step ",
        'raise ValueError(f"image {index} is unreadable")',
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_plugin_bug_is_one_message_that_names_the_plugin_line(ws: Path, case: str) -> None:
    sets, message, code = CASES[case]
    line = line_of(code, BROKEN)
    before = snapshot(ws)
    exit_code, output = run_with(ws, *sets)
    assert exit_code == 1, output
    assert output.count("ganlab: error: ") == 1 and "Traceback" not in output
    assert message.format(ws=ws, line=line) in output
    assert f"{ws}/broken.py:{line}" in output
    after = snapshot(ws)
    assert {k: v for k, v in after.items() if k in before} == before  # the user's files


def test_a_run_stopped_by_a_plugin_is_marked_failed_and_keeps_its_checkpoint(ws: Path) -> None:
    exit_code, output = run_with(ws, "callbacks=[{name: crash_at_two}]")
    assert exit_code == 1
    run_dir = only_run_dir(ws / "runs")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and "the callback broke" in info["error"]
    # Step 2's hook failed before its checkpoint: step 1's is kept, and the message says so.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_000001.pt"]
    assert f"{run_dir} is marked failed; its newest checkpoint is step_000001.pt" in output


def test_debug_shows_the_plugin_traceback(ws: Path) -> None:
    args = ["run", str(ws / "recipe.yaml"), "--debug", "--out", str(ws / "runs")]
    proc = subprocess.run(
        [sys.executable, "-m", "ganlab", *args, "--set", "callbacks=[{name: crash_at_two}]"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    line = line_of('raise RuntimeError("the callback broke at step two")', BROKEN)
    assert f'File "{ws}/broken.py", line {line}, in ganlab_step_end' in proc.stderr


def test_a_full_disk_during_the_run_says_how_to_resume(ws: Path) -> None:
    exit_code, output = run_with(ws, "callbacks=[{name: full_disk_at_two}]")
    run_dir = only_run_dir(ws / "runs")
    assert exit_code == 2, output
    assert f"ganlab: error: {run_dir}/big.bin: No space left on device" in output
    assert "Free disk space, then continue with: ganlab run --resume" in output
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


def test_a_failing_registration_hook_names_the_plugin_line(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        import ganlab

        @ganlab.hookimpl
        def ganlab_register_losses(register):
            {}["missing"]
        """
    )
    (tmp_path / "reg.py").write_text(source)
    result = invoke("plugins", "-p", str(tmp_path / "reg.py"))
    assert result.exit_code == 1
    expected = (
        f"plugin '{tmp_path}/reg.py' failed in ganlab_register_losses: KeyError: 'missing' "
        f"at {tmp_path}/reg.py:{line_of('missing', source)}"
    )
    assert expected in result.output


def test_a_loader_worker_error_reaches_the_user_as_ganlab_said_it(tmp_path: Path) -> None:
    """`ganlab data prepare` with 2 workers on a folder of garbage: the data set's own
    message, not "Caught GanlabError in DataLoader worker process 0" and a worker traceback."""
    folder = tmp_path / "garbage"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.jpg").write_bytes(b"not a jpeg at all " * (i + 1))
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(folder))
    before = snapshot(tmp_path)
    prepare = ["data", "prepare", str(recipe), "--workers", "2"]
    run = ["run", str(recipe), "--set", "train.workers=2", "--out", str(tmp_path / "o")]
    for args in (prepare, run):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert re.search(r"garbage/\d\.jpg: cannot decode this image", result.output)
        assert "Caught" not in result.output and "DataLoader worker" not in result.output
        assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before


def test_eval_json_is_strict_json(ws: Path) -> None:
    exit_code, output = run_with(ws, "train.steps=2")
    assert exit_code == 0, output
    run_dir = only_run_dir(ws / "runs")
    result = invoke("eval", str(run_dir), "-m", "nanscore", "--json")
    assert result.exit_code == 0, result.output

    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    report = json.loads(result.output, parse_constant=refuse)
    assert report["nanscore"] is None and report["step"] == 2


USAGE: dict[str, tuple[list[str], str]] = {
    "unknown option": (["run", "--bogus"], "ganlab: error: No such option '--bogus'."),
    "unknown command": (["runn"], "ganlab: error: No such command 'runn'."),
    "missing argument": (["compare"], "ganlab: error: Missing argument 'RUN_DIR...'."),
    "bad option value": (["sample", "x", "-n", "0"], "ganlab: error: Invalid value for '-n'"),
}


@pytest.mark.parametrize("case", USAGE)
def test_click_usage_errors_have_the_ganlab_form(case: str) -> None:
    args, message = USAGE[case]
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.output.startswith(message), result.output
    assert result.output.count("\n") == 1 and "--help" in result.output
