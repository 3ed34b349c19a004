"""W&B Tables of samples and the summaries of keys with a direction, offline and for real:
tiny runs, then the run's ``run-<id>.wandb`` file and its table files read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

wandb = pytest.importorskip("wandb", reason="W&B is an optional extra: pip install 'ganlab[wandb]'")

from tests.conftest import RECIPES, invoke, only_run_dir  # noqa: E402
from tests.plugins.scripted_metric import HIGHER, LOWER  # noqa: E402
from tests.test_wandb import (  # noqa: E402
    by_type,
    invoke_run,
    read_records,
    rows_of,
    run_quickstart,
    summary_of,
    wandb_env,  # noqa: F401 (autouse: a clean W&B environment per test)
    wandb_file,
)

SCRIPTED = str(Path(__file__).parent / "plugins" / "scripted_metric.py")


def tables_of(run_dir: Path, key: str) -> dict[int, dict[str, Any]]:
    """Each table logged under ``key``, by training step: its columns and rows (an image as
    its PNG file's path), from the ``run_table`` artifact W&B logs each table as (wandb
    0.31 keeps a table's images there; the history row names the artifact)."""
    records = by_type(read_records(wandb_file(run_dir)))
    artifacts = {a.client_id: a for a in records["artifact"] if a.type == "run_table"}
    found = {}
    for row in rows_of(records):
        if key in row:
            assert row[key]["_type"] == "table-file"
            client_id, _, name = (
                row[key]["artifact_path"].removeprefix("wandb-client-artifact://").partition("/")
            )
            files = {c.path: c.local_path for c in artifacts[client_id].manifest.contents}
            table = json.loads(Path(files[name]).read_text())
            for cells in table["data"]:
                for i, cell in enumerate(cells):
                    if isinstance(cell, dict) and cell.get("_type") == "image-file":
                        cells[i] = files[cell["path"]]
            found[row["train/step"]] = table
    return found


def metrics_rows(run_dir: Path) -> list[str]:
    return (run_dir / "metrics.jsonl").read_text().splitlines()


def test_a_table_of_samples_every_n_steps_that_leaves_training_alone(tmp_path: Path) -> None:
    logger = "loggers=[{name: wandb, params: {table_every: %s, table_rows: 5}}]"
    dirs = {}
    for every in ("2", "0"):
        # With a moving average of G: the table shows it, as `ganlab sample` does.
        result = run_quickstart(tmp_path / every, "train.ema=0.9", logger % every)
        assert result.exit_code == 0, result.output
        dirs[every] = only_run_dir(tmp_path / every)

    # Every 2 steps (the run's last step's table at its end): 5 rows of seeds 0..4.
    tables = tables_of(dirs["2"], "media/sample_table")
    assert sorted(tables) == [2, 4]
    for table in tables.values():
        assert table["columns"] == ["image", "score", "seed"]
        assert [row[2] for row in table["data"]] == [0, 1, 2, 3, 4]
        assert all(isinstance(row[1], float) for row in table["data"])
        image = Image.open(table["data"][0][0])
        assert image.size == (16, 16) and image.mode == "RGB"
    assert tables[2]["data"][0][1] != tables[4]["data"][0][1]  # D's scores as D trains

    # A row's seed makes its image again: `ganlab sample RUN --seed 3 -n 1` at the end.
    out = tmp_path / "again"
    result = invoke(
        "sample", str(dirs["2"]), "--seed", "3", "-n", "1", "--separate", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    (again,) = sorted(out.glob("*.png"))
    shown = Image.open(tables[4]["data"][3][0])
    assert np.array_equal(np.asarray(shown), np.asarray(Image.open(again).convert("RGB")))

    # table_every: 0 makes none, and the tables change nothing of training.
    assert tables_of(dirs["0"], "media/sample_table") == {}
    assert metrics_rows(dirs["2"]) == metrics_rows(dirs["0"])


def test_a_conditional_run_gets_a_class_column_and_a_table_per_class(tmp_path: Path) -> None:
    sets = [
        "data.params.count=64",
        "data.params.image_size=16",
        "generator.params.ngf=8",
        "discriminator.params.ndf=8",
        "train.steps=2",
        "train.batch_size=16",
        "metrics=[{name: swd, params: {images: 32, per_class: true}}]",
        "callbacks=[]",
        "loggers=[{name: wandb, params: {table_every: end, table_rows: 12}}]",
    ]
    args = [str(RECIPES / "quickstart_conditional.yaml"), "--out", str(tmp_path / "runs")]
    for override in sets:
        args += ["--set", override]
    result = invoke_run(*args)
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "runs")
    classes = ["bald", "short", "long", "bob", "afro"]

    (samples,) = tables_of(run_dir, "media/sample_table").values()
    assert samples["columns"] == ["image", "class", "score", "seed"]
    assert [row[1] for row in samples["data"]] == [classes[i % 5] for i in range(12)]

    tables = tables_of(run_dir, "media/class_table")
    assert list(tables) == [2]
    table = tables[2]
    assert table["columns"] == ["class", "samples", "mean_score", "swd"]
    assert [row[0] for row in table["data"]] == classes
    assert [row[1] for row in table["data"]] == [3, 3, 2, 2, 2]  # 12 rows over 5 classes
    bald = [row[2] for row in samples["data"] if row[1] == "bald"]
    assert table["data"][0][2] == pytest.approx(sum(bald) / len(bald))
    final = [json.loads(r) for r in metrics_rows(run_dir) if "swd" in r][-1]
    assert [row[3] for row in table["data"]] == [final[f"swd_class_{c}"] for c in classes]


def test_the_summary_keeps_the_best_value_by_the_keys_direction(tmp_path: Path) -> None:
    result = run_quickstart(
        tmp_path / "runs",
        "train.steps=3",
        "train.eval_every=1",
        "metrics=[{name: scripted_lower}, {name: scripted_higher}]",
        "callbacks=[]",
        "loggers=[{name: wandb}]",  # no tables (the default)
        plugins=(SCRIPTED,),
    )
    assert result.exit_code == 0, result.output
    records = by_type(read_records(wandb_file(only_run_dir(tmp_path / "runs"))))
    summary = summary_of(records)
    # Down then up (lower is better): the minimum, not the last; up then down: the maximum.
    assert summary["eval/scripted_lower"] == {"min": min(LOWER), "last": LOWER[-1]}
    assert summary["eval/scripted_higher"] == {"max": max(HIGHER), "last": HIGHER[-1]}
    declared = {m.name: m for m in records["metric"] if m.name.startswith("eval/")}
    assert (
        declared["eval/scripted_lower"].summary.min
        and not declared["eval/scripted_lower"].summary.max
    )
    assert declared["eval/scripted_higher"].summary.max
    assert {m.step_metric for m in declared.values()} == {"train/step"}
