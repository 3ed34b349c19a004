"""Run folders written directly, for tests that need only a run folder's files (compare,
runs): ``recipe.yaml``, ``run.json`` and ``metrics.jsonl`` as ganlab writes them, with
curves that are made up but shaped like real ones, in milliseconds instead of a training run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: What every written run's run.json says of its keys (as `Run.keys` records them).
KEYS = {
    "epoch": {"namespace": "train", "better": None},
    "loss_d": {"namespace": "train", "better": None},
    "loss_g": {"namespace": "train", "better": None},
    "swd": {"namespace": "eval", "better": "lower"},
    "d_gap": {"namespace": "diag", "better": None},
}


def recipe_of(seed: int = 0, **changes: Any) -> dict[str, Any]:
    """A resolved recipe's shape (the parts compare and runs read); ``changes`` are dotted
    keys to set, such as ``{"loss.name": "hinge"}`` given as ``**{"loss.name": "hinge"}``."""
    recipe: dict[str, Any] = {
        "name": "quickstart",
        "seed": seed,
        "device": "cpu",
        "data": {"name": "cartoon_faces", "params": {"count": 10000, "image_size": 32}},
        "generator": {"name": "dcgan", "params": {"nz": 64, "ngf": 32}},
        "discriminator": {"name": "dcgan", "params": {"ndf": 32}},
        "loss": {"name": "bce", "params": {}},
        "optimizers": {
            "generator": {"name": "adam", "lr": 0.0002, "betas": [0.5, 0.999]},
            "discriminator": {"name": "adam", "lr": 0.0002, "betas": [0.5, 0.999]},
        },
        "train": {"steps": 200, "batch_size": 64, "eval_every": 25, "ema": None},
        "callbacks": [{"name": "best", "params": {"metric": "swd", "mode": "min"}}],
        "metrics": [{"name": "swd", "params": {"images": 512}}],
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = recipe
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return recipe


def curves(
    seed: int, steps: int = 200, eval_every: int = 25, floor: float = 50.0, rate: float = 100.0
) -> list[dict[str, Any]]:
    """metrics.jsonl rows: a training row per step (noisy losses that settle), and at every
    ``eval_every`` steps an SWD row that falls towards ``floor`` with time constant
    ``rate`` (seed by seed a little apart) and a plugin's diagnostic ``d_gap``."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        loss_d = 0.9 + 0.5 * math.exp(-step / 30) + 0.08 * rng.standard_normal()
        loss_g = 0.7 + 0.1 * (step / steps) + 0.08 * rng.standard_normal()
        rows.append({"step": step, "epoch": 0, "loss_d": loss_d, "loss_g": loss_g})
        if step % eval_every == 0:
            swd = floor + 150 * math.exp(-step / rate) + 6 * rng.standard_normal()
            rows.append({"step": step, "swd": swd})
            rows.append({"step": step, "d_gap": 0.2 + 0.05 * rng.standard_normal()})
    return rows


def write_run(
    folder: Path,
    recipe: dict[str, Any],
    rows: list[dict[str, Any]],
    **info: Any,
) -> Path:
    """A run folder at ``folder`` with these files; ``info`` is added to a completed
    run.json (``status="running"`` and the like override)."""
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), "utf-8")
    evals = [row for row in rows if "swd" in row]
    done = max((row["step"] for row in rows), default=0)
    record: dict[str, Any] = {
        "status": "completed",
        "seed": recipe["seed"],
        "device": "cpu",
        "started": "2026-11-27T10:00:00+0000",
        "keys": KEYS,
        "steps": done,
        "wall_seconds": 12.5,
        "images_per_second": 1024.0,
    }
    if evals:
        best = min(evals, key=lambda row: row["swd"])
        record["best"] = {"metric": "swd", "value": best["swd"], "step": best["step"]}
    record.update(info)
    (folder / "run.json").write_text(json.dumps(record, indent=2), "utf-8")
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (folder / "metrics.jsonl").write_text(text, "utf-8")
    return folder
