"""Recipes that inherit: ``base: other.yaml`` at the top of a recipe file.

A recipe names at most one base, by a path relative to its own file; the base may name its
own, and so on (a cycle is refused, naming the chain). The files are merged from the first
base to the file given:

- mappings merge key by key (``train: {steps: 100}`` changes one key of the base's train);
- any other value replaces the base's whole, lists included (``callbacks:`` lists them all);
- ``key: !delete`` removes a key the base sets, so that its default applies again.

This is mmengine's ``_base_`` and Hydra's defaults list cut down to one line: one base per
file, no groups, no interpolation. The merged recipe has no ``base:`` key: a run folder's
``recipe.yaml`` is flat and complete. `RecipeSources` remembers which file (and line) set
each key, so that a validation error names the file that holds the bad value.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ganlab.errors import GanlabError
from ganlab.recipe.yamlfile import DELETE, DuplicateKeyError, load_yaml_lines

#: The key that names a recipe's base.
BASE_KEY = "base"

#: A key's place from the recipe's root: ("train", "steps"); list entries by index ("0").
KeyPath = tuple[str, ...]
#: A file as the user named it and the line (from 1) in it, where the parser knows it.
Place = tuple[str, int | None]


class RecipeSources:
    """Where each key of a merged recipe was set: ``file:line`` by dotted path.

    ``str(sources)`` is the file given (what an error names when no file set the key, such as
    a ``--set`` override or a missing key); `of` is the place of one key.
    """

    def __init__(self, given: str, places: dict[KeyPath, Place] | None = None) -> None:
        self.given = given
        self.places: dict[KeyPath, Place] = places or {}

    def file_of(self, path: Sequence[str]) -> str:
        """The file that set ``path`` or the nearest section above it (else the file given)."""
        return self._place(path)[0]

    def of(self, path: Sequence[str]) -> str:
        """``file:line`` that set ``path`` or the nearest section above it that was set."""
        shown, line = self._place(path)
        return shown if line is None else f"{shown}:{line}"

    def _place(self, path: Sequence[str]) -> Place:
        path = tuple(path)
        # An error about a whole section (``optimizers.generator: betas must ...``) after a
        # ``--set`` inside it is about what --set gave, not about the file's line.
        overridden = (self.given, None)
        if any(p[: len(path)] == path and w == overridden for p, w in self.places.items()):
            return (self.given, None)
        for end in range(len(path), 0, -1):
            if path[:end] in self.places:
                return self.places[path[:end]]
        return (self.given, None)

    def overridden(self, path: Sequence[str]) -> None:
        """``path`` (and everything under it) was set by ``--set``: errors name the file
        given, without a line."""
        _forget(self.places, tuple(path))
        self.places[tuple(path)] = (self.given, None)

    def __str__(self) -> str:
        return self.given


def place_of(source: str | RecipeSources, path: Sequence[str]) -> str:
    """What an error about ``path`` names as its place: the file (and line) that set it."""
    return source.of(path) if isinstance(source, RecipeSources) else source


def read_recipe(path: Path) -> tuple[dict[str, Any], RecipeSources]:
    """The recipe in ``path`` merged onto its bases, and where each of its keys was set."""
    shown = str(path)
    chain: list[tuple[str, dict[str, Any], dict[KeyPath, int]]] = []
    seen: dict[Path, str] = {}
    while True:
        raw, lines = _read_one(path, shown)
        seen[path.resolve()] = shown
        chain.append((shown, raw, lines))
        base = raw.pop(BASE_KEY, None)
        if base is None:
            break
        where = f"{shown}:{lines.get((BASE_KEY,), 1)}"
        if not isinstance(base, str) or not base.strip():
            raise GanlabError(
                f"{where}: base: give the path of one recipe file, relative to this one "
                f"(e.g. base: quickstart.yaml), got {base!r}."
            )
        path = path.parent / Path(base).expanduser()
        shown = os.path.normpath(os.path.join(os.path.dirname(shown), base))
        if path.resolve() in seen:
            cycle = " -> ".join([*seen.values(), shown])
            raise GanlabError(
                f"{where}: base: the recipes name each other in a cycle ({cycle}). "
                "Remove the base: line from one of them."
            )
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "not found"
            raise GanlabError(
                f"{where}: base: {base!r} {what} (looked for {shown}). The path is relative "
                "to the recipe that names it; give the path of a .yaml file."
            )
    merged: dict[str, Any] = {}
    places: dict[KeyPath, Place] = {}
    for shown, raw, lines in reversed(chain):
        _merge(merged, raw, (), shown, lines, places)
    return merged, RecipeSources(chain[0][0], places)


def _read_one(path: Path, shown: str) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """One recipe file's mapping and the line of each key, or the error that names the line."""
    try:
        text = path.read_text(encoding="utf-8")
        raw, lines = load_yaml_lines(text)
    except DuplicateKeyError as exc:
        raise GanlabError(f"{shown}:{exc.second.line + 1}: {exc.message()}.") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        # YAML wants a space after a tag: {ngf: !delete} is a syntax error, {ngf: !delete } not.
        hint = (
            " A tag needs a space after it: write `!delete }` (or the key on a line of its own)."
            if "!delete}" in line or "!delete," in line
            else " Fix the file at that line."
        )
        raise GanlabError(f"{where}: this is not valid YAML ({exc.problem}).{hint}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GanlabError(f"{shown}: cannot read this recipe: {exc}.") from None
    if raw is None:
        return {}, lines
    if not isinstance(raw, dict):
        raise GanlabError(f"{shown}: a recipe must be a mapping of keys, got {type(raw).__name__}.")
    return raw, lines


def _merge(
    into: dict[str, Any],
    raw: dict[str, Any],
    path: KeyPath,
    shown: str,
    lines: dict[KeyPath, int],
    places: dict[KeyPath, Place],
) -> None:
    """Merge one file's mapping ``raw`` (at ``path``) into ``into``, noting where keys were set."""
    for key, value in raw.items():
        here = (*path, str(key))
        place = (shown, lines.get(here))
        where = shown if place[1] is None else f"{shown}:{place[1]}"
        if value is DELETE:
            if key not in into:
                raise GanlabError(
                    f"{where}: {'.'.join(here)}: !delete removes a key that a base sets, and "
                    "no base sets this one. Remove the line (or fix the key's spelling)."
                )
            del into[key]
            _forget(places, here)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            places[here] = place
            _merge(into[key], value, here, shown, lines, places)
        else:
            _refuse_nested_delete(value, here, shown, lines)
            into[key] = copy.deepcopy(value)
            _forget(places, here)
            places.update({p: (shown, n) for p, n in lines.items() if p[: len(here)] == here})
            places[here] = place


def _forget(places: dict[KeyPath, Place], path: KeyPath) -> None:
    for known in [p for p in places if p[: len(path)] == path]:
        del places[known]


def _refuse_nested_delete(
    value: Any, top: KeyPath, shown: str, lines: dict[KeyPath, int], path: KeyPath | None = None
) -> None:
    """``!delete`` inside a value that replaces the base's ``top`` whole (a list, or a
    mapping where the base has none) would delete nothing: refuse it where it is written."""
    path = top if path is None else path
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return
    for key, item in items:
        here = (*path, str(key))
        if item is DELETE:
            where = f"{shown}:{lines[here]}" if here in lines else shown
            raise GanlabError(
                f"{where}: {'.'.join(here)}: !delete removes a key that a base sets; here it "
                f"is inside a value that replaces {'.'.join(top)} whole (a list, or a section "
                "no base has), so there is nothing to delete. Remove it."
            )
        _refuse_nested_delete(item, top, shown, lines, here)
