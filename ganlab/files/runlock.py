"""One writer per run folder: `RunLock`, the OS lock on a run folder's ``run.lock`` that the
process training the run holds for its life, and what is told from it (`run_status`: a run
whose run.json says ``running`` but whose lock nobody holds was killed). `try_lock` and
`process_alive` also serve other files named by a process (the data cache's temporaries,
``ganlab sample``'s staging folders).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganlab.errors import GanlabError

#: The lock file of a run folder (`RunLock`): held by the one process that trains the run.
LOCK = "run.lock"

#: On Windows, where a locked byte cannot be read by other processes, the byte locked lies
#: far beyond the holder's record at the start of the file (locking past the end is allowed).
WINDOWS_LOCK_AT = 1 << 30
#: How long `RunLock.take` retries a lock held for an instant by a reader (`RunLock.holder`).
PROBE_GRACE_SECONDS = 0.5
#: The descriptors of the locks this process holds (`RunLock`).
_held: set[int] = set()


def _drop_held_in_child() -> None:
    """In a forked child (a data loader worker): close the copies of this process's lock
    descriptors. A forked child shares its parent's ``flock``; without this, the workers of
    a killed trainer, which outlive it by a few seconds, would keep its run folder locked.
    (Closing a copy releases nothing while the parent keeps its own.)"""
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_drop_held_in_child)


@dataclass(frozen=True)
class Holder:
    """The process that holds a run folder's lock, as its record in ``run.lock`` says."""

    pid: int | None
    host: str | None
    since: str | None

    def __str__(self) -> str:
        if self.pid is None:
            return "another process (it has not recorded its pid yet)"
        since = f", since {self.since}" if self.since else ""
        return f"process {self.pid} on host {self.host or 'unknown'}{since}"


class RunLock:
    """One writer per run folder: ``run.lock``, locked by the operating system for as long as
    the process that trains the run lives, with that process's pid, host and start time
    written in it (for the message that refuses a second writer).

    The OS releases the lock when the process ends, however it ends (SIGKILL, a lost
    machine's reboot), so a killed run leaves nothing to clean up: the next ``--resume``
    simply takes the lock. POSIX systems use ``flock`` (on Linux also over NFS, where the
    kernel maps it to NFS's own locks); Windows locks one byte with ``msvcrt.locking``. On
    a file system with no locks at all, the record alone decides: a holder on this machine
    whose pid is gone is taken over; one on another machine is trusted to be alive.

    The file is never deleted (deleting a lock file lets two processes lock two different
    files of one name); after a run it names the last process that trained it.
    """

    def __init__(self, path: Path, fd: int | None, found: bytes = b"") -> None:
        self.path = path
        self._fd = fd  #: the locked file, or None once released
        self._found = found  #: what the file held before this process took the lock

    @classmethod
    def take(cls, run_dir: Path) -> RunLock:
        """Lock ``run_dir`` for this process, or raise a `GanlabError` that names the live
        process that holds it. Nothing else in the folder is read or written first."""
        path = run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            # A folder this process may not write: the first file it writes says so, with
            # nothing written. It may still lock what exists (a lock needs no write access).
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return cls(path, None)
        try:
            # `ganlab runs` may be looking at it for an instant (`holder`).
            deadline = time.monotonic() + PROBE_GRACE_SECONDS
            while not (locked := try_lock(fd)) and time.monotonic() < deadline:
                time.sleep(0.02)
        except OSError as exc:
            if exc.errno not in NO_LOCKS:
                os.close(fd)
                raise
            locked = not _record_alive(read_holder(path))  # no OS locks here: the record decides
        if not locked:
            os.close(fd)
            raise GanlabError(
                f"{run_dir} is being trained by {read_holder(path)}: a run folder has one "
                "writer at a time. Wait for that process to end (or stop it), then run "
                f"ganlab run --resume {run_dir} again."
            )
        found = path.read_bytes()
        record = {"pid": os.getpid(), "host": platform.node(), "since": _now()}
        with contextlib.suppress(OSError):  # opened read-only (above): the lock alone
            _rewrite(fd, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
        _held.add(fd)
        return cls(path, fd, found)

    def put_back(self) -> None:
        """Write back the record the file held before `take` (still holding the lock), so
        that a resume refused before it wrote anything leaves the folder byte for byte."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                _rewrite(self._fd, self._found)

    def release(self) -> None:
        """Give the lock back (the OS does the same when the process ends)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _held.discard(fd)
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the only descriptor of the file releases its lock

    @staticmethod
    def holder(run_dir: Path) -> Holder | None:
        """The live process that holds ``run_dir``'s lock, or None when none does (a run
        that ended, was killed, or predates the lock file)."""
        path = run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            held = _is_locked(fd)
        except OSError:  # no locks on this file system: the record decides
            held = _record_alive(read_holder(path))
        finally:
            os.close(fd)
        return read_holder(path) if held else None


def _rewrite(fd: int, data: bytes) -> None:
    """Replace the contents of the open file ``fd`` with ``data`` (a few bytes: a reader
    that sees them half-written reads no holder, `read_holder`)."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


#: errno values that mean "this file system has no locks".
NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}


def try_lock(fd: int) -> bool:
    """Lock ``fd``'s file exclusively, without waiting: False when another open file holds
    it. An OSError with an errno in `NO_LOCKS`: the file system cannot lock."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, WINDOWS_LOCK_AT, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLK):
                return False
            raise
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_locked(fd: int) -> bool:
    """Whether another open file holds the lock of ``fd``'s file: tried and given back at
    once (on POSIX as a shared lock, which never stops another reader)."""
    if sys.platform == "win32":
        import msvcrt

        if not try_lock(fd):
            return True
        os.lseek(fd, WINDOWS_LOCK_AT, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def read_holder(path: Path) -> Holder:
    """The record in a lock file (fields it lacks, or cannot be read, are None)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        record = None  # being written, or never was
    if not isinstance(record, dict):
        record = {}
    pid = record.get("pid")
    return Holder(
        pid if isinstance(pid, int) else None,
        str(record["host"]) if record.get("host") else None,
        str(record["since"]) if record.get("since") else None,
    )


def _record_alive(holder: Holder) -> bool:
    """On a file system without locks: whether the recorded holder may still be alive. Not
    when there is none, or it is this process, or a process of this host whose pid is gone;
    one on another host cannot be checked from here, nor one on Windows (where
    ``os.kill(pid, 0)`` would end it)."""
    if holder.pid is None or holder.pid == os.getpid():
        return False
    return holder.host != platform.node() or process_alive(holder.pid)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` may be running on this machine: False only when it surely
    is not. (On Windows that cannot be asked safely, ``os.kill(pid, 0)`` would end it: True.)
    Stale files named by a pid (a dead build's cache temporary, a killed ``sample``'s
    staging folder) are removed when it says False."""
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists, but belongs to someone else
    return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_status(folder: Path, info: Mapping[str, Any]) -> str | None:
    """A run's status told from the facts: run.json's, except that a run it calls
    ``running`` whose lock no live process holds was killed (SIGKILL, a lost machine):
    ``killed``. (A folder without ``run.lock`` was made by a ganlab from before the lock,
    which recorded no one: its run.json is all there is to go by.)"""
    status = info.get("status")
    if status == "running" and (folder / LOCK).is_file() and RunLock.holder(folder) is None:
        return "killed"
    return status if isinstance(status, str) else None
