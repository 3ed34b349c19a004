"""W&B sweeps drive ganlab: `ganlab run RECIPE KEY=VALUE` and `--KEY=VALUE` as a sweep agent
passes them, the sweep file `ganlab sweep` writes (run here exactly as `wandb agent` runs it),
and `ganlab sweep --local`, whose runs `ganlab compare --over-seeds` folds by configuration.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, tiny_recipe, write_recipe

QUICKSTART = str(RECIPES / "quickstart.yaml")
#: TINY_QUICKSTART as --set options (fixed for every point of a sweep).
TINY_SETS = [a for override in TINY_QUICKSTART for a in ("--set", override)]

# wandb's own code for what the agent does with a sweep (wandb 0.31):
# - wandb/sdk/launch/sweeps/utils.py: load_sweep_config (what `wandb sweep FILE` reads),
#   create_sweep_command (the ${envvar:...} macros), create_sweep_command_args (each
#   parameter as `--KEY=VALUE` for ${args}, `KEY=VALUE` for ${args_no_hyphens}, ...);
# - wandb/apis/public/sweeps.py: _validate_config_and_fill_distribution, and the YAML that
#   `wandb sweep` uploads (yaml.dump of the config after a JSON round trip);
# - wandb/wandb_agent.py: Agent.run reads `command` back from that YAML, and
#   Agent._command_run replaces ${env}, ${interpreter}, ${program} and ${args...} by their
#   lists and starts the result with subprocess.Popen (no shell).
# Imported by the tests that use them: the rest (`ganlab run KEY=VALUE`, `--local`) run
# without W&B too.
WITHOUT_WANDB = "W&B is an optional extra: pip install 'ganlab[wandb]'"


def wandb_module(name: str) -> Any:
    """One of wandb's modules; the test skips, saying why, where W&B is not installed."""
    return pytest.importorskip(name, reason=WITHOUT_WANDB)


def sweep_utils() -> Any:
    return wandb_module("wandb.sdk.launch.sweeps.utils")


def run_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.rglob("run.json"))


def errors_of(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("ganlab: error:")]


def agent_arguments(point: dict[str, Any]) -> dict[str, list[str]]:
    """The agent's argument lists for one point, made by wandb's own function."""
    args = {key: {"value": value} for key, value in point.items()}
    made: dict[str, list[str]] = sweep_utils().create_sweep_command_args({"args": args})
    return made


# --- ganlab run: KEY=VALUE and --KEY=VALUE beside --set --------------------------------------


def test_bare_and_dashed_overrides_resolve_the_recipe_as_set_does(tmp_path: Path) -> None:
    """The spellings of the same overrides, flat or nested, give byte-identical resolved
    recipes in the run folders; the values are written as the agent writes them (str() of
    the value)."""
    point = {"loss.name": "hinge", "optimizers.generator.lr": 0.0001, "train.data_cache": False}
    made = agent_arguments(point)
    assert made["args_no_hyphens"] == [
        "loss.name=hinge",
        "optimizers.generator.lr=0.0001",
        "train.data_cache=False",
    ]
    assert made["args"] == [f"--{a}" for a in made["args_no_hyphens"]]
    # The same point declared nested in the sweep file (`loss: {parameters: {name: ...}}`):
    # W&B's sweep server puts each top-level key's nested values back into one dict
    # (wandb/sweeps, src/sweeps/params.py, HyperParameterSet.to_config), and the agent
    # writes that dict with str(). Each of its keys overrides the recipe as the flat one does.
    nested = agent_arguments(
        {
            "loss": {"name": "hinge"},
            "optimizers": {"generator": {"lr": 0.0001}},
            "train": {"data_cache": False},
        }
    )
    assert nested["args_no_hyphens"][:2] == [
        "loss={'name': 'hinge'}",
        "optimizers={'generator': {'lr': 0.0001}}",
    ]
    spellings = {
        "set": [a for arg in made["args_no_hyphens"] for a in ("--set", arg)],
        "bare": made["args_no_hyphens"],
        "dashed": made["args"],
        "nested": nested["args_no_hyphens"],
        "nested-dashed": nested["args"],
    }
    recipes = {}
    for name, arguments in spellings.items():
        out = tmp_path / name
        result = invoke("run", QUICKSTART, *TINY_SETS, "--out", str(out), *arguments)
        assert result.exit_code == 0, result.output
        (folder,) = run_dirs(out)
        recipes[name] = (folder / "recipe.yaml").read_text(encoding="utf-8")
    assert len(set(recipes.values())) == 1, recipes
    resolved = yaml.safe_load(recipes["bare"])
    assert resolved["loss"]["name"] == "hinge"
    assert resolved["optimizers"]["generator"]["lr"] == 0.0001
    assert resolved["optimizers"]["generator"]["betas"] == [0.5, 0.999]  # kept: not replaced
    assert resolved["train"]["data_cache"] is False


