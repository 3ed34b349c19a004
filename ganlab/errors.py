"""The error types for what the user can fix, and the exit codes the CLI gives them.

Exit codes (docs/errors.md):

* 2, `GanlabError`: a mistake in what the user gave ganlab (a recipe, an option, the data, a
  checkpoint, a folder that cannot be written, a plugin that cannot be loaded). The message
  says what is wrong, where, and what to do.
* 1, `PluginError`: a plugin's code failed while ganlab used it (it raised, or returned
  something its contract forbids). The message names the component, its kind, the plugin and
  the plugin's own file and line. An unexpected error inside ganlab itself also exits 1.
* 128 + N, `RunInterrupted`: a run stopped by signal N (130 for Ctrl-C, 143 for SIGTERM)
  after writing a checkpoint.

The CLI prints one line, ``ganlab: error: <message>``, and no traceback unless ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanlabError(Exception):
    """A mistake the user can fix. The message says what is wrong, where, and what to do."""

    #: the CLI's exit code for this error
    exit_code = 2


class PluginError(GanlabError):
    """A plugin's code failed while ganlab used it: a bug to fix in the plugin (exit 1)."""

    exit_code = 1


class InternalError(GanlabError):
    """An unexpected exception inside ganlab itself: a bug to report (exit 1)."""

    exit_code = 1


class RunInterrupted(GanlabError):
    """A run stopped by SIGINT or SIGTERM after writing a checkpoint (exit 128 + signal)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""
