"""SIGINT and SIGTERM while a run starts and while it trains.

Until the run trains, a signal stops the command at once (`interrupted_at_once`), each
phase's guards running on the way out; while it trains, the first signal asks the loop to
stop after its step and write a checkpoint (`signals_stop`), a second one stops at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from ganlab.errors import RunInterrupted

#: The signals that stop a run: Ctrl-C and a scheduler's (or `kill`'s) polite request.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any] | int | None


class Signalled(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised at once where the main thread is (`interrupted_at_once`).

    A KeyboardInterrupt (what Ctrl-C raises without ganlab's handlers), so that no
    ``except Exception`` on the way (in a plugin's code, say) swallows it, every clean-up
    (``finally``, ``except BaseException``) runs, and a plugin's ``ganlab_run_error`` sees
    what it always saw for a signal that stops a run at once.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def handling_signals(
    handler: Callable[[int, FrameType | None], Any],
) -> Iterator[dict[int, Handler]]:
    """`STOP_SIGNALS` go to ``handler`` in the block (and to the handlers before it after);
    yields the handlers it replaced. Handlers can only be set from the main thread: in
    another thread the block runs with the signals as they are."""
    previous: dict[int, Handler] = {}
    if threading.current_thread() is not threading.main_thread():
        yield previous
        return
    owner = os.getpid()

    def dispatch(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            # A forked child (a data loader worker) inherits the handler: there the signal
            # does what it does without one, so that such a worker ends as it always did.
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        handler(signum, frame)

    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, dispatch)
        yield previous
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


@contextlib.contextmanager
def interrupted_at_once(left: Callable[[], str]) -> Iterator[None]:
    """Until a run trains (plugins loading, the data set decoding, the models building),
    SIGINT and SIGTERM stop the command at once: `Signalled` is raised wherever the main
    thread is, so that what guards each phase runs on the way out (a new run folder is
    removed, a resumed run's run.json is not left ``running``, temporary files go), then it
    becomes one `RunInterrupted` (exit 128 + signal: 130, 143) whose message is the signal's
    name and ``left()``: when it stopped and what it left behind. `signals_stop` takes over
    while the run trains.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Signalled(signum)

    try:
        with handling_signals(on_signal):
            yield
    except Signalled as exc:
        raise RunInterrupted(f"{exc}: {left()}.", exc.signum) from None


@contextlib.contextmanager
def signals_stop(stop: Callable[[int], None]) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM call ``stop(signum)`` instead of stopping at once, so the
    run can finish its step and write a checkpoint; a second one goes to the handler that
    was there before (`interrupted_at_once`'s, which stops at once)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop(signum)
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))

    with handling_signals(on_signal) as previous:
        yield
