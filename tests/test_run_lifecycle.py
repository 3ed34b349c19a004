"""A run's life with real processes and real signals: one writer per run folder (the lock),
SIGTERM and SIGINT before the first step, and runs killed at their end."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ganlab.files.runlock import RunLock
from tests.conftest import invoke, only_run_dir, write_recipe

#: A plugin with a data set and a generator that pause (write MARK, then sleep) in the phase
#: that SLEEP_IN names: "plugin" (while it is imported), "data" or "generator" (while it is
#: built); and a callback that SIGKILLs its own process at the run's end when KILL_AT_END
#: is set, as a machine lost right after the last checkpoint would, and sends it SIGTERM
#: at the step SIGTERM_AT_STEP names.
PLUGIN = """
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import ganlab


def pause(phase):
    if os.environ.get("SLEEP_IN") == phase:
        Path(os.environ["MARK"]).write_text(phase)
        time.sleep(60)


pause("plugin")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.latent_shape = (8, 1, 1)
        self.net = nn.Sequential(nn.ConvTranspose2d(8, 3, 16), nn.Tanh())

    def forward(self, z):
        return self.net(z)


def build_data(params):
    pause("data")
    images = torch.randint(0, 256, (32, 3, 16, 16), generator=torch.Generator().manual_seed(0))
    return ganlab.TensorImages(images.to(torch.uint8))


def build_generator(params, image_shape):
    pause("generator")
    return Tiny()


class KillAtEnd:
    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if os.environ.get("SIGTERM_AT_STEP") == str(run.step):
            os.kill(os.getpid(), signal.SIGTERM)

    @ganlab.hookimpl
    def ganlab_run_end(self, run):
        if os.environ.get("KILL_AT_END"):
            os.kill(os.getpid(), signal.SIGKILL)


@ganlab.hookimpl
def ganlab_register_datasets(register):
    register("paused_data", build_data)


