"""`ganlab eval` into the W&B run it evaluated: the same W&B run (its id, resumed), the scores at
the evaluated checkpoint's training step, and in the metadata of the model artifact version
of that checkpoint; nothing of W&B with ``--wandb disabled``. Read back from the offline
records, as tests/test_wandb.py reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("wandb", reason="W&B is an optional extra: pip install 'ganlab[wandb]'")

from tests.conftest import invoke, only_run_dir
from tests.test_wandb import (
    by_type,
    read_records,
    rows_of,
    run_quickstart,
    wandb_env,  # noqa: F401 (the autouse fixture: a clean W&B environment per test)
    wandb_files,
    write_helpers,
)


def train_and_evaluate(tmp_path: Path, *eval_args: str) -> tuple[Path, str, list[str]]:
    """A 4-step run (checkpoints at 2 and 4) logged offline with the ``tenth_step`` metric
    (step / 10); then ``ganlab eval`` of it with ``eval_args``. Returns the run folder, its
    W&B id and the outputs of each eval."""
    helpers = write_helpers(tmp_path)
    sets = ("metrics=[{name: tenth_step}]", "train.checkpoint_every=2", "loggers=[{name: wandb}]")
    result = run_quickstart(tmp_path / "runs", *sets, plugins=(helpers,))
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")
    run_id = json.loads((run_dir / "run.json").read_text())["wandb"]["id"]
    outputs = []
    for target in (run_dir, run_dir / "checkpoints" / "step_000002.pt"):
        done = invoke("eval", str(target), "-p", helpers, *eval_args)
        assert done.exit_code == 0, done.output
        outputs.append(done.output)
    import wandb

    wandb.teardown()  # W&B's service writes the last records when it stops
    return run_dir, run_id, outputs


def test_eval_scores_go_to_the_same_wandb_run_at_their_step_and_into_the_model(
    tmp_path: Path,
) -> None:
    run_dir, run_id, outputs = train_and_evaluate(tmp_path)
    trained, final_eval, step2_eval = (by_type(read_records(f)) for f in wandb_files(run_dir))

    # The same W&B run, resumed; its name, group and tags kept.
    runs = [piece["run"][0] for piece in (trained, final_eval, step2_eval)]
    assert {r.run_id for r in runs} == {run_id}
    assert [r.resume for r in runs] == [False, True, True]
    assert len({(r.display_name, r.run_group, tuple(r.tags)) for r in runs}) == 1

    # The scores at the evaluated checkpoint's step, on the training step axis.
    assert [(r["train/step"], r["eval/tenth_step"]) for r in rows_of(final_eval)] == [(4, 0.4)]
    assert [(r["train/step"], r["eval/tenth_step"]) for r in rows_of(step2_eval)] == [(2, 0.2)]

    # The final checkpoint's model version (the same file: the same digest) gets the scores
    # in its metadata; step 2 was logged as no model version, so none is logged for it.
    (logged,) = [a for a in trained["artifact"] if "step-4" in a.aliases]
    (scored,) = final_eval["artifact"]
    assert scored.name == logged.name == f"model-{run_id}"
    assert scored.digest == logged.digest
    metadata = json.loads(scored.metadata)
    assert metadata["step"] == 4
    assert metadata["eval"]["scores"] == {"tenth_step": 0.4}
    assert metadata["eval"]["checkpoint"] == "checkpoints/final.pt"
    assert not step2_eval["artifact"]

    # Each eval says how to upload: one command with every piece of the run.
    assert "W&B: scores of step 4 added to the offline run" in outputs[0]
    assert "wandb sync " in outputs[1] and str(wandb_files(run_dir)[2].parent) in outputs[1]


def test_eval_with_wandb_disabled_leaves_wandb_alone(tmp_path: Path) -> None:
    run_dir, _, outputs = train_and_evaluate(tmp_path, "--wandb", "disabled")
    assert len(wandb_files(run_dir)) == 1  # the training's piece only
    pieces = (run_dir / "wandb" / "pieces.jsonl").read_text().splitlines()
    assert len(pieces) == 2  # its start and finish
    assert not [line for out in outputs for line in out.splitlines() if "W&B" in line]


def test_eval_of_a_run_without_wandb_logs_nothing(tmp_path: Path) -> None:
    helpers = write_helpers(tmp_path)
    sets = ("metrics=[{name: tenth_step}]", "loggers=[]")
    result = run_quickstart(tmp_path / "runs", *sets, plugins=(helpers,))
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")
    done = invoke("eval", str(run_dir), "-p", helpers, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["tenth_step"] == 0.4
    assert not (run_dir / "wandb").exists()
