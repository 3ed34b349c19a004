"""The W&B logger, offline and for real: tiny runs through the CLI, then the run's own
``run-<id>.wandb`` files read back record by record."""

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

wandb = pytest.importorskip("wandb", reason="W&B is an optional extra: pip install 'ganlab[wandb]'")
from wandb.proto import wandb_internal_pb2  # noqa: E402 (after the skip)

from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, only_run_dir  # noqa: E402

PLUGIN = "ganlab_plugins.wandb.logger"


#: A metric that reads step / 10 (so its minimum and its last value differ), a callback
#: that logs a value of its own (namespace "diagnostics", higher is better) every 2 steps,
#: one that fails at a given step, and one that kills its own process (SIGKILL, no clean-up
#: at all) at a given step, once per run folder.
HELPERS = """
import os
import signal
import time

import ganlab


class StepParams(ganlab.Params):
    step: int = 2


class Fail:
    def __init__(self, step):
        self.step = step

    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if stats.step == self.step:
            raise RuntimeError(f"planned failure at step {stats.step}")


class Diagnostic:
    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if stats.step % 2 == 0:
            run.log({"gap": stats.step / 2}, namespace="diagnostics", better="higher")


class KillOnce:
    def __init__(self, step):
        self.step = step

    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        marker = run.dir / "killed-once"
        if stats.step == self.step and not marker.exists():
            marker.touch()
            time.sleep(3)  # W&B writes its records every 2 s (the logger's FLUSH_SECONDS)
            os.kill(os.getpid(), signal.SIGKILL)


@ganlab.hookimpl
def ganlab_register_metrics(register):
    register("tenth_step", lambda params: lambda run: {"tenth_step": run.step / 10})


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("diag", lambda params: Diagnostic())
    register("fail_at", lambda params: Fail(params.step), params=StepParams)
    register("kill_once", lambda params: KillOnce(params.step), params=StepParams)
"""


@pytest.fixture(autouse=True)
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A clean W&B environment per test: no mode, no key, W&B's own folders in tmp_path."""
    for name in (
        "WANDB_MODE",
        "WANDB_API_KEY",
        "WANDB_IDENTITY_TOKEN_FILE",
        "WANDB_DIR",
        "RANK",
        "WANDB_NAME",
        "WANDB_NOTES",
        "WANDB_TAGS",
        "WANDB_RUN_GROUP",
        "WANDB_PROJECT",
        "WANDB_ENTITY",
        "WANDB_JOB_TYPE",
    ):
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


def quickstart_args(out: Path, *sets: str, plugins: tuple[str, ...] = ()) -> list[str]:
    args = [str(RECIPES / "quickstart.yaml"), "--out", str(out), "-p", PLUGIN]
    for plugin in plugins:
        args += ["-p", plugin]
    for override in (*TINY_QUICKSTART, *sets):
        args += ["--set", override]
    return args


def run_quickstart(out: Path, *sets: str, plugins: tuple[str, ...] = (), options=()):
    return invoke_run(*quickstart_args(out, *sets, plugins=plugins), *options)


def write_helpers(tmp_path: Path) -> str:
    helpers = tmp_path / "helpers.py"
    helpers.write_text(HELPERS, encoding="utf-8")
    return str(helpers)


# --- reading a .wandb file ------------------------------------------------------------------
# wandb 0.31 writes the file from its Go core and has no Python reader any more (the old
# wandb.sdk.internal.datastore is gone). The format is LevelDB's log format with W&B's header:
# ":W&B", magic 0xBEE1, version 0; then 32 KiB blocks of chunks, each with a 7-byte header
# (CRC-32 of type + data, length, type: 1 full, 2 first, 3 middle, 4 last) and a serialized
# wandb_internal_pb2.Record. Only the test reads it: the logger never reads W&B's files.

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


def wandb_files(run_dir: Path) -> list[Path]:
    """The run folder's W&B transaction logs, one per piece (session), oldest first."""
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


def wandb_file(run_dir: Path) -> Path:
    (found,) = wandb_files(run_dir)
    return found


