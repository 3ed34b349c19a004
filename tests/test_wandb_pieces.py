"""The wandb logger's own record of a run's W&B pieces (``<run>/wandb/pieces.jsonl``), which
a resumed session reads instead of W&B's files: which W&B run to continue, what it was
called, how far it surely got, and how to sync its pieces. (No W&B needed: the record is
ganlab's; tests/test_wandb.py resumes real W&B runs through it.)"""

from __future__ import annotations

import shlex
from pathlib import Path

from ganlab_plugins.wandb.pieces import (
    Piece,
    floor,
    read_pieces,
    record_finish,
    record_start,
    sync_commands,
)


def test_a_killed_piece_leaves_its_start_and_the_resume_logs_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    first = Piece(str(tmp_path / "a b"), "id1", "offline", 10.0, "run", "grp", ["seed-0"], None)
    record_start(tmp_path, first)
    record_finish(tmp_path, first.path, 40)
    second = Piece(str(tmp_path / "c"), "id1", "offline", 20.0, "run", "grp", ["seed-0"], None)
    record_start(tmp_path, second)  # then killed: no finish line
    with (tmp_path / "wandb" / "pieces.jsonl").open("a") as file:
        file.write('{"event": "fin')  # a line the kill cut short

    pieces = read_pieces(tmp_path, {})
    assert [(p.path, p.finished, p.last_step) for p in pieces] == [
        (first.path, True, 40),
        (second.path, False, None),
    ]
    assert pieces[1].group == "grp" and pieces[1].tags == ["seed-0"]
    # After the kill, the resumed run logs what follows its checkpoint (step 60).
    assert floor(pieces, resumed_at=60) == 60
    assert floor(pieces[:1], resumed_at=40) == 40  # after a finished piece: its last step
    # A command of its own after the killed piece, which may end in a record cut short.
    third = Piece(str(tmp_path / "d"), "id1", "offline")
    commands = sync_commands([*pieces, third])
    assert commands == (
        f"wandb sync {shlex.quote(first.path)} {shlex.quote(second.path)}; wandb sync {third.path}"
    )


def test_a_run_logged_before_the_record_resumes_from_its_run_json(tmp_path: Path) -> None:
    info = {
        "wandb": {
            "mode": "offline",
            "id": "old1",
            "paths": ["/runs/x/wandb/offline-run-1", "/runs/x/wandb/offline-run-2"],
            "name": "named",
            "group": "g",
            "tags": ["seed-1", "mine"],
            "notes": "n",
            "last_step": 12,
        }
    }
    pieces = read_pieces(tmp_path, info)
    assert [p.run_id for p in pieces] == ["old1", "old1"]
    last = pieces[-1]
    assert (last.name, last.group, last.notes, last.tags) == ("named", "g", "n", ["seed-1", "mine"])
    assert floor(pieces, resumed_at=10) == 12
    assert read_pieces(tmp_path, {}) == []
