"""The component registry: every data set, model, loss, callback, metric and logger by name.

Plugins fill it through the registration hooks; recipes look components up in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from ganlab.errors import GanlabError, did_you_mean

#: The component kinds, in the order `ganlab plugins` lists them. Each has a registration
#: hook named ``ganlab_register_<kind>``.
KINDS = (
    "datasets",
    "generators",
    "discriminators",
    "losses",
    "callbacks",
    "metrics",
    "loggers",
)


def singular(kind: str) -> str:
    """'losses' -> 'loss', 'datasets' -> 'data set': for messages."""
    return {"datasets": "data set", "losses": "loss"}.get(kind, kind.removesuffix("s"))


class Params(BaseModel):
    """Base class for a component's params: unknown keys are errors, values are immutable."""

    model_config = {"extra": "forbid", "frozen": True}


class NoParams(Params):
    """The params of a component that takes none."""


class Register(Protocol):
    """The callback a registration hook receives."""

    def __call__(
        self,
        name: str,
        build: Callable[..., Any],
        params: type[BaseModel] = NoParams,
        description: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class Component:
    """One registered component."""

    kind: str
    name: str
    build: Callable[..., Any]
    params: type[BaseModel]
    plugin: str
    description: str

    def parse_params(self, raw: dict[str, Any]) -> BaseModel:
        """Validate raw params against this component's model (raises pydantic's error)."""
        return self.params.model_validate(raw)


class Registry:
    """Components by kind and name, each remembering the plugin that registered it."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def register_callback(self, kind: str, plugin: str) -> Register:
        """Return the `register` function handed to one plugin's hook for one kind."""

        def register(
            name: str,
            build: Callable[..., Any],
            params: type[BaseModel] = NoParams,
            description: str | None = None,
        ) -> None:
            self.add(kind, name, build, params, plugin, description)

        return register

    def add(
        self,
        kind: str,
        name: str,
        build: Callable[..., Any],
        params: type[BaseModel],
        plugin: str,
        description: str | None = None,
    ) -> None:
        """Add a component; a second component of the same kind and name is an error."""
        where = f"plugin {plugin!r} registers {singular(kind)} {name!r}"
        if not isinstance(name, str) or not name:
            raise GanlabError(f"{where}: the name must be a non-empty string.")
        if not callable(build):
            raise GanlabError(f"{where}: build must be callable, got {build!r}.")
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise GanlabError(f"{where}: params must be a pydantic model class, got {params!r}.")
        if params.model_config.get("extra") != "forbid":
            # Without this a typo in a recipe would be silently ignored.
            raise GanlabError(
                f"{where}: its params model {params.__name__} must forbid unknown keys; "
                "subclass ganlab.Params (or set model_config extra='forbid')."
            )
        existing = self._components[kind].get(name)
        if existing is not None:
            raise GanlabError(
                f"Two plugins register the {singular(kind)} {name!r}: {existing.plugin!r} and "
                f"{plugin!r}. Rename one of them or leave one plugin out."
            )
        doc = description if description is not None else (build.__doc__ or "")
        summary = doc.strip().splitlines()[0] if doc.strip() else ""
        self._components[kind][name] = Component(kind, name, build, params, plugin, summary)

    def get(self, kind: str, name: str, where: str) -> Component:
        """Look a component up; an unknown name is an error that lists the known ones."""
        try:
            return self._components[kind][name]
        except KeyError:
            known = sorted(self._components[kind])
            raise GanlabError(
                f"{where}: unknown {singular(kind)} {name!r}.{did_you_mean(name, known)} "
                f"Known {kind}: {', '.join(known) or '(none)'}. "
                "Run `ganlab plugins` to list every component, or add the plugin that "
                "provides it with -p or the recipe's `plugins:` list."
            ) from None

    def components(self, kind: str) -> list[Component]:
        """Every component of one kind, sorted by name."""
        return [self._components[kind][n] for n in sorted(self._components[kind])]
