"""Building a recipe's components: a plugin's build function called through
`build_component`, which names the plugin when it fails or returns the wrong thing
(`contract_problem`), and the components of a list section (callbacks, loggers, metrics,
augmentations, penalties) built in order (`build_listed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel
from torch import nn

from ganlab.contracts import (
    Augmentation,
    GanLoss,
    GeneratorPenalty,
    ImageDataset,
    Metric,
    Observer,
    Penalty,
)
from ganlab.data.types import TensorImages, labels_of
from ganlab.errors import GanlabError
from ganlab.hookspecs import PROJECT
from ganlab.plugin_manager.blame import blamed_on, broken_contract, describe
from ganlab.plugin_manager.registry import Component
from ganlab.recipe.models import Resolved


def build_component(place: str, component: Component, params: BaseModel, *args: Any) -> Any:
    """Call a component's build function and check what it returned: a plugin bug is one
    error that names the component, its plugin and the plugin's line
    (`ganlab.plugin_manager.blame`)."""
    with blamed_on(component, place, "while building it"):
        built = component.build(params, *args)
    problem = contract_problem(component.kind, built)
    if problem:
        raise broken_contract(describe(component, place), problem, component.build)
    return built


def contract_problem(kind: str, built: object) -> str | None:
    """What is wrong with what a build function of ``kind`` returned (None: nothing)."""
    wanted: dict[str, tuple[tuple[type, ...], str]] = {
        "datasets": ((ImageDataset, TensorImages), "a data set (ganlab.ImageDataset)"),
        "generators": ((nn.Module,), "a torch.nn.Module"),
        "discriminators": ((nn.Module,), "a torch.nn.Module"),
        "losses": ((GanLoss,), "a ganlab.GanLoss"),
    }
    wanted |= {
        "augmentations": ((Augmentation,), "a ganlab.Augmentation"),
        "penalties": ((Penalty, GeneratorPenalty), "a ganlab.Penalty or GeneratorPenalty"),
    }
    if kind in wanted and not isinstance(built, wanted[kind][0]):
        return f"returned {type(built).__name__} from its build function, not {wanted[kind][1]}"
    labels = labels_of(built) if kind == "datasets" else None
    if labels is not None and (problem := labels.problem(len(built))):  # type: ignore[arg-type]
        return f"returned a data set whose {problem}"
    if kind == "generators" and not hasattr(built, "latent_shape"):
        return "has no `latent_shape` attribute; the runner needs it to draw latent vectors"
    if kind == "metrics" and not callable(built):
        return f"returned {type(built).__name__} from its build function, not a callable"
    if kind in ("callbacks", "loggers") and not has_hooks(built):
        return (
            f"returned {type(built).__name__} from its build function, which implements no "
            "ganlab hook (methods decorated with @ganlab.hookimpl): it would do nothing"
        )
    return None


def has_hooks(obj: object) -> bool:
    """Whether ``obj`` has a method marked with ``@ganlab.hookimpl``."""
    marker = f"{PROJECT}_impl"
    return obj is not None and any(
        hasattr(getattr(obj, name, None), marker) for name in dir(obj) if name.startswith("ganlab_")
    )


#: What a list section's components are: a `Metric`, or an `Observer` (callbacks, loggers).
T = TypeVar("T")


@dataclass(frozen=True)
class Built(Generic[T]):
    """A built component of a list section (callbacks, metrics, loggers)."""

    place: str  #: where the recipe names it: "callbacks.0"
    component: Component
    obj: T

    @property
    def name(self) -> str:
        """The name it is registered under for a run: ``callbacks.0:console``."""
        return f"{self.place}:{self.component.name}"


@overload
def build_listed(resolved: Resolved, section: Literal["metrics"]) -> list[Built[Metric]]: ...


@overload
def build_listed(
    resolved: Resolved, section: Literal["callbacks", "loggers"]
) -> list[Built[Observer]]: ...


@overload
def build_listed(resolved: Resolved, section: Literal["augment"]) -> list[Built[Augmentation]]: ...


@overload
def build_listed(
    resolved: Resolved, section: Literal["penalties"]
) -> list[Built[Penalty | GeneratorPenalty]]: ...


def build_listed(resolved: Resolved, section: str) -> list[Built[Any]]:
    """Build every component of a list section (loggers, callbacks, metrics); what each
    build function returned was checked (`contract_problem`)."""
    return [
        Built(f"{section}.{i}", component, build_component(f"{section}.{i}", component, params))
        for i, (component, params) in enumerate(resolved.listed(section))
    ]


def penalty_list(resolved: Resolved) -> list[Built[Penalty | GeneratorPenalty]]:
    """The recipe's penalties (on D or on G), each logged under its component's name."""
    built = build_listed(resolved, "penalties")
    names = [b.component.name for b in built]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GanlabError(
            f"penalties: {', '.join(twice)} is listed twice; give each penalty once, with "
            "its weight."
        )
    return built


def has_state(obj: object) -> bool:
    """Whether a plugin object keeps state a checkpoint must hold: torch's protocol,
    ``state_dict()`` and ``load_state_dict(state)``."""
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )
