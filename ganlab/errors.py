"""The one error type for user mistakes.

Anything the user can fix (a recipe, a data folder, a plugin, a checkpoint) raises
`GanlabError`. The CLI prints its message and exits with code 2, without a traceback;
every other exception is a bug in ganlab or in a plugin and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanlabError(Exception):
    """A mistake the user can fix. The message says what is wrong, where, and what to do."""

    #: the CLI's exit code for this error
    exit_code = 2


class RunInterrupted(GanlabError):
    """A run stopped by SIGINT or SIGTERM after writing a checkpoint (exit 128 + signal)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""
