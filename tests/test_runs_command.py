"""`ganlab runs`: one line per run folder, newest first, with the columns plugins add."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke
from tests.runfolders import curves, recipe_of, write_run


def cells(line: str) -> list[str]:
    """A table line's cells (columns are two or more spaces apart; a cell has single ones)."""
    return re.split(r"\s{2,}", line.strip())


def table(output: str) -> dict[str, list[str]]:
    """The first block of the table: each run's cells by its first cell, the header's too."""
    lines = output.split("\n\n")[0].splitlines()
    return {cells(line)[0]: cells(line) for i, line in enumerate(lines) if i != 1}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Five run folders of different kinds under runs/, started an hour apart."""
    root = tmp_path / "runs"
    write_run(root / "quickstart" / "20261127-100000-s0", recipe_of(0), curves(0))
    # Still going at step 60 of 200: run.json says nothing of steps or keys yet; the
    # `best` callback has not ranked it, the recipe says by what it will.
    write_run(
        root / "quickstart" / "20261127-110000-s1",
        recipe_of(1),
        curves(1, steps=60),
        status="running",
        started="2026-11-27T11:00:00+0000",
        steps=None,
        wall_seconds=None,
        keys={},
        best=None,
    )
    # No `best` callback: ranked by its first evaluation key with a direction.
    write_run(
        root / "quickstart" / "20261127-120000-s2",
        recipe_of(2, callbacks=[]),
        curves(2, steps=80),
        status="failed",
        started="2026-11-27T12:00:00+0000",
        best=None,
        wall_seconds=4000.0,
    )
    # Deeper down, as a sweep may put them.
    write_run(
        root / "sweep" / "hinge" / "quickstart" / "20261127-130000-s0",
        recipe_of(0, **{"loss.name": "hinge", "train.steps": None, "train.epochs": 5}),
        curves(3, steps=50),
        started="2026-11-27T13:00:00+0000",
    )
    broken = write_run(
        root / "quickstart" / "20261127-140000-s3",
        recipe_of(3),
        curves(4, steps=10),
        started="2026-11-27T14:00:00+0000",
    )
    (broken / "run.json").write_text("{not json", encoding="utf-8")
    return root


def test_one_line_per_run_newest_first(runs: Path) -> None:
    result = invoke("runs", str(runs))
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    # (then any columns the built-in and installed plugins add)
    assert rows["run"][:7] == ["run", "status", "recipe", "seed", "steps", "best", "wall"]
    assert list(rows)[1:] == [
        "quickstart/20261127-140000-s3",
        "sweep/hinge/quickstart/20261127-130000-s0",
        "quickstart/20261127-120000-s2",
        "quickstart/20261127-110000-s1",
        "quickstart/20261127-100000-s0",
    ]
    swd = {
        steps: min((r["swd"], r["step"]) for r in curves(seed, steps=steps) if "swd" in r)
        for seed, steps in [(0, 200), (1, 60), (2, 80)]
    }
    assert rows["quickstart/20261127-100000-s0"][1:7] == [
        "completed",
        "quickstart",
        "0",
        "200/200",
        f"swd {swd[200][0]:.4g} @{swd[200][1]}",  # the best callback's record
        "12s",
    ]
    assert rows["quickstart/20261127-110000-s1"][1:7] == [
        "running",
        "quickstart",
        "1",
        "60/200",  # from the end of metrics.jsonl
        f"swd {swd[60][0]:.4g} @{swd[60][1]}",  # the recipe's best callback, from the rows
        "-",
    ]
    assert rows["quickstart/20261127-120000-s2"][1:7] == [
        "failed",
        "quickstart",
        "2",
        "80/200",
        f"swd {swd[80][0]:.4g} @{swd[80][1]}",  # run.json's first eval key with a direction
        "1h06m",
    ]
    # A run set by epochs: its total depends on its data, so only the steps done.
    assert rows["sweep/hinge/quickstart/20261127-130000-s0"][4] == "50"
    # An unreadable run.json: said on its line, and why below the table.
    assert rows["quickstart/20261127-140000-s3"][1:4] == ["unreadable", "quickstart", "3"]
    assert "5 runs under " in result.output
    problem = " ".join(
        result.output.split("Could not be read (each message names its file):")[1].split()
    )
    assert problem.startswith(
        f"{runs / 'quickstart' / '20261127-140000-s3' / 'run.json'}: cannot be read as JSON"
    )
    assert max(len(line) for line in result.output.splitlines()) <= 120


def test_json_for_scripts(runs: Path) -> None:
    result = invoke("runs", str(runs), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)  # strict JSON: no NaN anywhere
    by_run = {line["run"]: line for line in found}
    running = by_run["quickstart/20261127-110000-s1"]
    assert running["status"] == "running"
    assert (running["steps"], running["total_steps"]) == (60, 200)
    assert running["best"]["metric"] == "swd" and running["best"]["step"] in (25, 50)
    assert running["wall_seconds"] is None and running["problems"] == []
    broken = by_run["quickstart/20261127-140000-s3"]
    assert broken["status"] == "unreadable" and broken["columns"] == {}
    assert "cannot be read as JSON" in broken["problems"][0]
    assert found[0]["run"] == "quickstart/20261127-140000-s3"  # newest first


def test_a_diverged_best_is_null_in_json_and_nan_in_the_table(tmp_path: Path) -> None:
    write_run(
        tmp_path / "runs" / "r",
        recipe_of(0),
        curves(0),
        best={"metric": "swd", "value": float("nan")},
    )
    (line,) = json.loads(invoke("runs", str(tmp_path / "runs"), "--json").output)
    assert line["best"] == {"metric": "swd", "value": None, "step": None}
    assert table(invoke("runs", str(tmp_path / "runs")).output)["r"][5] == "swd nan"


def notes_column_example() -> str:
    """The `ganlab_run_columns` example of docs/plugins.md."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n# notes_column\.py\n(.*?)```", text, re.S)
    assert found, "docs/plugins.md lost its notes_column.py example"
    return found.group(1)


