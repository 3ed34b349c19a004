"""Plugins log their own values through `Run.log`: the same row stream as the runner's, in step
order, to metrics.jsonl, run.json's `keys` and `ganlab compare`, with a namespace and a
direction of their own."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ganlab.files.metrics_log import read_metrics
from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, only_run_dir

DIAGNOSTICS = """
import ganlab


class Params(ganlab.Params):
    every: int = 2
    at: int | None = None  # log at this step instead of the current one
    namespace: str = "diag"


class Diagnostics:
    def __init__(self, params):
        self.params = params

    @ganlab.hookimpl
    def ganlab_step_end(self, run, stats):
        if stats.step % self.params.every == 0:
            step = self.params.at
            run.log({"d_gap": float(stats.d_real - stats.d_fake)}, step=step,
                    namespace=self.params.namespace)
            run.log({"sharpness": stats.step / 10}, namespace="diag", better="higher")


@ganlab.hookimpl
def ganlab_register_callbacks(register):
    register("diagnostics", lambda params: Diagnostics(params), params=Params)
"""


def run(tmp_path: Path, *sets: str) -> tuple[int, str, Path]:
    (tmp_path / "diag.py").write_text(DIAGNOSTICS)
    args = ["run", str(RECIPES / "quickstart.yaml"), "--out", str(tmp_path / "runs")]
    args += ["-p", str(tmp_path / "diag.py")]
    for change in (*TINY_QUICKSTART, "train.steps=6", "train.log_every=4", *sets):
        args += ["--set", change]
    result = invoke(*args)
    return result.exit_code, result.output, tmp_path / "runs"


def test_logged_values_join_the_rows_in_step_order(tmp_path: Path) -> None:
    code, output, out = run(tmp_path, "callbacks=[{name: diagnostics}]", "metrics=[{name: swd}]")
    assert code == 0, output
    run_dir = only_run_dir(out)
    rows = read_metrics(run_dir / "metrics.jsonl")
    steps = [row["step"] for row in rows]
    assert steps == sorted(steps)  # buffered training rows and plugin rows, in order
    kinds = [(row["step"], "loss_d" in row, "d_gap" in row, "swd" in row) for row in rows]
    assert kinds == [
        (1, True, False, False),
        (2, True, False, False),
        (2, False, True, False),  # after its step's training row
        (2, False, False, False),  # sharpness: logged separately, a row of its own
        (3, True, False, False),
        (4, True, False, False),
        (4, False, True, False),
        (4, False, False, False),
        (5, True, False, False),
        (6, True, False, False),
        (6, False, True, False),
        (6, False, False, False),
        (6, False, False, True),  # the final evaluation
    ]
    info = json.loads((run_dir / "run.json").read_text())
    keys = info["keys"]
    assert keys["loss_d"] == {"namespace": "train", "better": None}
    assert keys["swd"] == {"namespace": "eval", "better": "lower"}
    assert keys["d_gap"] == {"namespace": "diag", "better": None}
    assert keys["sharpness"] == {"namespace": "diag", "better": "higher"}
    # Provenance: every plugin the run loaded, the file one with its contents' digest.
    sources = {source["name"]: source for source in info["plugins"]}
    digest = hashlib.sha256((tmp_path / "diag.py").read_bytes()).hexdigest()
    plugin_file = str((tmp_path / "diag.py").resolve())
    assert sources[plugin_file] == {
        "name": plugin_file,
        "kind": "file",
        "file": plugin_file,
        "sha256": digest,
    }
    assert sources["ganlab_plugins.dcgan.models"]["kind"] == "built-in"
    assert sources["ganlab_plugins.dcgan.models"]["version"] == info["versions"]["ganlab"]

    compared = json.loads(
        invoke("compare", str(run_dir), "--json", "--plot", str(tmp_path / "c.png")).output
    )
    metrics = compared["runs"][0]["metrics"]
    assert metrics["d_gap"]["best"] is None  # no direction: no best
    assert metrics["sharpness"]["best"] == 0.6 == metrics["sharpness"]["final"]  # highest
    assert metrics["swd"]["best"] == metrics["swd"]["final"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("{name: diagnostics, params: {at: 1}}", "step=1: the run's rows have reached step"),
        ("{name: diagnostics, params: {namespace: eval}}", "namespace 'eval' is the runner's"),
        ("{name: diagnostics, params: {namespace: 'a b'}}", "namespace 'a b': give 1 to 64"),
    ],
)
def test_a_plugin_that_logs_wrongly_is_named(tmp_path: Path, change: str, message: str) -> None:
    code, output, _ = run(tmp_path, f"callbacks=[{change}]", "train.log_every=1")
    assert code == 1, output
    assert "callback 'diagnostics' (callbacks.0, plugin " in output and message in output
    assert f"{tmp_path}/diag.py:19" in output  # the plugin's own line