@ganlab.hookimpl
def ganlab_register_generators(register):
    register("paused", build_generator)


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("kill_at_end", lambda params: KillAtEnd())
"""


def recipe(tmp_path: Path, steps: int) -> Path:
    """A tiny recipe on the plugin's data set and generator: a checkpoint every 2 steps;
    at the end, kill_at_end (registered last, so called first) runs before samples can
    write its final grid."""
    plugin = tmp_path / "paused.py"
    plugin.write_text(PLUGIN, encoding="utf-8")
    spec = {
        "name": "lifecycle",
        "seed": 0,
        "device": "cpu",
        "plugins": [str(plugin)],
        "data": {"name": "paused_data"},
        "generator": {"name": "paused"},
        "discriminator": {"name": "dcgan", "params": {"ndf": 8}},
        "loss": {"name": "bce"},
        "train": {"steps": steps, "batch_size": 8, "log_every": 1, "checkpoint_every": 2},
        "callbacks": [{"name": "samples", "params": {"every": 100}}, {"name": "kill_at_end"}],
    }
    return write_recipe(tmp_path / "lifecycle.yaml", spec)


def ganlab(*args: str, **env: str) -> subprocess.Popen:
    """``ganlab ARGS`` in a process of its own, with ``env`` added to the environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "ganlab.commands.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def wait_for(found: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    """Wait (up to a minute) until ``found()``, while ``proc`` lives."""
    deadline = time.monotonic() + 60
    while not found():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {what}: {proc.communicate()}")
        time.sleep(0.02)


def status_listed(out: Path) -> str:
    (line,) = json.loads(invoke("runs", str(out), "--json").output)
    return line["status"]


def test_a_run_folder_has_one_writer_at_a_time(tmp_path: Path) -> None:
    """A second trainer of a folder that a live process trains (a second --resume, --resume
    auto) exits 2 naming that process, and writes nothing; once the first is killed
    (SIGKILL: its lock is left to the OS), the run is listed as killed and resumes."""
    path, out = recipe(tmp_path, steps=100_000), tmp_path / "runs"
    first = ganlab("run", str(path), "--out", str(out))
    checkpoint = out / "lifecycle"
    wait_for(lambda: any(checkpoint.glob("*/checkpoints/step_*.pt")), first, "checkpoint")
    run_dir = only_run_dir(out)
    try:
        second = invoke("run", "--resume", str(run_dir))
        assert second.exit_code == 2, second.output
        assert f"process {first.pid} on host {platform.node()}" in second.output
        assert "one writer at a time" in second.output
        auto = invoke("run", str(path), "--out", str(out), "--resume", "auto")
        assert auto.exit_code == 2 and f"process {first.pid}" in auto.output, auto.output
        assert status_listed(out) == "running"
    finally:
        first.kill()  # SIGKILL: nothing of ganlab's runs; the OS lets go of the lock
        first.wait()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "running" and "resumed" not in info  # the second wrote nothing
    assert status_listed(out) == "killed"
    newest = max(int(p.stem.removeprefix("step_")) for p in run_dir.glob("checkpoints/step_*"))
    steps = f"train.steps={newest + 1}"
    resumed = invoke("run", str(path), "--out", str(out), "--resume", "auto", "--set", steps)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_killed_trainers_forked_workers_do_not_keep_its_lock(tmp_path: Path) -> None:
    """Data loader workers are forked children of the trainer and outlive it by a few
    seconds when it is killed: they do not keep its run folder locked."""
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from ganlab.files.runlock import RunLock\n"
        "RunLock.take(Path(sys.argv[1]))\n"
        "worker = os.fork()\n"
        "if worker == 0:\n"
        "    time.sleep(60)\n"  # a worker that outlives its parent
        "    os._exit(0)\n"
        "print(worker, flush=True)\n"
        "time.sleep(60)\n"
    )
    trainer = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert trainer.stdout is not None
    worker = int(trainer.stdout.readline())
    try:
        holder = RunLock.holder(tmp_path)
        assert holder is not None and holder.pid == trainer.pid
        trainer.kill()
        trainer.wait()
        assert RunLock.holder(tmp_path) is None  # the worker lives on, without the lock
        began = time.monotonic()
        RunLock.take(tmp_path).release()
        assert time.monotonic() - began < 1
    finally:
        trainer.kill()
        os.kill(worker, signal.SIGKILL)


@pytest.mark.parametrize(
    ("phase", "signum"),
    [("plugin", signal.SIGTERM), ("data", signal.SIGTERM), ("generator", signal.SIGINT)],
)
def test_a_signal_before_the_first_step_stops_at_once(
    tmp_path: Path, phase: str, signum: int
) -> None:
    """SIGTERM or SIGINT while the plugins load, the data set is built or the models are:
    one line, exit 143 or 130, no run folder left (nor a temporary file)."""
    path, out, mark = recipe(tmp_path, steps=2), tmp_path / "runs", tmp_path / "mark"
    proc = ganlab("run", str(path), "--out", str(out), SLEEP_IN=phase, MARK=str(mark))
    wait_for(mark.exists, proc, f"pause in {phase}")
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, stderr
    name = signal.Signals(signum).name
    assert stderr.splitlines() == [
        f"ganlab: error: {name}: stopped before the run"
        + ("" if phase == "plugin" else "'s first step; no run folder was kept")
        + ("" if phase != "plugin" else " started; nothing was written")
        + "."
    ]
    assert not out.exists() or not any(out.rglob("*"))


def test_a_signal_before_a_resumes_first_step_leaves_no_run_marked_running(
    tmp_path: Path,
) -> None:
    """A killed run (run.json still says running) resumed, and stopped by SIGTERM while its
    data set is built: exit 143, and its run.json says interrupted, not running."""
    path, out = recipe(tmp_path, steps=2), tmp_path / "runs"
    assert invoke("run", str(path), "--out", str(out), "--set", "callbacks=[]").exit_code == 0
    run_dir = only_run_dir(out)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "running"}))  # as killed
    mark = tmp_path / "mark"
    proc = ganlab(
        "run", "--resume", str(run_dir), "--set", "train.steps=4", SLEEP_IN="data", MARK=str(mark)
    )
    wait_for(mark.exists, proc, "pause while building the data")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert stderr.splitlines() == [
        f"ganlab: error: SIGTERM: stopped before the run's first step; {run_dir} is as it was; "
        f"continue with: ganlab run --resume {run_dir}."
    ]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert status_listed(out) == "interrupted"


def test_a_run_killed_after_its_last_checkpoint_is_finished_by_resume(tmp_path: Path) -> None:
    """SIGKILL at the run's end, after final.pt: listed as killed, and --resume does the
    end-of-run work (the samples callback's final grid, run.json completed) instead of
    answering "already trained"."""
    path, out = recipe(tmp_path, steps=4), tmp_path / "runs"
    proc = ganlab("run", str(path), "--out", str(out), KILL_AT_END="1")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, stderr
    run_dir = only_run_dir(out)
    assert (run_dir / "checkpoints" / "final.pt").is_file()
    assert not (run_dir / "samples" / "final.png").exists()  # killed before samples' run_end
    assert status_listed(out) == "killed"
    finished = invoke("run", "--resume", str(run_dir))
    assert finished.exit_code == 0, finished.output
    assert "finishing its end-of-run work" in finished.output
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["steps"] == 4
    assert (run_dir / "samples" / "final.png").is_file()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]  # nothing trained or logged again
    again = invoke("run", "--resume", str(run_dir))
    assert again.exit_code == 2 and "already trained 4 steps" in again.output


def test_a_run_stopped_at_its_last_step_is_finished_by_resume(tmp_path: Path) -> None:
    """SIGTERM during the last step: the run writes its last checkpoint, exits 143 and says
    how to continue; --resume then finishes it (final.pt, the final grid, completed)."""
    path, out = recipe(tmp_path, steps=3), tmp_path / "runs"
    proc = ganlab("run", str(path), "--out", str(out), SIGTERM_AT_STEP="3")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    run_dir = only_run_dir(out)
    assert f"ganlab run --resume {run_dir}" in stderr
    assert (run_dir / "checkpoints" / "step_000003.pt").is_file()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    finished = invoke("run", "--resume", str(run_dir))
    assert finished.exit_code == 0, finished.output
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert (run_dir / "checkpoints" / "final.pt").is_file()
    assert (run_dir / "samples" / "final.png").is_file()