def test_a_plugin_adds_a_column(runs: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "notes_column.py"
    plugin.write_text(notes_column_example(), encoding="utf-8")
    (runs / "quickstart" / "20261127-100000-s0" / "NOTES.txt").write_text("lr sweep\nmore\n")
    result = invoke("runs", str(runs), "-p", str(plugin))
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    assert rows["run"][-1] == "notes"
    assert rows["quickstart/20261127-100000-s0"][-1] == "lr sweep"
    assert rows["quickstart/20261127-110000-s1"][-1] == "-"
    found = json.loads(invoke("runs", str(runs), "-p", str(plugin), "--json").output)
    assert found[-1]["columns"]["notes"] == "lr sweep"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "    return {'n': 1 / 0}",
            "plugin '{plugin}' failed in ganlab_run_columns for {folder}: "
            "ZeroDivisionError: division by zero at {plugin}:7",
        ),
        (
            "    return ['n', 1]",
            "plugin '{plugin}' returned list \"['n', 1]\" from ganlab_run_columns; it must "
            "return a dict of column name -> text, or None ({plugin}:4)",
        ),
    ],
)
def test_a_failing_plugin_is_named(tmp_path: Path, body: str, message: str) -> None:
    folder = write_run(tmp_path / "runs" / "r", recipe_of(0), curves(0, steps=10))
    plugin = tmp_path / "bad_column.py"
    plugin.write_text(
        f"import ganlab\n\n\n@ganlab.hookimpl\ndef ganlab_run_columns(folder, info):\n"
        f"    del folder, info\n{body}\n",
        encoding="utf-8",
    )
    result = invoke("runs", str(tmp_path / "runs"), "-p", str(plugin))
    assert result.exit_code == 1, result.output
    expected = message.format(plugin=plugin, folder=folder)
    assert f"ganlab: error: {expected}" in result.output
    assert "Traceback" not in result.output


def test_no_runs_yet_and_no_folder(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    result = invoke("runs", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert (
        result.output
        == f"No run folders under {tmp_path / 'runs'} yet (a run folder holds run.json).\n"
    )
    assert json.loads(invoke("runs", str(tmp_path / "runs"), "--json").output) == []
    missing = invoke("runs", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2
    assert f"ganlab: error: {tmp_path / 'nowhere'}: no such folder." in missing.output
