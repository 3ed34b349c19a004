"""``metrics.jsonl``: a run's logged rows, one strict JSON object per line, written as they
come (`MetricsLog`), replaced whole on a resume (`write_metrics`) and read back
(`read_metrics`) by ``--resume``, ``compare``, ``runs`` and the Python API.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ganlab.errors import GanlabError
from ganlab.files.atomic import write_atomic

#: How ``metrics.jsonl`` spells the numbers that JSON has no literal for (a diverged run's
#: losses and scores): as strings, which strict readers (jq, JavaScript) accept, and which
#: `read_metrics` turns back into floats. Finite numbers are written as ``json.dumps`` does.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def metrics_line(row: dict[str, Any]) -> str:
    """One row of ``metrics.jsonl`` as its line of strict JSON (with the newline)."""
    try:
        return json.dumps(row, allow_nan=False) + "\n"
    except ValueError:  # a value that is not finite: spelled as `NON_FINITE` says
        spelled = {key: _spelled(value) for key, value in row.items()}
        return json.dumps(spelled, allow_nan=False) + "\n"


def _spelled(value: Any) -> Any:
    """A value of a metrics row, a number that is not finite spelled as `NON_FINITE` says."""
    if not isinstance(value, float) or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


class MetricsLog:
    """``metrics.jsonl``: one JSON object per logged row (`metrics_line`), appended and
    flushed as it comes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(metrics_line(row))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_metrics(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``metrics.jsonl`` with ``rows`` (atomically)."""
    write_atomic(path, "".join(metrics_line(row) for row in rows))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's ``metrics.jsonl``; values spelled as `NON_FINITE` says
    (and the bare ``NaN`` of files from before ganlab wrote strict JSON) are floats again.

    A last line without its newline that does not parse is a row cut off by a run that was
    killed mid-write: it is left out, and one line on stderr names the file. Any other line
    that is not a JSON object with a ``step`` is an error that names the file and line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GanlabError(f"{path}: missing; every run folder holds its metrics.jsonl.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GanlabError(f"{path}: cannot be read ({' '.join(str(exc).split())}).") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: cut off mid-write
                print(
                    f"ganlab: {path}, line {number}: the last row is cut off (the run was "
                    "stopped while writing it); it is left out.",
                    file=sys.stderr,
                )
                continue
            raise GanlabError(f"{path}, line {number}: not JSON ({exc.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise GanlabError(f"{path}, line {number}: expected a JSON object with a step.")
        rows.append({key: _number(value) for key, value in row.items()})
    return rows


def _number(value: Any) -> Any:
    """A value of a metrics row, with the spellings of `NON_FINITE` read as floats."""
    return NON_FINITE.get(value, value) if isinstance(value, str) else value
