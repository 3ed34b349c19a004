"""The W&B logger, offline and for real: tiny runs through the CLI, then the run's own
``run-<id>.wandb`` file read back record by record."""

from __future__ import annotations

import json
import os
import shlex
import struct
import subprocess
import sys
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import wandb
from wandb.proto import wandb_internal_pb2

from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, only_run_dir

PLUGIN = "ganlab_plugins.wandb_logger"


#: A metric that reads step / 10 (so its minimum and its last value differ), and a
#: callback that fails at a given step.
HELPERS = """
import ganlab


class FailParams(ganlab.Params):
    step: int = 2


class Fail:
    def __init__(self, step):
        self.step = step

    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if stats.step == self.step:
            raise RuntimeError(f"planned failure at step {stats.step}")


@ganlab.hookimpl
def ganlab_register_metrics(register):
    register("tenth_step", lambda params: lambda run: {"tenth_step": run.step / 10})


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("fail_at", lambda params: Fail(params.step), params=FailParams)
"""


@pytest.fixture(autouse=True)
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A clean W&B environment per test: no mode, no key, W&B's own folders in tmp_path."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_DIR", "RANK"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))  # no credentials
    for name, folder in (
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_DATA_DIR", "data"),  # artifact staging
    ):
        monkeypatch.setenv(name, str(home / folder))
    wandb.teardown()  # W&B caches its settings (from the environment) per process
    yield
    wandb.teardown()


def invoke_run(*args: str):
    """``ganlab run ARGS``, then wait until W&B has written everything.

    ``wandb.finish()`` returns once W&B's service has the run's last record, a moment
    before the service has written it to ``run-<id>.wandb``; shutting the service down
    (as a process does when it exits) waits for the file.
    """
    result = invoke("run", *args)
    wandb.teardown()
    return result


def run_quickstart(out: Path, *sets: str, plugins: tuple[str, ...] = ()):
    args = [str(RECIPES / "quickstart.yaml"), "--out", str(out), "-p", PLUGIN]
    for plugin in plugins:
        args += ["-p", plugin]
    for override in (*TINY_QUICKSTART, *sets):
        args += ["--set", override]
    return invoke_run(*args)


# --- reading a .wandb file ------------------------------------------------------------------
# wandb 0.31 writes the file from its Go core and has no Python reader any more (the old
# wandb.sdk.internal.datastore is gone). The format is LevelDB's log format with W&B's header:
# ":W&B", magic 0xBEE1, version 0; then 32 KiB blocks of chunks, each with a 7-byte header
# (CRC-32 of type + data, length, type: 1 full, 2 first, 3 middle, 4 last) and a serialized
# wandb_internal_pb2.Record.

BLOCK = 32 * 1024
HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[: len(HEADER)] == HEADER, f"{path} is not a W&B transaction log"
    records, pending, pos = [], b"", len(HEADER)
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a chunk header: padding
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad CRC at byte {pos}"
        pos += 7 + length
        if kind in (1, 2):
            pending = b""
        pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def by_type(records: list[wandb_internal_pb2.Record]) -> dict[str, list[Any]]:
    """Records by kind ("run", "history", ...), each as its payload message."""
    found = defaultdict(list)
    for record in records:
        kind = record.WhichOneof("record_type")
        found[kind].append(getattr(record, kind))
    return found


def items(message: Any, field: str) -> dict[str, Any]:
    """A history row or summary update as a nested dict (keys such as "media/samples")."""
    row: dict[str, Any] = {}
    for item in getattr(message, field):
        keys = list(item.nested_key) or [item.key]
        place = row
        for key in keys[:-1]:
            place = place.setdefault(key, {})
        place[keys[-1]] = json.loads(item.value_json)
    return row


