"""The component registry: every data set, model, loss, callback, metric and logger by name.

Plugins fill it through the registration hooks; recipes look components up in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from ganlab.errors import GanlabError, did_you_mean
from ganlab.plugin_manager.logkeys import BETTER, Better
from ganlab.plugin_manager.params import StrictNumbers

#: The component kinds, in the order `ganlab plugins` lists them. Each has a registration
#: hook named ``ganlab_register_<kind>``.
KINDS = (
    "datasets",
    "generators",
    "discriminators",
    "losses",
    "augmentations",
    "penalties",
    "callbacks",
    "metrics",
    "loggers",
)


def singular(kind: str) -> str:
    """'losses' -> 'loss', 'datasets' -> 'data set': for messages."""
    names = {"datasets": "data set", "losses": "loss", "penalties": "penalty"}
    return names.get(kind, kind.removesuffix("s"))


class Params(StrictNumbers):
    """Base class for a component's params: unknown keys are errors, values are immutable,
    and numbers are strict (an int field refuses ``true``, ``"3"`` and ``3.0``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """The params of a component that takes none."""


#: What a metric declares about the keys of its results: key names, where ``*`` stands for
#: any text (``"swd_*"``), or a function of the metric's validated params that returns them.
Results = Iterable[str] | Callable[[BaseModel], Iterable[str]]


class Register(Protocol):
    """The callback a registration hook receives."""

    def __call__(
        self,
        name: str,
        build: Callable[..., Any],
        params: type[BaseModel] = NoParams,
        description: str | None = None,
        results: Results | None = None,
        better: Better = "lower",
        conditional: bool = False,
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
    #: a metric's declared result keys (patterns), a function of its params that gives
    #: them, or None: not declared, any key may come (and nothing is checked against it)
    results: tuple[str, ...] | Callable[[BaseModel], Iterable[str]] | None = None
    #: which way a metric's results are better ("lower", "higher", or None: neither)
    better: Better = "lower"
    #: a generator or discriminator that takes class labels: built with the number of
    #: classes (``build(params, image_shape, num_classes)``) and called with the labels
    conditional: bool = False

    def parse_params(self, raw: dict[str, Any]) -> BaseModel:
        """Validate raw params against this component's model (raises pydantic's error)."""
        return self.params.model_validate(raw)

    def result_keys(self, params: BaseModel) -> tuple[str, ...] | None:
        """The keys (or ``*`` patterns) this metric's results have with these params; None
        when the metric does not say."""
        if self.results is None or isinstance(self.results, tuple):
            return self.results
        keys = self.results(params)
        where = f"plugin {self.plugin!r}, {singular(self.kind)} {self.name!r}"
        return _key_names(keys, f"{where}: its results function")


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
            results: Results | None = None,
            better: Better = "lower",
            conditional: bool = False,
        ) -> None:
            self.add(kind, name, build, params, plugin, description, results, better, conditional)

        return register

    def add(
        self,
        kind: str,
        name: str,
        build: Callable[..., Any],
        params: type[BaseModel],
        plugin: str,
        description: str | None = None,
        results: Results | None = None,
        better: Better = "lower",
        conditional: bool = False,
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
        declared: tuple[str, ...] | Callable[[BaseModel], Iterable[str]] | None = None
        if results is not None:
            if kind != "metrics":
                raise GanlabError(
                    f"{where}: results= is for metrics (the keys of their results); "
                    f"leave it out for a {singular(kind)}."
                )
            declared = results if callable(results) else _key_names(results, f"{where}: results")
        if better not in BETTER or (kind != "metrics" and better != "lower"):
            raise GanlabError(
                f"{where}: better={better!r}: give a metric's better as 'lower', 'higher' "
                "or None (neither); leave it out for other components."
            )
        if conditional and kind not in ("generators", "discriminators"):
            raise GanlabError(
                f"{where}: conditional=True is for generators and discriminators (they take "
                "class labels); leave it out for other components."
            )
        existing = self._components[kind].get(name)
        if existing is not None:
            raise GanlabError(
                f"Two plugins register the {singular(kind)} {name!r}: {existing.plugin!r} and "
                f"{plugin!r}. Pick one by leaving the other out with -p no:NAME (NAME: the "
                "installed plugin's entry point or distribution name, or the plugin file's "
                "name), or rename one of them (docs/plugins.md, duplicate plugins)."
            )
        doc = description if description is not None else (build.__doc__ or "")
        summary = doc.strip().splitlines()[0] if doc.strip() else ""
        self._components[kind][name] = Component(
            kind, name, build, params, plugin, summary, declared, better, conditional
        )

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


def _key_names(keys: object, where: str) -> tuple[str, ...]:
    """Check declared result keys: an iterable of non-empty strings (not one string)."""
    if isinstance(keys, str) or not isinstance(keys, Iterable):
        raise GanlabError(
            f'{where} must be a tuple of key names, e.g. results=("fid",), got {keys!r}.'
        )
    names = tuple(keys)
    bad = [k for k in names if not isinstance(k, str) or not k]
    if bad:
        raise GanlabError(f"{where}: every key must be a non-empty string, got {bad[0]!r}.")
    return names
