"""A stopped run continued in place (``--resume``).

The recipe comes from the run folder, names its plugins, and those build the run again;
`ganlab.engine.run.Run.load_state_dict` puts the checkpoint back into it. Resuming reads
and checks everything before it writes anything, so a refused resume leaves the run folder
exactly as it was:

1. `open_resume`: ``run.json``, the newest checkpoint that can be read (an unreadable newer
   one is named and left in place), its contents, and the recipe (only the length may change);
2. `Resumption.restore`: the checkpoint put into the freshly built run, checked against the
   recipe (processes, steps, epoch) and against ``metrics.jsonl``;
3. `Resumption.write`: ``recipe.yaml``, ``metrics.jsonl`` (the rows a killed run logged after
   its checkpoint are dropped; they are logged again, identically) and ``run.json``, each
   replaced atomically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ganlab.data.fingerprint import DATA_FILE, DataChanges, fingerprint_of, record, recorded
from ganlab.data.types import Fingerprint
from ganlab.engine.run import Run
from ganlab.errors import GanlabError
from ganlab.files.atomic import write_atomic, write_json_atomic
from ganlab.files.checkpoint import UnreadableCheckpoint, load_checkpoint, step_checkpoints
from ganlab.files.folders import read_run_info
from ganlab.files.metrics_log import metrics_line, read_metrics, write_metrics
from ganlab.recipe.diff import differing_keys, flatten
from ganlab.recipe.models import Recipe, Resolved
from ganlab.recipe.resolve import changed_components

#: Recipe keys that may change when a run is resumed: how long it trains.
LENGTH_KEYS = ("train.epochs", "train.steps")


@dataclass
class Resumption:
    """A run folder about to be continued, and the checkpoint it continues from."""

    run_dir: Path
    checkpoint: Path
    state: dict[str, Any]
    info: dict[str, Any]  #: its run.json
    #: newer checkpoints that could not be read, with the reason
    skipped: list[str] = field(default_factory=list)
    #: the status its run.json had (``running`` when that session was killed)
    found_status: str | None = None
    #: the checkpoint is at the run's last step, but the run never completed (it was
    #: stopped after it wrote it): only the end-of-run work is left (`restore` sets it)
    finishing: bool = False
    #: continue even if the data changed since the run recorded it (--accept-changed-data)
    accept_changed_data: bool = False
    #: the data set's fingerprint now, recorded by `write`
    fingerprint: Fingerprint | None = None

    def check_data(self, run: Run) -> None:
        """Refuse to continue on data other than the run's own, naming what changed, unless
        accepted (then ``run.json`` records what changed)."""
        self.fingerprint = fingerprint_of(run.dataset)
        before = recorded(self.run_dir)
        if before is None or self.fingerprint is None:
            return  # a run from before fingerprints were kept: nothing to compare
        if before.digest() == self.fingerprint.digest():
            return
        changes = DataChanges.between(before, self.fingerprint)
        if not self.accept_changed_data:
            raise GanlabError(
                f"Cannot resume {self.run_dir}: its data changed since the run recorded it "
                f"({self.run_dir / DATA_FILE}): {changes.describe()}; {len(before.names)} "
                f"images then, {len(self.fingerprint.names)} now. Put the data back as it "
                "was, start a new run, or continue on the new data with "
                "--accept-changed-data (run.json records it)."
            )
        self.info["resumed"][-1]["accepted_changed_data"] = changes.counts()

    #: the rows metrics.jsonl keeps: those up to the checkpoint's step (`rows_to_keep`)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def restore(self, run: Run) -> None:
        """Put the checkpoint into ``run`` (built from the recipe) and check that it fits."""
        self.check_data(run)
        state, where = self.state, self.run_dir
        processes = state.get("processes", 1)
        if processes != run.group.world:
            raise GanlabError(
                f"{where} was trained by {processes} process(es); resume it with as many "
                f"(torchrun --nproc_per_node {processes}), not {run.group.world}."
            )
        if state["step"] == run.total_steps and self.found_status != "completed":
            # Killed (or stopped) once its last checkpoint was written: the run loop trains
            # and evaluates nothing, and the end-of-run work (final.pt, the run_end hooks'
            # grids and figures, run.json) is done now.
            self.finishing = True
        elif state["step"] >= run.total_steps:
            raise GanlabError(
                f"{where} already trained {state['step']} steps, as many as its recipe asks "
                "for. To train longer, resume with a larger --set train.steps=N (or "
                "train.epochs)."
            )
        per_epoch = run.steps_per_epoch
        if not state["epoch"] * per_epoch <= state["step"] <= (state["epoch"] + 1) * per_epoch:
            raise GanlabError(
                f"{self.checkpoint}: step {state['step']} cannot be in epoch {state['epoch']} "
                f"of {per_epoch} steps ({len(run.dataset)} images now). The checkpoint "
                "does not belong to this run's recipe and data; start a new run."
            )
        if run.group.is_main:
            self.rows = rows_to_keep(where / "metrics.jsonl", self.checkpoint, state)
        run.load_state_dict(state, self.checkpoint)

    def write(self, resolved: Resolved) -> None:
        """Rewrite the run folder's files for the continued run (rank 0 only)."""
        for reason in self.skipped:
            click.echo(f"ganlab: skipping {reason}", err=True)
        if self.skipped:
            click.echo(
                f"ganlab: continuing from {self.checkpoint} (step {self.state['step']}); "
                "nothing was deleted (a file the run writes again at its step replaces it).",
                err=True,
            )
        if self.finishing:
            click.echo(
                f"ganlab: {self.run_dir} trained all its {self.state['step']} steps but did "
                "not complete; finishing its end-of-run work (final checkpoint, run_end "
                "hooks, run.json).",
                err=True,
            )
        write_atomic(self.run_dir / "recipe.yaml", resolved.to_yaml())
        if self.fingerprint is not None:  # the data it continues on (changed only if accepted)
            record(self.run_dir, self.fingerprint, self.info)
        write_metrics(self.run_dir / "metrics.jsonl", self.rows)
        write_json_atomic(self.run_dir / "run.json", self.info)


