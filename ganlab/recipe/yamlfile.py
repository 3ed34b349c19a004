"""YAML as ganlab reads and writes it (recipes, ``--set`` values, run folders' recipe.yaml).

`RecipeLoader` is PyYAML's safe loader, except that a key given twice in one mapping is an
error rather than the last one silently winning, and ``1e-4`` is a float as in YAML 1.2;
`RecipeDumper` writes what it reads back unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

#: Floats as YAML 1.2 writes them that YAML 1.1 (PyYAML) reads as strings: an exponent
#: without a decimal point (``1e-4``, ``3E5``) or without its sign (``1.5e3``). Numbers are
#: strict in recipes, so ``lr: 1e-4`` must arrive as the float it looks like.
_FLOAT_1_2 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NOT_COMPARED = object()  # a key that is not a scalar (a list or mapping as a key)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping. ``path`` is the key's dotted place from the
    document's root (list entries by index); ``first`` and ``second`` mark both keys."""

    def __init__(self, path: tuple[str, ...], first: yaml.Mark, second: yaml.Mark) -> None:
        super().__init__(None, None, f"{'.'.join(path)} appears twice", second)
        self.path, self.first, self.second = path, first, second

    def message(self, prefix: tuple[str, ...] = (), one_line: bool = False) -> str:
        """``train.steps appears twice (lines 9 and 14); keep one``. ``prefix`` goes before
        the path; in ``one_line`` text (a ``--set`` value) the places are columns."""
        columns = f"columns {self.first.column + 1} and {self.second.column + 1}"
        if one_line:
            where = columns
        elif self.first.line == self.second.line:
            where = f"line {self.first.line + 1}, {columns}"
        else:
            where = f"lines {self.first.line + 1} and {self.second.line + 1}"
        return f"{'.'.join((*prefix, *self.path))} appears twice ({where}); keep one"

    def __str__(self) -> str:
        return self.message()


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader for recipes: refuses a key that appears twice in one mapping
    (`DuplicateKeyError`) and reads ``1e-4`` as a float, as YAML 1.2 does.

    Merge keys (``<<: *base``) still work: a key of the mapping itself overrides one merged
    into it, as YAML intends; only a key written twice in the same mapping is refused.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        self._refuse_duplicate_keys(node)
        return super().construct_document(node)

    def _refuse_duplicate_keys(self, root: yaml.Node) -> None:
        # Checked on the node tree before anything is built, because only there is the
        # whole path from the root known; iterative, so deep documents cannot overflow.
        stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
        seen: set[int] = set()
        while stack:
            node, path = stack.pop()
            if id(node) in seen:  # an alias: checked where its anchor is
                continue
            seen.add(id(node))
            children: list[tuple[yaml.Node, tuple[str, ...]]] = []
            if isinstance(node, yaml.MappingNode):
                first: dict[Any, yaml.Mark] = {}
                for key_node, value_node in node.value:
                    if key_node.tag == _MERGE_TAG:
                        children.append((value_node, path))
                        continue
                    key = self._key(key_node)
                    if key is not _NOT_COMPARED:
                        if key in first:
                            raise DuplicateKeyError(
                                (*path, str(key)), first[key], key_node.start_mark
                            )
                        first[key] = key_node.start_mark
                    children.append((value_node, (*path, str(key))))
            elif isinstance(node, yaml.SequenceNode):
                children = [(item, (*path, str(i))) for i, item in enumerate(node.value)]
            stack.extend(reversed(children))  # so the first duplicate in the file is named

    def _key(self, node: yaml.Node) -> Any:
        """A scalar key's value (``1`` and ``"1"`` differ), or `_NOT_COMPARED` for any other."""
        if not isinstance(node, yaml.ScalarNode):
            return _NOT_COMPARED  # a list or mapping as a key: PyYAML refuses it later
        key = self.construct_object(node)
        try:
            hash(key)
        except TypeError:
            return _NOT_COMPARED
        return key


RecipeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789."))


class RecipeDumper(yaml.SafeDumper):
    """PyYAML's safe dumper with `RecipeLoader`'s idea of a float, so that a string such as
    ``"1e5"`` is written quoted and reads back as the same string."""


RecipeDumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789."))


class _Delete:
    """The value of a key written ``key: !delete``: remove the key its base recipe sets."""

    def __repr__(self) -> str:
        return "!delete"


#: ``!delete``, the value that removes a key a base recipe sets (`ganlab.recipe.base`).
DELETE: Any = _Delete()
RecipeLoader.add_constructor("!delete", lambda loader, node: DELETE)


def load_yaml(text: str) -> Any:
    """Parse YAML text with `RecipeLoader`; raises PyYAML's errors, `DuplicateKeyError` among
    them, for text that is not valid YAML or has a key twice in one mapping."""
    return yaml.load(text, Loader=RecipeLoader)


def dump_yaml(data: Any) -> str:
    """YAML text that `load_yaml` reads back as ``data``, keys in their order."""
    return yaml.dump(data, Dumper=RecipeDumper, sort_keys=False)


def load_yaml_lines(text: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """`load_yaml`, and the line (from 1) where each key of the document is written, by its
    path from the root (list entries by index): ``{("train", "steps"): 27, ...}``."""
    loader = RecipeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: dict[tuple[str, ...], int] = {}
    stack: list[tuple[yaml.Node | None, tuple[str, ...]]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue  # merged or odd keys: their lines are not worth the complexity
                place = (*path, str(loader.construct_object(key_node)))
                lines.setdefault(place, key_node.start_mark.line + 1)
                stack.append((value_node, place))
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                lines.setdefault((*path, str(i)), item.start_mark.line + 1)
                stack.append((item, (*path, str(i))))
    return data, lines