def test_overrides_after_the_recipe_apply_after_set_and_before_seed(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = invoke(
        "run", QUICKSTART, *TINY_SETS, "--out", str(out), "--set", "seed=1", "seed=2",
        "--seed", "3", "train.steps=2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (folder,) = run_dirs(out)
    resolved = yaml.safe_load((folder / "recipe.yaml").read_text(encoding="utf-8"))
    assert (resolved["seed"], resolved["train"]["steps"]) == (3, 2)
    assert folder.name.endswith("-s3")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--seeed", "3"], "No such option '--seeed'. (Did you mean one of: '--seed', '--set'?)"),
        (["-x"], "No such option '-x'."),
        (
            ["--train.steps", "3"],
            "No such option '--train.steps'. A recipe override takes its value after '=': "
            "--train.steps=VALUE.",
        ),
        (
            ["train.steps", "3"],
            f"unexpected argument 'train.steps' after the recipe {QUICKSTART!r}. Give recipe "
            "overrides as KEY=VALUE (e.g. train.steps=100), --KEY=VALUE or --set KEY=VALUE.",
        ),
    ],
)
def test_run_refuses_what_is_neither_an_option_nor_an_override(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    out = tmp_path / "runs"
    result = invoke("run", QUICKSTART, "--out", str(out), *arguments)
    assert result.exit_code == 2, result.output
    assert errors_of(result) == [f"ganlab: error: {message} See 'ganlab run --help'."]
    assert not out.exists()


@pytest.mark.parametrize("spelling", ["--set", "bare", "dashed"])
def test_a_bad_key_gets_the_same_message_however_it_is_spelled(
    tmp_path: Path, spelling: str
) -> None:
    override = "train.stepz=3"
    arguments = {
        "--set": ["--set", override],
        "bare": [override],
        "dashed": [f"--{override}"],
    }[spelling]
    out = tmp_path / "runs"
    result = invoke("run", QUICKSTART, "--out", str(out), *arguments)
    assert result.exit_code == 2, result.output
    (line,) = errors_of(result)
    assert line.startswith(
        f'ganlab: error: {QUICKSTART}: train.stepz: unknown key. Did you mean "steps"?'
    )
    assert not out.exists()


# --- ganlab sweep: the sweep file --------------------------------------------------------------


def write_sweep(tmp_path: Path, *args: str) -> Result:
    """`ganlab sweep` on the quickstart (with its metric and wandb logger; nothing runs).
    Writing a sweep file needs W&B (tests/test_without_wandb.py: the message without it)."""
    if "--local" not in args:
        wandb_module("wandb")
    return invoke(
        "sweep", QUICKSTART, "--file", str(tmp_path / "sweep.yaml"),
        "--out", str(tmp_path / "runs"), *args,
    )  # fmt: skip


def test_the_sweep_file_has_typed_values_the_seeds_a_metric_and_a_ganlab_command(
    tmp_path: Path,
) -> None:
    result = write_sweep(
        tmp_path,
        "--param", "loss.name=bce,hinge",
        "--param", "optimizers.generator.lr=1e-4,2e-4",
        "--param", "train.data_cache=false",
        "--seeds", "0,1,2",
        "--set", "train.steps=100",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / "sweep.yaml"
    assert f"Wrote {path}: a grid sweep of {QUICKSTART} (12 points)." in result.output
    # As `wandb sweep` reads it (PyYAML's safe_load, where 1e-4 would be a string).
    config = sweep_utils().load_sweep_config(str(path))
    assert config["method"] == "grid"
    assert config["program"] == QUICKSTART
    assert config["project"] == "ganlab"  # the recipe's wandb logger's project
    assert config["metric"] == {"name": "eval/swd", "goal": "minimize"}
    assert config["parameters"] == {
        "seed": {"values": [0, 1, 2]},
        "loss.name": {"values": ["bce", "hinge"]},
        "optimizers.generator.lr": {"values": [0.0001, 0.0002]},
        "train.data_cache": {"value": False},
    }
    lr = config["parameters"]["optimizers.generator.lr"]["values"]
    assert all(type(v) is float for v in lr)
    assert config["command"] == [
        "${env}", "${interpreter}", "-m", "ganlab", "run", "${program}",
        "--out", str(tmp_path / "runs"), "--set", "train.steps=100", "--wandb", "online",
        "${args_no_hyphens}",
    ]  # fmt: skip
    # Only keys of W&B's sweep configuration (its schema allows no others).
    assert set(config) <= {
        "name", "description", "program", "method", "metric", "parameters", "command",
        "project", "entity",
    }  # fmt: skip


HIGHER_IS_BETTER = """
import ganlab


def build_sharpness(params: ganlab.NoParams) -> ganlab.Metric:
    \"\"\"A made-up score where higher is better.\"\"\"
    return lambda run: {"sharpness": 1.0, "spread": 0.5}


@ganlab.hookimpl
def ganlab_register_metrics(register):
    register("sharpness", build_sharpness, results=("sharpness",), better="higher")
    register("spread", build_sharpness, results=("spread",), better=None)
"""


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ([], {"name": "eval/swd", "goal": "minimize"}),  # the first metric's first key
        (["--metric", "sharpness"], {"name": "eval/sharpness", "goal": "maximize"}),
        (["--metric", "eval/swd_16"], {"name": "eval/swd_16", "goal": "minimize"}),
    ],
)
def test_the_goal_follows_the_direction_the_metric_declares(
    tmp_path: Path, metric: list[str], expected: dict[str, str]
) -> None:
    plugin = tmp_path / "sharpness.py"
    plugin.write_text(HIGHER_IS_BETTER, encoding="utf-8")
    metrics = "metrics=[{name: swd}, {name: sharpness}, {name: spread}]"
    result = write_sweep(tmp_path, "-p", str(plugin), "--set", metrics, "--seeds", "0", *metric)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "sweep.yaml").read_text())["metric"] == expected