def rows_to_keep(path: Path, checkpoint: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` a resumed run keeps: those up to the checkpoint's step
    (a killed run logged some after it; they are logged again, identically).

    The checkpoint is the truth: its ``history`` holds every row up to its step. When the
    file ends before that step, because a kill or a crash cut it (its last row half
    written, or rows that never reached the disk), the missing rows are taken from the
    checkpoint, provided the rows the file does have are the checkpoint's own; a file with
    other rows belongs to another run and is refused.
    """
    step = state["step"]
    rows = [row for row in read_metrics(path) if row["step"] <= step]
    logged = max((row["step"] for row in rows), default=0)
    if logged >= step:
        return rows
    history = [row for row in state["history"] if row["step"] <= step]
    own = [metrics_line(row) for row in history[: len(rows)]]
    if [metrics_line(row) for row in rows] != own:
        raise GanlabError(
            f"{path} ends at step {logged}, but the checkpoint {checkpoint.name} is at step "
            f"{step}, and its rows are not the ones the checkpoint logged: they do not belong "
            "together. Put back the run's own metrics.jsonl, or start a new run."
        )
    click.echo(
        f"ganlab: {path} ends at step {logged}, before the checkpoint's step {step} (the run "
        f"was stopped before its rows reached the disk); its rows up to step {step} are "
        f"taken from {checkpoint.name}.",
        err=True,
    )
    return history


def open_resume(
    run_dir: Path, recipe: Recipe, device: str, accept_changed_data: bool = False
) -> Resumption:
    """Read and check everything needed to continue ``run_dir`` with ``recipe`` (on data
    other than the run's own only with ``accept_changed_data``)."""
    info = read_run_info(run_dir / "run.json")
    found_status = info.get("status")
    checkpoint, state, skipped = newest_readable(run_dir)
    check_resumable(state["recipe"], recipe, run_dir)
    info.update(status="running", device=device)
    info.pop("error", None)  # the error that stopped the last segment, if any
    info.setdefault("resumed", []).append(
        {"from": str(checkpoint.relative_to(run_dir)), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    )
    found = found_status if isinstance(found_status, str) else None
    return Resumption(
        run_dir,
        checkpoint,
        state,
        info,
        skipped,
        found_status=found,
        accept_changed_data=accept_changed_data,
    )


def newest_readable(run_dir: Path) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest step checkpoint that can be read, its contents, and why newer ones could
    not. A checkpoint that reads but holds what ganlab never writes is refused outright."""
    files = step_checkpoints(run_dir)
    if not files:
        raise GanlabError(
            f"{run_dir} has no checkpoint to resume from (no checkpoints/step_*.pt). "
            "A run writes one every train.checkpoint_every steps: start it again instead."
        )
    skipped: list[str] = []
    for path in reversed(files):
        try:
            return path, load_checkpoint(path), skipped
        except UnreadableCheckpoint as exc:
            skipped.append(str(exc))
    raise GanlabError(
        f"No checkpoint of {run_dir} can be read:\n" + "\n".join(skipped) + "\nStart a new run."
    )


def check_resumable(saved: dict[str, Any], recipe: Recipe, run_dir: Path) -> None:
    """Refuse to continue a run with a recipe that differs in more than its length."""
    changed = changed_components(saved, recipe, run_dir)
    if changed is not None:
        raise GanlabError(changed)
    # `-p no:NAME` picks between clashing plugins; it changes nothing the run is made of.
    flats = [
        flatten({**r, "plugins": [p for p in r.get("plugins", []) if not p.startswith("no:")]})
        for r in (saved, recipe.model_dump(mode="json"))
    ]
    keys = [k for k in differing_keys(flats) if k not in LENGTH_KEYS]
    if keys:
        raise GanlabError(
            f"Cannot resume {run_dir}: the recipe differs from the run's in {', '.join(keys)}. "
            "Only train.epochs and train.steps may change; start a new run for the rest."
        )
