"""One step axis: every W&B history row at its training step, in step order.

Every row carries the training step as ``train/step``, which the logger declares as the
x-axis of every chart (``define_metric(..., step_metric="train/step")``, W&B's public way
to chart against a step of one's own). W&B's own ``_step`` counts the rows it was given
and is left to W&B: the logger never passes ``step=``, so W&B neither drops a row whose
``_step`` it has seen (online) nor renumbers it when ``wandb sync`` uploads a resumed
piece. Each training step is one row: what arrives for a step is gathered and handed to
W&B when the next step begins (or the piece ends).

The runner hands its rows over in step order, but in blocks (``train.log_every``), while
callbacks announce their images at once: the sample grid of step 100 arrives before the
rows 51..100. `History` holds such files back until the rows have caught up with their
step, so that the grid joins row 100 and the rows stay in step order.

After ``--resume`` the run repeats the steps between its checkpoint and where it was
stopped. Nothing is logged at or below ``floor``, the last step an earlier piece of the
same W&B run surely holds (`ganlab_plugins.wandb.pieces.floor`). For the same reason a
resumed run logs no file of a step up to its checkpoint's (``resumed_at``): the session
that reached that step logged them, and the files a callback writes again when a run
starts (the ``figures`` callback's real images) are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

STEP = "train/step"  #: a metric in every row: the training step (W&B's x-axis for charts)


@dataclass(order=True)
class _Held:
    step: int
    order: int  # announcement order among files of one step
    values: dict[str, Any] | None = field(compare=False)  # a row's worth of media, or
    action: Callable[[], None] | None = field(compare=False)  # something to do (an artifact)


class History:
    """The W&B history of one piece of a ganlab run, written through ``wb.log``."""

    def __init__(self, wb: Any, floor: int | None, resumed_at: int = 0) -> None:
        self.wb = wb
        self.floor = floor  #: the last step an earlier piece of this W&B run logged
        self.resumed_at = resumed_at  #: the checkpoint's step, for a resumed run (else 0)
        self.last: int | None = None  #: the last step given to W&B in this piece
        self.open: dict[str, Any] = {}  #: the row of step `last`, not handed to W&B yet
        self.held: list[_Held] = []
        self.announced = 0
        self.dropped: list[str] = []  #: what could not go to its step (see `media`)

    def row(self, step: int, values: dict[str, Any]) -> None:
        """A row of the runner's stream (metrics.jsonl's row at ``step``)."""
        self.release(step)
        self._log(step, values)

    def media(self, step: int, values: dict[str, Any]) -> None:
        """Images or a video that belong to ``step``: logged once the rows reach it."""
        if self.resumed_at and step <= self.resumed_at:
            return  # the session that reached this step logged its files
        if self.last is not None and step <= self.last:
            if step < self.last:  # only a plugin logging rows ahead of the run can cause it
                self.dropped.append(f"{', '.join(values)} of step {step}")
                return
            self._log(step, values)  # joins the row of its step, which is still open
            return
        self.announced += 1
        self.held.append(_Held(step, self.announced, values, None))
        self.held.sort()

    def after(self, step: int, action: Callable[[], None]) -> None:
        """Do ``action`` once the rows reach ``step``."""
        if self.last is not None and step <= self.last:
            action()
            return
        self.announced += 1
        self.held.append(_Held(step, self.announced, None, action))
        self.held.sort()

    def release(self, upto: int | None = None) -> None:
        """Log what was held for steps up to ``upto`` (everything when None), in order."""
        while self.held and (upto is None or self.held[0].step <= upto):
            held = self.held.pop(0)
            if held.values is not None:
                self._log(held.step, held.values)
            elif held.action is not None:
                held.action()

    def close(self) -> None:
        """Hand the open row to W&B (the piece ends, or a later step begins)."""
        if self.open:
            self.wb.log(self.open)
            self.open = {}

    def _log(self, step: int, values: dict[str, Any]) -> None:
        if self.floor is not None and step <= self.floor:
            return  # an earlier piece of this W&B run logged this step
        if step != self.last:
            self.close()
            self.open = {STEP: step}
        self.open.update(values)
        self.last = step

    def warn_dropped(self) -> None:
        """Say what could not be logged at its step (`media`)."""
        if self.dropped:
            click.echo(
                "W&B: not logged, because rows of later steps were logged first: "
                + "; ".join(self.dropped),
                err=True,
            )