def test_a_metric_without_a_direction_cannot_be_optimised(tmp_path: Path) -> None:
    plugin = tmp_path / "sharpness.py"
    plugin.write_text(HIGHER_IS_BETTER, encoding="utf-8")
    metrics = "metrics=[{name: swd}, {name: spread}]"
    result = write_sweep(
        tmp_path, "-p", str(plugin), "--set", metrics, "--seeds", "0", "--metric", "spread"
    )
    assert result.exit_code == 2
    assert errors_of(result) == [
        "ganlab: error: --metric 'spread': its metric says neither lower nor higher is "
        "better, so a sweep cannot optimise it. Choose another result."
    ]
    assert not (tmp_path / "sweep.yaml").exists()


def test_the_sweep_file_runs_as_wandb_agent_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`ganlab sweep`'s file goes the way it goes to and from W&B's server, and wandb's
    own agent code builds the command line for a point and starts it; the run is a normal
    run folder with the point's values. (--wandb disabled: there is no W&B server here.)"""
    if platform.system() == "Windows":
        pytest.skip("the agent puts no ${env} on Windows; this test follows the POSIX path")
    wandb_module("wandb")
    monkeypatch.chdir(tmp_path)  # the agent runs the command in its own folder
    result = invoke(
        "sweep", QUICKSTART, *TINY_SETS, "--param", "loss.name=hinge,bce",
        "--param", "optimizers.generator.lr=2e-4", "--seeds", "1", "--wandb", "disabled",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    # `wandb sweep sweep.yaml`: read, checked, uploaded as YAML after a JSON round trip;
    # `wandb agent`: the config read back from that YAML, its command kept.
    config = sweep_utils().load_sweep_config("sweep.yaml")
    config = wandb_module("wandb.apis.public.sweeps")._validate_config_and_fill_distribution(config)
    stored = yaml.dump(json.loads(json.dumps(config)))
    command = yaml.safe_load(stored)["command"]
    # The server's first grid point, sent to the agent as JSON.
    point = {key: p.get("values", [p.get("value")])[0] for key, p in config["parameters"].items()}
    args = json.loads(json.dumps({key: {"value": value} for key, value in point.items()}))
    assert args == {
        "seed": {"value": 1},
        "loss.name": {"value": "hinge"},
        "optimizers.generator.lr": {"value": 0.0002},
    }

    # `python` is what the agent runs: ganlab's Python first on PATH, as in its environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep0")
    for name in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # the agent sets them
        monkeypatch.setenv(name, "")
    caplog.set_level(logging.INFO, logger="wandb.wandb_agent")
    agent = wandb_module("wandb.wandb_agent").Agent(api=None, queue=None, sweep_id="sweep0")
    agent._sweep_command = command  # what Agent.run takes from the sweep's config
    agent._command_run(
        {"type": "run", "run_id": "run0", "program": config["program"], "args": args}
    )
    code = agent._run_processes["run0"].wait(timeout=300)

    expected = [
        "/usr/bin/env", "python", "-m", "ganlab", "run", QUICKSTART, "--out", "runs",
        *TINY_SETS, "--wandb", "disabled",
        "seed=1", "loss.name=hinge", "optimizers.generator.lr=0.0002",
    ]  # fmt: skip
    shown = " ".join(f'"{c}"' if " " in c else c for c in expected)  # as the agent logs it
    logged = [r.getMessage() for r in caplog.records if "About to run command" in r.getMessage()]
    assert logged == [f"About to run command: {shown}"]
    assert code == 0
    (folder,) = run_dirs(tmp_path / "runs")
    assert folder.name.endswith("-s1")
    resolved = yaml.safe_load((folder / "recipe.yaml").read_text(encoding="utf-8"))
    assert resolved["loss"]["name"] == "hinge"
    assert resolved["optimizers"]["generator"]["lr"] == 0.0002
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"


def test_the_sweep_file_replaces_its_own_and_never_another_file(tmp_path: Path) -> None:
    assert write_sweep(tmp_path, "--seeds", "0,1").exit_code == 0
    result = write_sweep(tmp_path, "--seeds", "0,1,2")
    assert result.exit_code == 0, result.output
    path = tmp_path / "sweep.yaml"
    assert yaml.safe_load(path.read_text())["parameters"]["seed"] == {"values": [0, 1, 2]}
    path.write_text("mine: true\n")
    result = write_sweep(tmp_path, "--seeds", "0")
    assert result.exit_code == 2
    assert errors_of(result) == [
        f"ganlab: error: {path} exists and was not written by `ganlab sweep`; it is left as "
        "it is. Give another file with --file."
    ]
    assert path.read_text() == "mine: true\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--param", "loss.nam=bce,hinge"],
            f'{QUICKSTART}: loss.nam: unknown key. Did you mean "name"?',
        ),
        (
            ["--param", "loss.name=bce,hing", "--seeds", "0,1"],
            f"with loss.name=hing: {QUICKSTART}: loss.name: unknown loss 'hing'. Did you mean "
            '"hinge"?',
        ),
        (["--param", "loss.name"], "--param 'loss.name': expected KEY=VALUE,VALUE,..."),
        (
            ["--param", "train.epochs=null,2"],
            "--param train.epochs: the value null cannot pass through a W&B sweep agent: the "
            "agent writes it as 'None', which ganlab reads back as the text 'None'.",
        ),
        (
            ["--seeds", "0", "--param", "seed=1"],
            "seed is swept twice (--seeds and --param seed=...); give its values once.",
        ),
        (
            ["--seeds", "0", "--metric", "eval/swdd"],
            "--metric 'eval/swdd': no metric of the recipe produces the key 'swdd'. Its "
            "metrics produce: swd, swd_*.",
        ),
        (
            ["--seeds", "0", "--set", "loggers=[]"],
            f"{QUICKSTART}: the recipe has no wandb logger, so a sweep's runs would report "
            "nothing to W&B.",
        ),
        (
            ["--seeds", "0", "--local", "--method", "bayes"],
            "--method bayes: --local runs the whole grid; random and bayes search need W&B's "
            "sweep server (leave out --local).",
        ),
        (["--seeds", "0", "--jobs", "2"], "--jobs runs points here at once: it goes with --local."),
    ],
)
def test_sweep_mistakes_get_one_message_exit_2_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = write_sweep(tmp_path, *args)
    assert result.exit_code == 2, result.output
    (line,) = errors_of(result)
    assert line.startswith(f"ganlab: error: {message}"), line
    assert not (tmp_path / "sweep.yaml").exists()
    assert not (tmp_path / "runs").exists()