def rows_of(records: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [items(h, "item") for h in records["history"]]


def summary_of(records: dict[str, list[Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for update in records["summary"]:
        summary.update(items(update, "update"))
    return summary


def models_of(records: dict[str, list[Any]]) -> list[Any]:
    """The model artifacts (checkpoints) among a piece's artifacts."""
    return [a for a in records["artifact"] if a.type == "model"]


def config_of(run: Any) -> dict[str, Any]:
    return {u.key: json.loads(u.value_json) for u in run.config.update}


def assert_one_step_axis(rows: list[dict[str, Any]]) -> None:
    """Every history row of a piece holds its training step (the charts' x-axis), media
    rows included: one row per step, in step order."""
    assert rows, "no history"
    steps = [row["train/step"] for row in rows]
    assert steps == sorted(set(steps)), steps  # increasing, none twice
    counts = [row["_step"] for row in rows]  # W&B's own count of the rows
    assert counts == list(range(counts[0], counts[0] + len(rows))), counts


# --- tests ----------------------------------------------------------------------------------


def test_offline_run_holds_recipe_history_media_and_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # the run folder wins
    result = run_quickstart(
        tmp_path / "runs",
        "train.eval_every=2",
        "train.log_every=3",  # rows reach the loggers in blocks (1-2 before the evaluation)
        "metrics=[{name: tenth_step}]",
        "callbacks=[{name: console, params: {every: 100}}, {name: samples, params: {every: 2}},"
        " {name: figures, params: {every: 500}}, {name: best, params: {metric: tenth_step}},"
        " {name: diag}]",
        "loggers=[{name: wandb, params: {mode: offline, tags: [smoke]}}]",
        plugins=(write_helpers(tmp_path),),
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

    # The run: one group per configuration (recipe name and a hash), named after its folder.
    (run,) = records["run"]
    assert run.run_id == info["id"] and run.project == "ganlab"
    assert run.run_group == info["group"] and run.job_type == "train"
    prefix, digest = run.run_group.rsplit("-", 1)
    assert prefix == "quickstart" and len(digest) == 8 and int(digest, 16) >= 0
    assert run.display_name == run_dir.name
    assert "seed-0" in run.tags and "smoke" in run.tags
    assert not run.resume  # a first session starts its W&B run
    if run_json["git"]:  # the short commit hash, when the recipe is in a git checkout
        assert run_json["git"]["commit"][:7] in run.tags
    assert not (tmp_path / "elsewhere").exists()

    # The config: the recipe with its lists keyed by component name, and what made the run.
    config = config_of(run)
    assert config["seed"] == 0 and config["name"] == "quickstart"
    assert config["generator"]["params"]["ngf"] == 8 and config["loss"]["name"] == "bce"
    assert config["train"]["steps"] == 4
    assert config["callbacks"]["samples"]["every"] == 2  # callbacks.samples.every
    assert config["callbacks"]["best"] == {"metric": "tenth_step", "mode": "min"}
    assert config["metrics"] == {"tenth_step": {}}
    assert config["loggers"]["wandb"]["tags"] == ["smoke"]
    assert config["device"] == "cpu" == run_json["device"]  # the recipe says auto
    assert config["versions"]["torch"] == run_json["versions"]["torch"]
    assert config["versions"]["wandb"] == wandb.__version__
    assert config["git"] == run_json["git"]
    assert config["plugins"]["wandb_logger"]["kind"] == "built-in"
    assert config["plugins"]["helpers"]["kind"] == "file" and config["plugins"]["helpers"]["sha256"]

    # One step axis: every row, media included, at its training step, in order.
    rows = rows_of(records)
    assert_one_step_axis(rows)
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
    gaps = {r["train/step"]: r["diagnostics/gap"] for r in rows if "diagnostics/gap" in r}
    assert gaps == {2: 1.0, 4: 2.0}  # a plugin's value, under its own namespace

    # The sample grids (PNG) and the animation (GIF, no moviepy needed), by training step:
    # the grid of step 2 was announced before the rows of steps 1 and 2 reached W&B.
    images = {r["train/step"]: r["media/samples"] for r in rows if "media/samples" in r}
    assert sorted(images) == [1, 2, 4]
    assert images[4]["_type"] == "image-file" and images[4]["format"] == "png"
    assert (offline / "files" / images[4]["path"]).is_file()
    assert [r["train/step"] for r in rows if "media/real_images" in r] == [0]  # before training
    (video,) = [r["media/progress"] for r in rows if "media/progress" in r]
    assert video["_type"] == "video-file" and video["path"].endswith(".gif")

    # The checkpoints: versions of the run's own artifact model-<id>, by role and step.
    versions = {tuple(sorted(a.aliases)): a for a in models_of(records)}
    assert set(versions) == {("best", "latest", "step-2"), ("final", "latest", "step-4")}
    for artifact in versions.values():
        assert artifact.type == "model" and artifact.name == f"model-{info['id']}"
        (entry,) = artifact.manifest.contents
        assert entry.path == "model.pt"
        # kept in the run folder, not copied to W&B's staging folder (WANDB_DATA_DIR)
        assert Path(entry.local_path).parent == run_dir / "wandb" / "models"
    (final,) = versions["final", "latest", "step-4"].manifest.contents
    assert Path(final.local_path).samefile(run_dir / "checkpoints" / "final.pt")  # no copy
    best = json.loads(versions["best", "latest", "step-2"].metadata)
    assert (best["metric"], best["value"], best["step"]) == ("tenth_step", 0.2, 2)
    assert run_json["best"] == {"metric": "tenth_step", "value": 0.2, "step": 2}
    assert json.loads(versions["final", "latest", "step-4"].metadata)["metrics"] == {
        "tenth_step": 0.4
    }
    staging = Path(os.environ["WANDB_DATA_DIR"]) / "artifacts" / "staging"
    assert not [p for p in staging.rglob("*") if p.is_file()]

    # Summary: last values, and the min (lower is better) and last value of the metric.
    summary = summary_of(records)
    assert summary["train/step"] == 4 and summary["steps"] == 4
    assert summary["train/loss_d"] == train[4]["train/loss_d"]
    assert summary["eval/tenth_step"] == {"min": 0.2, "last": 0.4}
    assert summary["diagnostics/gap"] == {"max": 2.0, "last": 2.0}
    assert summary["train/d_real"] == train[4]["train/d_real"]  # no direction: the last value

    # Charts use the training step as their x-axis; a namespace each; the metric's direction.
    globs = {m.glob_name: m for m in records["metric"] if m.glob_name}
    assert set(globs) == {"train/*", "eval/*", "media/*", "diagnostics/*"}
    assert {g.step_metric for g in globs.values()} == {"train/step"}
    (metric,) = [m for m in records["metric"] if m.name == "eval/tenth_step"]
    assert metric.step_metric == "train/step"
    assert metric.summary.min and metric.summary.last and not metric.summary.max

    # W&B's System tab: system metrics. (Its Logs tab, the console, is checked in a process
    # of its own below: W&B captures the process's own stdout, which the CLI runner replaces.)
    assert records["stats"]

    (exit_record,) = records["exit"]
    assert exit_record.exit_code == 0


def test_failed_run_finishes_wandb_with_exit_code_1(tmp_path: Path) -> None:
    result = run_quickstart(
        tmp_path / "runs",
        "callbacks=[{name: fail_at, params: {step: 2}}]",
        "loggers=[{name: wandb}]",  # no mode: offline by default
        plugins=(write_helpers(tmp_path),),
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
    rows = rows_of(records)
    assert [r["train/step"] for r in rows if "train/loss_d" in r] == [1, 2]  # flushed on error
    assert_one_step_axis(rows)


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
from ganlab.commands.cli import main

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
    from ganlab_plugins.wandb.logger import has_credentials

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
    from ganlab_plugins.wandb.logger import ganlab_run_columns

    result = run_quickstart(tmp_path / "runs", "train.steps=2", "loggers=[{name: wandb}]")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")
    first = json.loads((run_dir / "run.json").read_text())["wandb"]

    result = invoke_run("--resume", str(run_dir), "--set", "train.steps=4")
    assert result.exit_code == 0, result.output
    run_json = json.loads((run_dir / "run.json").read_text())
    info = run_json["wandb"]
    assert info["id"] == first["id"] and info["group"] == first["group"]
    assert info["paths"] == [first["path"], info["path"]] and info["path"] != first["path"]
    assert shlex.split(info["sync"]) == ["wandb", "sync", *info["paths"]]
    assert info["sync"] in result.output and "2 pieces of one W&B run" in result.output

    # Two pieces of one W&B run: the second asks W&B to resume it, and continues its steps.
    pieces = [by_type(read_records(f)) for f in wandb_files(run_dir)]
    assert [Path(p) for p in info["paths"]] == [f.parent for f in wandb_files(run_dir)]
    runs = [piece["run"][0] for piece in pieces]
    assert {r.run_id for r in runs} == {info["id"]}
    assert [r.resume for r in runs] == [False, True]
    assert runs[0].run_group == runs[1].run_group and runs[0].display_name == runs[1].display_name
    rows = [rows_of(piece) for piece in pieces]
    assert [[r["train/step"] for r in rs if "train/loss_d" in r] for rs in rows] == [[1, 2], [3, 4]]
    for piece_rows in rows:
        assert_one_step_axis(piece_rows)
    assert not [r for r in rows[1] if "media/real_images" in r]  # logged once, by the first
    assert [[e.exit_code for e in piece["exit"]] for piece in pieces] == [[0], [0]]
    assert [json.loads(a.metadata)["step"] for p in pieces for a in models_of(p)] == [2, 4]

    # W&B's own command line takes the printed command, and would upload exactly the pieces.
    dry_run = [sys.executable, "-m", "wandb", *shlex.split(info["sync"])[1:], "--dry-run"]
    listed = subprocess.run(dry_run, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "Would sync 2 run(s)" in listed.stderr + listed.stdout

    # `ganlab runs`: the W&B id, and which pieces `wandb sync` uploaded. (It leaves
    # run-<id>.wandb.synced beside each, wandb 0.31 core/internal/runsync/runsyncer.go.)
    assert ganlab_run_columns(run_dir, run_json) == {"W&B id": info["id"], "W&B synced": "no"}
    logs = wandb_files(run_dir)
    logs[0].with_name(logs[0].name + ".synced").touch()
    assert ganlab_run_columns(run_dir, run_json)["W&B synced"] == "1/2"
    logs[1].with_name(logs[1].name + ".synced").touch()
    assert ganlab_run_columns(run_dir, run_json)["W&B synced"] == "yes"
    assert ganlab_run_columns(tmp_path, {}) is None  # no W&B run there


def test_killed_run_resumes_into_the_same_wandb_run(tmp_path: Path) -> None:
    """A session killed outright (SIGKILL: no hook, no run.json at its end, no W&B finish)
    and resumed from its checkpoint: one W&B run in two pieces, no step twice and none
    missing, and every key under one namespace with one direction in both pieces."""
    args = quickstart_args(
        tmp_path / "runs",
        "train.steps=10",
        "train.log_every=3",
        "train.checkpoint_every=4",
        "augment=[{name: ada, params: {interval: 1, kimg: 0.1}}]",  # ADA's p: aug/p
        "penalties=[{name: r1, params: {weight: 1.0}}]",  # train/r1
        "callbacks=[{name: console, params: {every: 100}}, {name: samples, params: {every: 5}},"
        " {name: diag}, {name: kill_once, params: {step: 7}}]",
        "loggers=[{name: wandb}]",
        plugins=(write_helpers(tmp_path),),
    )
    killed = subprocess.run(
        [sys.executable, "-m", "ganlab", "run", *args], capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -9, killed.stderr  # SIGKILL
    run_dir = only_run_dir(tmp_path / "runs")
    # The killed session never wrote its end into run.json, but each key as it appeared.
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["status"] == "running"
    assert run_json["keys"]["p"] == {"namespace": "aug", "better": None}
    assert run_json["keys"]["r1"] == {"namespace": "train", "better": None}
    assert run_json["keys"]["gap"] == {"namespace": "diagnostics", "better": "higher"}

    result = invoke_run("--resume", str(run_dir))  # from checkpoints/step_000004.pt
    assert result.exit_code == 0, result.output
    info = json.loads((run_dir / "run.json").read_text())["wandb"]
    logs = wandb_files(run_dir)
    assert [str(f.parent) for f in logs] == info["paths"]
    # The killed piece may end in a record cut short, where `wandb sync` stops a command:
    # the resumed piece gets a command of its own, and a warning says why.
    killed_piece, resumed_piece = info["paths"]
    assert info["killed"] == [killed_piece]
    assert info["sync"] == (
        f"wandb sync {shlex.quote(killed_piece)}; wandb sync {shlex.quote(resumed_piece)}"
    )
    assert f"W&B: warning: {killed_piece} is from a session killed" in result.output
    assert f"Upload it with: {info['sync']}" in result.output
    first, second = (by_type(read_records(f)) for f in logs)

    # One id; the second piece is marked as resuming it; only the second finished the run.
    assert {r.run_id for r in (*first["run"], *second["run"])} == {info["id"]}
    assert [r.resume for r in (*first["run"], *second["run"])] == [False, True]
    assert not first["exit"] and [e.exit_code for e in second["exit"]] == [0]
    # W&B's System and Logs tabs, from the session that ran in a process of its own.
    assert first["stats"]
    assert "Starting Training Loop" in "".join(o.line for o in first["output_raw"])

    # The killed piece holds the rows W&B wrote before the kill; the resumed piece goes on
    # from its checkpoint to the end. The steps between the checkpoint and the kill are
    # trained again: W&B may hold them twice, with the same values at the same step.
    assert_one_step_axis(rows_of(first))
    assert_one_step_axis(rows_of(second))
    before = {r["train/step"]: r for r in rows_of(first) if "train/loss_d" in r}
    after = {r["train/step"]: r for r in rows_of(second) if "train/loss_d" in r}
    assert len(before) >= 3 and sorted(before) == list(range(1, len(before) + 1))
    assert sorted(after) == list(range(5, 11))  # from the checkpoint (step 4) on
    for step in before.keys() & after.keys():
        assert before[step]["train/loss_d"] == after[step]["train/loss_d"], step
    assert [json.loads(a.metadata)["step"] for a in models_of(second)] == [10]

    # Each key under one namespace in both pieces (the resumed session knew what the killed
    # one logged), as a chart of its own in W&B, with its direction's summary.
    for piece in (first, second):
        keys = {k for row in rows_of(piece) for k in row if k not in ("_step", "_runtime")}
        assert {"aug/p", "train/r1", "diagnostics/gap"} <= keys, sorted(keys)
        assert not [k for k in keys if k.startswith("eval/")]  # the recipe has no metrics
    assert summary_of(second)["diagnostics/gap"] == {"max": 5.0, "last": 5.0}


def test_name_notes_tags_group_from_the_command_line_and_the_recipe(tmp_path: Path) -> None:
    recipe_params = (
        "{notes: from the recipe, group: recipe-group, tags: [recipe-tag],"
        " system_metrics: false, console: false}"
    )
    result = run_quickstart(
        tmp_path / "runs",
        "train.steps=1",
        f"loggers=[{{name: wandb, params: {recipe_params}}}]",
        options=("--name", "my run", "--group", "cli-group", "--tags", "a", "--tags", "b"),
    )
    assert result.exit_code == 0, result.output
    assert not any(os.environ.get(n) for n in ("WANDB_NAME", "WANDB_RUN_GROUP", "WANDB_TAGS"))
    run_dir = only_run_dir(tmp_path / "runs")
    records = by_type(read_records(wandb_file(run_dir)))
    (run,) = records["run"]
    assert run.display_name == "my run" and run.run_group == "cli-group"  # the command wins
    assert run.notes == "from the recipe" and run.job_type == "train"
    tags = list(run.tags)  # seed, git commit (in a checkout), the recipe's, the command's
    assert tags[0] == "seed-0" and tags[-3:] == ["recipe-tag", "a", "b"]
    info = json.loads((run_dir / "run.json").read_text())["wandb"]
    assert (info["name"], info["group"], info["notes"]) == ("my run", "cli-group", run.notes)
    assert not records["stats"] and not records["output_raw"]  # switched off by the recipe

    assert {"--name", "--notes", "--tags", "--group", "--wandb"} <= set(
        invoke("run", "--help").output.split()
    )
    refused = invoke("run", str(RECIPES / "quickstart.yaml"), "--tags", "a,b")
    assert refused.exit_code == 2 and "no comma" in refused.output


def test_a_group_holds_the_seeds_of_one_configuration(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    plain = ("train.steps=1", "loggers=[{name: wandb}]")
    for sets, options in (
        (plain, ()),
        ((*plain, "train.steps=2"), ("--seed", "1")),  # another seed, another length
        ((*plain, "train.ema=0.9"), ()),  # another configuration
    ):
        assert run_quickstart(out, *sets, options=options).exit_code == 0
    groups = {}
    for run_json in sorted(out.glob("*/*/run.json")):
        info = json.loads(run_json.read_text())
        (run,) = by_type(read_records(wandb_file(run_json.parent)))["run"]
        assert run.run_group == info["wandb"]["group"]
        groups[(info["seed"], config_of(run)["train"]["ema"])] = run.run_group
    assert groups[0, None] == groups[1, None] != groups[0, 0.9]
    assert all(group.startswith("quickstart-") for group in groups.values())
