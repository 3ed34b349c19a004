"""Who is to blame for an exception raised while ganlab used a plugin's code.

A plugin bug becomes one `PluginError` (exit 1) that names the component (its kind, its name,
its place in the recipe), the plugin that registered it and the line of the plugin's own code
where it failed, with the exception's text; ``--debug`` shows the whole traceback. Two kinds
of failure are not plugin bugs and keep exit 2: running out of memory (a batch or image size
too large for the machine) and file-system errors (handled where files are written).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganlab.errors import GanlabError, InternalError, PluginError
from ganlab.plugin_manager.registry import Component, singular

#: (file, line) pairs of a traceback, outermost first.
Frames = Sequence[tuple[str, int]]

#: What to do about a plugin bug.
FIX = "Fix the plugin, or leave it out of the recipe"
#: The advice of every out-of-memory message.
SMALLER = (
    "Use a smaller train.batch_size or a smaller image size (the data set's image_size), "
    "or a smaller model."
)


def describe(component: Component, place: str) -> str:
    """``callback 'samples' (callbacks.1, plugin ganlab_plugins.callbacks.samples)``: a component as
    messages name it (the place only where it says more than the kind)."""
    where = f"{place}, " if "." in place else ""
    return f"{singular(component.kind)} {component.name!r} ({where}plugin {component.plugin})"


def code_home(obj: object) -> Path | None:
    """Where the code of ``obj`` (a function, class or instance) lives: the folder of its
    top-level package, or its module's file for a module outside any package."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    module_file = getattr(module, "__file__", None)  # built-in modules have none
    if module is None or not module_file:
        return None
    top = sys.modules.get(module.__name__.split(".")[0])
    top_file = getattr(top, "__file__", None)
    if top is not None and getattr(top, "__path__", None) and top_file:
        return Path(top_file).parent
    return Path(module_file)


def frames_of(exc: BaseException) -> list[tuple[str, int]]:
    """The (file, line) of every frame of ``exc``, outermost first, including the frames of a
    data-loader worker process that raised it (see `ganlab.data.batches.LoaderFailure`)."""
    frames = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(exc.__traceback__)]
    return frames + list(getattr(exc, "worker_frames", ()))


def location(frames: Frames, home: Path | None) -> str | None:
    """``file:line`` of the innermost frame in ``home`` (a file, or a folder of files)."""
    if home is None:
        return None
    for filename, line in reversed(frames):
        path = Path(filename)
        if path == home or home in path.parents:
            return f"{filename}:{line}"
    return None


def definition(func: Callable[..., Any]) -> str | None:
    """``file:line`` where a function or class is defined, when Python can tell."""
    with contextlib.suppress(TypeError, OSError):
        func = inspect.unwrap(func)
        return f"{inspect.getsourcefile(func)}:{inspect.getsourcelines(func)[1]}"
    return None


def called_code(obj: Callable[..., Any]) -> Callable[..., Any]:
    """The function that runs when ``obj`` is called: itself, or its class's ``__call__``."""
    return obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__


def is_out_of_memory(exc: BaseException) -> bool:
    """numpy's and Python's MemoryError, torch's CUDA out-of-memory and CPU allocator errors."""
    # torch's error class, if torch is loaded: without torch no torch error can be raised,
    # and an error message need not import it (`ganlab --help` imports no torch).
    torch_oom = getattr(sys.modules.get("torch"), "OutOfMemoryError", MemoryError)
    return isinstance(exc, (MemoryError, torch_oom)) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
    )


def one_line(exc: BaseException) -> str:
    """The exception's text on one line (its first line when it has several)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else "(no message)"


def out_of_memory(action: str, exc: BaseException) -> GanlabError:
    """The error for running out of memory ``action`` (``while building ...``; may be "")."""
    return GanlabError(f"Out of memory{' ' * bool(action)}{action}: {one_line(exc)}. {SMALLER}")


def as_ganlab_error(exc: Exception) -> GanlabError:
    """``exc`` as the one message a user sees: a `GanlabError` as it is; a file-system error
    or lack of memory with what to do; anything else as a bug to report (exit 1)."""
    if isinstance(exc, GanlabError):
        return exc
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return GanlabError(
            f"{where}{exc.strerror or exc}. Check that the path exists, that you may read and "
            "write it, and that its disk has free space."
        )
    if is_out_of_memory(exc):
        return out_of_memory("", exc)
    frames = frames_of(exc)
    at = f" at {frames[-1][0]}:{frames[-1][1]}" if frames else ""
    return InternalError(
        f"internal error: {type(exc).__name__}: {one_line(exc)}{at}. This is a bug in ganlab "
        "(or in a plugin it could not name): please report it with the output of the same "
        "command with --debug."
    )


def failure(subject: str, action: str, exc: BaseException, home: Path | None) -> GanlabError:
    """The error for ``exc``, raised by the code of ``subject`` (see `describe`) ``action``
    (``while building it``, ``in ganlab_step_end at step 2``)."""
    if is_out_of_memory(exc):
        return out_of_memory(f"{action} ({subject})", exc)
    where = location(frames_of(exc), home)
    at = f" at {where}" if where else ""
    return PluginError(
        f"{subject} failed {action}: {type(exc).__name__}: {one_line(exc)}{at}. {FIX} "
        "(--debug shows the traceback)."
    )


def broken_contract(subject: str, problem: str, code: Callable[..., Any] | None) -> PluginError:
    """The error for a plugin's code that returned something its contract forbids."""
    where = definition(code) if code is not None else None
    at = f" ({where})" if where else ""
    return PluginError(f"{subject} {problem}{at}. {FIX}.")


@contextlib.contextmanager
def blamed_on(component: Component, place: str, action: str) -> Iterator[None]:
    """Turn an exception raised inside the block into the error of ``component``.

    A `GanlabError` (the plugin saying what the user did wrong) and an ``OSError`` (the file
    system, handled where files are written) pass through unchanged.
    """
    try:
        yield
    except (GanlabError, OSError):
        raise
    except Exception as exc:
        home = code_home(component.build)
        raise failure(describe(component, place), action, exc, home) from exc


@dataclass(frozen=True)
class Suspect:
    """Code that may have raised: a component of a run, or a plugin's hook implementation."""

    subject: str  #: how messages name it (`describe`)
    home: Path | None  #: where its code lives (`code_home`)
    hook: str | None = None  #: the hook, for a hook implementation


def find_culprit(
    exc: BaseException, by_object: Mapping[int, Suspect], by_code: Mapping[Any, Suspect]
) -> tuple[Suspect, str | None] | None:
    """Whose code raised ``exc``, and through which hook (None: no hook).

    The innermost frame of its traceback that runs a method of a suspect object (found by
    the id of its ``self``) or a suspect function (found by its code object): the component
    closest to the failure, so a generator that fails while a callback samples from it is
    blamed, not the callback.
    """
    found, hook = None, None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        suspect = by_code.get(frame.f_code) or by_object.get(id(frame.f_locals.get("self")))
        if suspect is not None:
            found, hook = suspect, suspect.hook or hook
    return (found, hook) if found is not None else None