# --- ganlab sweep --local ----------------------------------------------------------------------


def test_a_local_sweep_of_two_values_and_two_seeds_folds_into_two_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The points run and `ganlab compare` folds them by configuration. They are one sweep:
    its name (by default the recipe's and the time) is each point's W&B group and a W&B
    tag of it (in the offline records) and ``sweep`` in its run.json, which `ganlab runs`
    shows."""
    monkeypatch.chdir(tmp_path)
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):  # W&B's own files
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    out = tmp_path / "sweep"
    result = invoke(
        "sweep", QUICKSTART, *TINY_SETS, "--param", "loss.name=bce,hinge", "--seeds", "0,1",
        "--local", "--jobs", "2", "--out", str(out), "--wandb", "offline",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folders = run_dirs(out)
    assert len(folders) == 4
    assert "Sweep: 4 of 4 points finished" in result.output
    assert f"Compare them: ganlab compare {out} --over-seeds" in result.output
    for i in range(1, 5):  # parallel runs: each line says which point it is from
        assert f"[{i}/4] Run folder: " in result.output

    compared = invoke("compare", str(out), "--over-seeds", "--json")
    assert compared.exit_code == 0, compared.output
    groups = json.loads(compared.stdout)["groups"]
    assert len(groups) == 2
    assert sorted(tuple(sorted(g["seeds"])) for g in groups) == [(0, 1), (0, 1)]
    assert sorted(g["keys"]["loss.name"] for g in groups) == ["bce", "hinge"]

    # One sweep: its name in every run.json, in `ganlab runs`, and in W&B.
    (name,) = {json.loads((folder / "run.json").read_text())["sweep"] for folder in folders}
    assert name.startswith("quickstart-") and f"Sweep {name} of" in result.output
    listed = invoke("runs", str(out), "--json")
    assert listed.exit_code == 0, listed.output
    assert [line["columns"]["sweep"] for line in json.loads(listed.stdout)] == [name] * 4
    table = invoke("runs", str(out)).output
    assert "sweep" in table and table.count(name) == 4
    if importlib.util.find_spec("wandb") is not None:
        from tests.test_wandb import by_type, read_records, wandb_files

        for folder in folders:
            (piece,) = wandb_files(folder)
            (run,) = by_type(read_records(piece))["run"]
            assert run.run_group == name
            assert name in run.tags


def test_a_sweep_is_named_by_name(tmp_path: Path) -> None:
    assert write_sweep(tmp_path, "--seeds", "0", "--name", "loss-study").exit_code == 0
    assert yaml.safe_load((tmp_path / "sweep.yaml").read_text())["name"] == "loss-study"
    out = tmp_path / "runs"
    result = invoke(
        "sweep", QUICKSTART, "--seeds", "0", "--local", "--name", "a,b", "--out", str(out)
    )
    assert result.exit_code == 2
    assert errors_of(result) == [
        "ganlab: error: --name 'a,b': the sweep's name is a W&B tag of its runs, and a tag "
        "has 1 to 64 characters and no comma."
    ]
    assert not out.exists()


def test_a_failing_point_does_not_stop_the_others_and_is_named(
    tmp_path: Path, celeba_dir: Path
) -> None:
    recipe = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(celeba_dir))
    missing = tmp_path / "no-such-folder"
    out = tmp_path / "runs"
    result = invoke(
        "sweep", str(recipe), "--param", f"data.params.root={missing},{celeba_dir}",
        "--local", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 2, result.output  # the failed point's own exit code
    assert len(run_dirs(out)) == 1  # the second point ran after the first failed
    assert "Sweep: 1 of 2 points finished" in result.output
    assert f"data.params.root: folder {str(missing)!r} not found" in result.output
    failed = "ganlab: error: 1 of 2 points failed (each one's message is above):"
    assert errors_of(result)[-1] == failed
    assert f"\n  data.params.root={missing}: exit 2\n" in result.output


def wait_for(condition: Any, what: str, process: Any, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it does not in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the sweep ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.skipif(platform.system() == "Windows", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_sweep_alone_stops_every_running_point_with_a_checkpoint(
    tmp_path: Path, signum: int
) -> None:
    """`kill PID` of `ganlab sweep --local` (a scheduler, `docker stop`), not its process
    group: the sweep passes the signal on; each running point writes its checkpoint and
    exits 128 + N, no point starts after it, and the report names the stopped points."""
    out = tmp_path / "runs"
    sweep = subprocess.Popen(
        [
            sys.executable, "-m", "ganlab", "sweep", QUICKSTART, *TINY_SETS,
            "--set", "train.steps=100000", "--set", "train.log_every=1",
            "--seeds", "0,1,2", "--local", "--jobs", "2", "--out", str(out),
            "--wandb", "disabled",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the test's own group: nothing else gets the signal
    )  # fmt: skip
    try:
        # Both points train (rows in their metrics.jsonl): then the signal, to the sweep only.
        def training() -> bool:
            logs = list(out.glob("*/*/metrics.jsonl"))
            return len(logs) == 2 and all(log.stat().st_size > 0 for log in logs)

        wait_for(training, "two points training", sweep)
        os.kill(sweep.pid, signum)
        output, _ = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:  # the points did not stop: end them all
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
    assert sweep.returncode == 128 + signum, output
    folders = run_dirs(out)
    assert len(folders) == 2, output  # the third point did not start
    assert "[3/3] ganlab run" not in output
    name = signal.Signals(signum).name
    assert f"Stopped by {name}: 2 points stopped, 1 did not start." in output
    for folder in folders:
        info = json.loads((folder / "run.json").read_text())
        assert info["status"] == "interrupted", info
        assert list((folder / "checkpoints").glob("step_*.pt")), folder
        assert f"continue it with: ganlab run --resume {folder}" in output


@pytest.mark.parametrize(
    "text", ["1e-4", "1e5", "'1e5'", "+1E+2", ".5e3", "1_000", "0.0002", "true", "null", "bce",
             "[0.5, 0.999]", "{a: 1e-3}"],
)  # fmt: skip
def test_sweep_values_are_read_as_set_reads_them(text: str) -> None:
    """The sweep plugin reads --param values itself (a plugin imports only `ganlab`); it
    must read each as `ganlab run --set` does, or a point would run another value."""
    from ganlab.recipe.yamlfile import load_yaml
    from ganlab_plugins.wandb.sweep_points import read_value, same

    assert same(read_value(text), load_yaml(text))
