"""What the W&B logger reads back from its own folders: the pieces of one ganlab run's W&B
run (one per session: the first, and one per ``--resume``), the last step a piece logged, and
whether ``wandb sync`` has uploaded it.

No W&B process is needed for any of it: a run folder is read as it lies on disk, so that a
resumed run finds the pieces of a session that was killed before it could write ``run.json``,
and ``ganlab runs`` can say what was synced. The facts this relies on, from wandb 0.31's own
source (the ``wandb-0.31.0`` sdist on PyPI):

- Each ``wandb.init`` writes one folder, ``<dir>/wandb/offline-run-<YYYYmmdd_HHMMSS>-<id>/``
  (``run-...`` when online), holding the transaction log ``run-<id>.wandb``; ``wandb/latest-run``
  is a link to the newest (``wandb/sdk/wandb_settings.py``, ``sync_dir``).
- ``wandb sync`` marks an uploaded log by creating ``run-<id>.wandb.synced`` beside it
  (``core/internal/runsync/runsyncer.go``, ``markSynced``) and skips marked logs unless told
  ``--include-synced`` (``wandb/cli/beta_sync.py``, ``_is_synced``).
- The log is LevelDB's log format behind a 7-byte W&B header (``:W&B``, 0xBEE1, version 0):
  32 KiB blocks of chunks, each a CRC-32 of type and payload, a length, a type (full, first,
  middle, last), and the payload, a serialized ``wandb_internal_pb2.Record``
  (``core/pkg/leveldb/record.go``).
"""

from __future__ import annotations

import json
import re
import shlex
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ``offline-run-20261127_101500-ab12cd34`` or ``run-...`` (online): mode, start, id.
PIECE_NAME = re.compile(r"(?P<offline>offline-)?run-(?P<start>\d{8}_\d{6})-(?P<id>[A-Za-z0-9_-]+)")

BLOCK = 32 * 1024
CHUNK_HEADER = 7
WANDB_HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass(frozen=True)
class Piece:
    """The W&B folder of one session of a ganlab run."""

    path: Path  #: ``<run>/wandb/offline-run-<start>-<id>``
    run_id: str
    offline: bool
    start: str  #: ``YYYYmmdd_HHMMSS``, as W&B names the folder

    @property
    def log(self) -> Path:
        """The transaction log, ``run-<id>.wandb``, that ``wandb sync`` uploads."""
        return self.path / f"run-{self.run_id}.wandb"

    @property
    def has_run_record(self) -> bool:
        """Whether W&B wrote the run's record before the session ended (a session killed
        within seconds of starting may leave a bare header): without it there is nothing
        to upload."""
        return run_record(self.log) is not None

    @property
    def synced(self) -> bool:
        """Whether ``wandb sync`` uploaded this piece (it leaves ``.wandb.synced`` beside it)."""
        return self.log.with_name(self.log.name + ".synced").exists()


def pieces(run_dir: Path) -> list[Piece]:
    """The W&B pieces in a run folder, oldest first (W&B's ``latest-run`` link left out)."""
    found = []
    folder = run_dir / "wandb"
    if not folder.is_dir():
        return []
    for path in folder.iterdir():
        match = PIECE_NAME.fullmatch(path.name)
        if match is None or path.is_symlink() or not path.is_dir():
            continue
        piece = Piece(path, match["id"], bool(match["offline"]), match["start"])
        if piece.log.is_file():
            found.append(piece)
    return sorted(found, key=lambda p: (p.start, p.path.name))


def sync_commands(paths: Sequence[str | Path], cut: Sequence[str | Path] = ()) -> str:
    """``wandb sync`` of the given pieces, one command for the pieces up to and including
    each cut piece (`is_cut`) and one for the rest, joined by ``;``: a command stops at a cut
    piece, so the pieces after it need a command of their own."""
    groups: list[list[str | Path]] = [[]]
    for path in paths:
        groups[-1].append(path)
        if path in cut:
            groups.append([])
    return "; ".join(sync_command(group) for group in groups if group)


def sync_command(paths: Sequence[str | Path]) -> str:
    """``wandb sync`` of the given pieces, quoted for a POSIX shell.

    W&B uploads the pieces of one run one after the other in order of their start time,
    whatever order they are given in (``core/internal/runsync/runsyncoperation.go``,
    ``initAndPlan``).
    """
    return "wandb sync " + " ".join(shlex.quote(str(p)) for p in paths)


# --- the transaction log --------------------------------------------------------------------


def records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` file, as ``wandb_internal_pb2.Record`` messages, read a
    block at a time (a long run's log is large; its run record is at the start).

    Stops quietly where the log is cut (`is_cut`): the tail of a session that was killed
    while W&B was writing.
    """
    from wandb.proto import wandb_internal_pb2

    messages: Any = wandb_internal_pb2  # generated code, untyped for mypy
    for payload in _payloads(path):
        if payload is None:
            return
        record = messages.Record()
        record.ParseFromString(payload)
        yield record


def is_cut(path: Path) -> bool:
    """Whether a ``.wandb`` file ends inside a record (cut short, or failing its checksum):
    ``wandb sync`` uploads such a piece up to there, then fails it and syncs no later piece
    of the same run in that command (wandb 0.31, ``runsyncoperation.go``, ``Do``)."""
    return any(payload is None for payload in _payloads(path))


def _payloads(path: Path) -> Iterator[bytes | None]:
    """Each whole record's bytes, in order; then None if the log ends inside a record."""
    with path.open("rb") as file:
        if file.read(len(WANDB_HEADER)) != WANDB_HEADER:
            return
        pending: bytes | None = None  # the chunks so far of a record not yet whole
        block = file.read(BLOCK - len(WANDB_HEADER))  # blocks are aligned to the file's start
        while block:
            pos = 0
            while pos + CHUNK_HEADER <= len(block):  # a shorter tail is the block's padding
                crc, length, kind = struct.unpack("<IHB", block[pos : pos + CHUNK_HEADER])
                if crc == 0 and length == 0 and kind == 0:  # a zeroed block: W&B skips it
                    break
                chunk = block[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
                if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
                    yield None
                    return
                pos += CHUNK_HEADER + length
                if kind in (FULL, FIRST):
                    pending = b""
                pending = (pending or b"") + chunk
                if kind in (FULL, LAST):
                    yield pending
                    pending = None
            tail = block[pos:]
            block = file.read(BLOCK)
            if not block and (pending is not None or tail.strip(b"\0")):
                yield None  # the file ends in a record begun, or in a chunk's header


def last_step(path: Path) -> int | None:
    """The highest history ``_step`` a ``.wandb`` file holds (None: no history row)."""
    last = None
    for record in records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        for item in record.history.item:
            if (item.key or ".".join(item.nested_key)) == "_step":
                step = int(json.loads(item.value_json))
                last = step if last is None else max(last, step)
    return last


def run_record(path: Path) -> Any | None:
    """The first run record of a ``.wandb`` file: its id, name, group, tags, notes, and
    ``resume`` (set when ``wandb.init`` was asked to resume the run)."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run
    return None
