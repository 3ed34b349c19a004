"""ganlab's own record of a run's W&B run: one piece per session (the first, and one per
``--resume``), kept by the logger in ``<run>/wandb/pieces.jsonl``.

Each session appends a line when its W&B run has started (its id, mode, folder, name,
group, tags and notes) and one when it finished W&B (the last step it logged). A line is
written whole before the session goes on, so a session killed outright (SIGKILL) still
leaves its start, and a resumed session knows which W&B run to continue, what it was
called, and that the killed piece never finished. Nothing here reads W&B's own files: the
folder of a piece is what W&B's public ``Run.settings.sync_dir`` said it was.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The record, beside W&B's own folders in the run folder.
RECORD = Path("wandb") / "pieces.jsonl"


@dataclass
class Piece:
    """One session's part of the W&B run."""

    path: str  #: the folder W&B wrote the session into (``Run.settings.sync_dir``)
    run_id: str
    mode: str  #: ``offline`` or ``online``
    started: float = 0.0  #: ``time.time()`` once ``wandb.init`` had returned
    name: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    finished: bool = False  #: the session finished W&B (whatever the run's outcome)
    last_step: int | None = None  #: the last training step it gave W&B, once finished


def record_start(run_dir: Path, piece: Piece) -> None:
    """Append ``piece``'s start to the record."""
    _append(
        run_dir,
        {
            "event": "start",
            "path": piece.path,
            "id": piece.run_id,
            "mode": piece.mode,
            "started": piece.started,
            "name": piece.name,
            "group": piece.group,
            "tags": piece.tags,
            "notes": piece.notes,
        },
    )


def record_finish(run_dir: Path, path: str, last_step: int | None) -> None:
    """Append that the piece at ``path`` finished W&B, having logged up to ``last_step``."""
    _append(run_dir, {"event": "finish", "path": path, "last_step": last_step})


def _append(run_dir: Path, entry: Mapping[str, Any]) -> None:
    record = run_dir / RECORD
    record.parent.mkdir(parents=True, exist_ok=True)
    with record.open("a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")


def read_pieces(run_dir: Path, info: Mapping[str, Any]) -> list[Piece]:
    """The pieces of the run folder, oldest first. A run logged before this record existed
    has only run.json's ``wandb`` (``info``): its pieces are taken from there."""
    record = run_dir / RECORD
    if not record.is_file():
        return _from_run_json(info)
    found: dict[str, Piece] = {}
    for line in record.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short (the disk filled up): the rest are whole
        if not isinstance(entry, dict):
            continue
        path = str(entry.get("path"))
        if entry.get("event") == "start" and entry.get("id"):
            found[path] = Piece(
                path=path,
                run_id=str(entry["id"]),
                mode=str(entry.get("mode")),
                started=float(entry.get("started") or 0.0),
                name=entry.get("name"),
                group=entry.get("group"),
                tags=[str(tag) for tag in entry.get("tags") or []],
                notes=entry.get("notes"),
            )
        elif entry.get("event") == "finish" and path in found:
            found[path].finished = True
            step = entry.get("last_step")
            found[path].last_step = step if isinstance(step, int) else None
    return list(found.values())


def _from_run_json(info: Mapping[str, Any]) -> list[Piece]:
    recorded = info.get("wandb")
    if not isinstance(recorded, dict) or not recorded.get("id"):
        return []
    mode = str(recorded.get("mode"))
    paths = recorded.get("paths") or [recorded.get("path")]
    pieces = [Piece(str(path), str(recorded["id"]), mode, finished=True) for path in paths]
    last = pieces[-1]
    last.name, last.group, last.notes = (recorded.get(k) for k in ("name", "group", "notes"))
    last.tags = [str(tag) for tag in recorded.get("tags") or []]
    step = recorded.get("last_step")
    last.last_step = step if isinstance(step, int) else None
    return pieces


def floor(earlier: Sequence[Piece], resumed_at: int) -> int | None:
    """The last training step the W&B run surely holds, from the earlier pieces of it: a
    finished piece's last step; after a piece killed outright, the step of the checkpoint
    the run resumes from (that session logged every step up to it before it went on; what
    it logged after is trained again and logged again, with the same values)."""
    steps = [p.last_step for p in earlier if p.finished and p.last_step is not None]
    found = max(steps) if steps else None
    if earlier and not earlier[-1].finished:
        found = max(found or 0, resumed_at)
    return found


def wait_for_a_new_second(earlier: Sequence[Piece]) -> None:
    """W&B names a piece's folder by the second it starts in (and the run id): a piece
    started in the same second as the one before would take over its folder."""
    if earlier:
        now = time.time()
        if int(now) <= int(earlier[-1].started):
            time.sleep(int(earlier[-1].started) + 1.05 - now)


def sync_commands(pieces: Sequence[Piece]) -> str:
    """``wandb sync`` of the given offline pieces, quoted for a POSIX shell, one command
    for the pieces up to and including each piece whose session was killed before it
    finished W&B, and one for the rest, joined by ``;``: such a piece may end in a record
    cut short, where ``wandb sync`` stops the whole command.

    W&B uploads the pieces of one run one after the other in order of their start,
    whatever order they are given in.
    """
    groups: list[list[str]] = [[]]
    for i, piece in enumerate(pieces):
        groups[-1].append(piece.path)
        if not piece.finished and i < len(pieces) - 1:
            groups.append([])
    return "; ".join(
        "wandb sync " + " ".join(shlex.quote(path) for path in group) for group in groups
    )


def synced(piece: Piece) -> bool:
    """Whether ``wandb sync`` uploaded the offline piece: it leaves ``<log>.synced`` beside
    the piece's log, and skips a piece so marked (wandb 0.31, ``wandb sync --help``:
    ``--include-synced``)."""
    folder = Path(piece.path)
    return folder.is_dir() and any(folder.glob("*.synced"))