def wandb_file(run_dir: Path) -> Path:
    (found,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    return found


# --- tests ----------------------------------------------------------------------------------


def test_offline_run_holds_recipe_history_media_and_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # the run folder wins
    helpers = tmp_path / "helpers.py"
    helpers.write_text(HELPERS, encoding="utf-8")
    result = run_quickstart(
        tmp_path / "runs",
        "train.eval_every=2",
        "metrics=[{name: tenth_step}]",
        "loggers=[{name: wandb, params: {mode: offline, tags: [smoke]}}]",
        plugins=(str(helpers),),
    )
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")

    # run.json says where the offline run is and how to upload it; so does the console.
    run_json = json.loads((run_dir / "run.json").read_text())
    info = run_json["wandb"]
    assert info["mode"] == "offline"
    offline = Path(info["path"])
    assert offline.is_dir() and offline.parent == run_dir / "wandb"
    assert offline.name.startswith("offline-run-") and offline.name.endswith(info["id"])
    assert shlex.split(info["sync"]) == ["wandb", "sync", str(offline)]
    assert info["sync"] in result.output
    assert wandb_file(run_dir) == offline / f"run-{info['id']}.wandb"

    records = by_type(read_records(wandb_file(run_dir)))

    (run,) = records["run"]
    assert run.run_id == info["id"] and run.project == "ganlab"
    assert run.run_group == "quickstart" and run.job_type == "train"
    assert run.display_name == run_dir.name
    assert "seed-0" in run.tags and "smoke" in run.tags
    if run_json["git"]:  # the short commit hash, when the recipe is in a git checkout
        assert run_json["git"]["commit"][:7] in run.tags
    assert not (tmp_path / "elsewhere").exists()
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["seed"] == 0 and config["name"] == "quickstart"
    assert config["generator"]["params"]["ngf"] == 8
    assert config["train"]["steps"] == 4

    # Step statistics: all four rows of the one burst (log_every is 50), at their step.
    rows = [items(h, "item") for h in records["history"]]
    train = {r["train/step"]: r for r in rows if "train/loss_d" in r}
    assert sorted(train) == [1, 2, 3, 4]
    for row in train.values():
        assert {"train/loss_g", "train/d_real", "train/d_fake", "train/d_fake_after"} <= set(row)
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        logged = json.loads(line)
        if "loss_d" in logged:  # the same numbers as metrics.jsonl
            assert train[logged["step"]]["train/loss_d"] == logged["loss_d"]
    metrics = {r["train/step"]: r["eval/tenth_step"] for r in rows if "eval/tenth_step" in r}
    assert metrics == {2: 0.2, 4: 0.4}

    # The sample grids (PNG) and the animation (GIF, no moviepy needed), by training step.
    images = {r["train/step"]: r["media/samples"] for r in rows if "media/samples" in r}
    assert sorted(images) == [1, 4]
    assert images[4]["_type"] == "image-file" and images[4]["format"] == "png"
    assert (offline / "files" / images[4]["path"]).is_file()
    (video,) = [r["media/progress"] for r in rows if "media/progress" in r]
    assert video["_type"] == "video-file" and video["path"].endswith(".gif")

    # The final checkpoint as a model artifact.
    (artifact,) = records["artifact"]
    assert artifact.type == "model" and artifact.name == "quickstart-model"
    assert {"final", "step-4"} <= set(artifact.aliases)
    assert [c.path for c in artifact.manifest.contents] == ["final.pt"]

    # Summary: last values, and the min, max and last of each metric.
    summary: dict[str, Any] = {}
    for update in records["summary"]:
        summary.update(items(update, "update"))
    assert summary["train/step"] == 4 and summary["steps"] == 4
    assert summary["train/loss_d"] == train[4]["train/loss_d"]
    assert summary["eval/tenth_step"] == {"min": 0.2, "max": 0.4, "last": 0.4}

    # Charts use the training step as their x-axis.
    globs = {m.glob_name: m for m in records["metric"] if m.glob_name}
    assert {g.step_metric for g in globs.values()} == {"train/step"}
    assert set(globs) == {"train/*", "eval/*", "media/*"}
    summary_of_eval = globs["eval/*"].summary
    assert summary_of_eval.min and summary_of_eval.max and summary_of_eval.last

    (exit_record,) = records["exit"]
    assert exit_record.exit_code == 0


def test_failed_run_finishes_wandb_with_exit_code_1(tmp_path: Path) -> None:
    helpers = tmp_path / "helpers.py"
    helpers.write_text(HELPERS, encoding="utf-8")
    result = run_quickstart(
        tmp_path / "runs",
        "callbacks=[{name: fail_at, params: {step: 2}}]",
        "loggers=[{name: wandb}]",  # no mode: offline by default
        plugins=(str(helpers),),
    )
    assert result.exit_code == 1  # a plugin's code failed (docs/errors.md)
    assert "planned failure at step 2" in result.output
    run_dir = only_run_dir(tmp_path / "runs")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and info["wandb"]["mode"] == "offline"
    assert Path(info["wandb"]["path"]).is_dir()
    records = by_type(read_records(wandb_file(run_dir)))
    (exit_record,) = records["exit"]
    assert exit_record.exit_code == 1
    rows = [items(h, "item") for h in records["history"]]
    assert [r["train/step"] for r in rows if "train/loss_d" in r] == [1, 2]  # flushed on error


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "disabled"),
        ({"WANDB_MODE": "disabled"}, "offline"),  # the environment wins over the recipe
        ({"RANK": "1"}, "offline"),  # not the first process of a distributed run
    ],
)
def test_logs_nothing(tmp_path: Path, monkeypatch, env: dict[str, str], mode: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run_quickstart(
        tmp_path / "runs", "train.steps=1", f"loggers=[{{name: wandb, params: {{mode: {mode}}}}}]"
    )
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")
    assert not (run_dir / "wandb").exists()
    assert "wandb" not in json.loads((run_dir / "run.json").read_text())
    assert "wandb sync" not in result.output


def test_online_without_credentials_fails_before_the_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")  # as `ganlab run --wandb online` does
    result = run_quickstart(tmp_path / "runs", "loggers=[{name: wandb}]")
    assert result.exit_code == 2, result.output
    assert "wandb login" in result.output and "offline" in result.output
    assert not (tmp_path / "runs").exists()  # nothing was started


#: ``ganlab ...`` in a process that reports every name lookup and connection it makes
#: (but those to this machine): Python's audit hooks see them all, also at exit.
WATCH_NETWORK = """
import sys

LOCAL = (None, "localhost", "127.0.0.1", "::1", b"localhost")


def watch(event, args):
    if event == "socket.getaddrinfo" and args[0] not in LOCAL:
        print("NETWORK: look up", args[0], file=sys.stderr, flush=True)
    elif event == "socket.connect" and isinstance(args[1], tuple) and args[1][0] not in LOCAL:
        print("NETWORK: connect", args[1], file=sys.stderr, flush=True)


sys.addaudithook(watch)
from ganlab.cli import main

sys.argv[0] = "ganlab"
main()
"""


def test_offline_run_makes_no_network_connection(tmp_path: Path) -> None:
    args = [str(RECIPES / "quickstart.yaml"), "--out", str(tmp_path / "runs"), "-p", PLUGIN]
    for override in (*TINY_QUICKSTART, "train.steps=1", "loggers=[{name: wandb}]"):
        args += ["--set", override]
    done = subprocess.run(
        [sys.executable, "-c", WATCH_NETWORK, "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "W&B offline run saved" in done.stdout
    assert "NETWORK" not in done.stderr, done.stderr


def test_credentials_are_found_in_netrc_without_the_network(tmp_path: Path) -> None:
    from ganlab_plugins.wandb_logger import has_credentials

    assert not has_credentials()
    host = urlparse(wandb.Settings().base_url).hostname
    netrc = Path(os.environ["NETRC"])
    netrc.write_text(f"machine {host}\n  login user\n  password {'k' * 40}\n")
    netrc.chmod(0o600)
    wandb.teardown()
    assert has_credentials()


def test_unknown_wandb_mode_in_environment_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offfline")
    result = run_quickstart(tmp_path / "runs", "loggers=[{name: wandb}]")
    assert result.exit_code == 2, result.output
    assert "WANDB_MODE='offfline'" in result.output


def test_resumed_run_continues_its_wandb_run(tmp_path: Path) -> None:
    result = run_quickstart(tmp_path / "runs", "train.steps=2", "loggers=[{name: wandb}]")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")
    first = json.loads((run_dir / "run.json").read_text())["wandb"]

    result = invoke_run("--resume", str(run_dir), "--set", "train.steps=4")
    assert result.exit_code == 0, result.output
    info = json.loads((run_dir / "run.json").read_text())["wandb"]
    assert info["id"] == first["id"]
    assert info["paths"] == [first["path"], info["path"]] and info["path"] != first["path"]
    assert shlex.split(info["sync"]) == ["wandb", "sync", *info["paths"]]
    steps = []
    for path in info["paths"]:
        (found,) = Path(path).glob("run-*.wandb")
        rows = [items(h, "item") for h in by_type(read_records(found))["history"]]
        steps.append([r["train/step"] for r in rows if "train/loss_d" in r])
    assert steps == [[1, 2], [3, 4]]
