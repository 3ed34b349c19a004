"""A run or its generator rebuilt as it was at a checkpoint (``ganlab eval``, ``ganlab
sample``, `ganlab.load_generator`).

The recipe comes from the checkpoint, names its plugins, and those build the run (or only
its models) again; `ganlab.engine.run.Run.load_state_dict` puts the checkpoint back into it.
Continuing a stopped run in place (``--resume``) is `ganlab.engine.resume`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch

from ganlab.contracts import Generator
from ganlab.engine.assemble import NoHooks, assemble_run
from ganlab.engine.networks import build_models
from ganlab.engine.run import Run
from ganlab.engine.seeding import seed_everything
from ganlab.errors import GanlabError
from ganlab.files.checkpoint import find_checkpoint, folder_of, load_checkpoint
from ganlab.plugin_manager.loading import load_plugins
from ganlab.recipe.models import Resolved
from ganlab.recipe.resolve import parse_recipe, resolve


def open_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint a path names (a file, or a run folder's final one) and its contents,
    for sampling or scoring: refused when the generator's weights (or their moving average)
    are not all finite, whose images would be black or noise and whose scores would lie."""
    checkpoint = find_checkpoint(path)
    state = load_checkpoint(checkpoint)
    check_finite_generator(state, checkpoint)
    return checkpoint, state


#: The generator's weights in a checkpoint: key -> what they are.
GENERATOR_WEIGHTS = {
    "generator": "the generator's weights",
    "generator_ema": "the moving average of the generator's weights (train.ema)",
}


def check_finite_generator(state: dict[str, Any], checkpoint: Path) -> None:
    """Refuse a checkpoint whose generator weights hold NaN or infinity (a run that
    diverged before the checkpoint), naming the weights and the first tensors affected."""
    for key, what in GENERATOR_WEIGHTS.items():
        weights = state.get(key) or {}
        bad = [
            name
            for name, tensor in weights.items()
            if isinstance(tensor, torch.Tensor)
            and tensor.is_floating_point()
            and not bool(torch.isfinite(tensor).all())
        ]
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise GanlabError(
                f"{checkpoint}: {what} are not finite (NaN or infinity in {shown}): the run "
                f"had diverged by step {state['step']}, so its images would be meaningless. "
                "Use an earlier checkpoint of the run (checkpoints/step_*.pt, best.pt), or "
                "train again with a lower learning rate."
            )


def recipe_in(
    checkpoint: Path,
    state: dict[str, Any],
    overrides: tuple[str, ...] = (),
    plugin_specs: tuple[str, ...] = (),
    metric_names: tuple[str, ...] = (),
) -> Resolved:
    """The recipe a checkpoint holds, resolved with the plugins it names (and ``plugin_specs``);
    ``metric_names`` replace its metrics, then ``overrides`` apply."""
    raw = state["recipe"]
    if metric_names:
        raw = {**raw, "metrics": [{"name": name} for name in metric_names]}
    source = f"{checkpoint} (its recipe)"
    recipe = parse_recipe(raw, source, overrides, plugin_specs)
    registry = load_plugins(recipe.plugins).registry
    # Only some components are built again (sample: the models; eval: no callbacks), so a
    # callback waiting for a metric the recipe no longer has is no mistake here.
    return resolve(recipe, registry, source=source, check_metric_keys=False)


def restored_run(
    checkpoint: Path, state: dict[str, Any], resolved: Resolved, device: torch.device
) -> Run:
    """The run as it was when ``checkpoint`` was written; its events go nowhere."""
    # From the run's seed, as the run built them: a data set made from random numbers holds
    # the same images.
    seed_everything(resolved.recipe.seed)
    run = assemble_run(resolved, device, folder_of(checkpoint), NoHooks())
    run.load_state_dict(state, checkpoint)
    return run


class RestoredGenerator(NamedTuple):
    """A run's generator rebuilt from a checkpoint, in eval mode (`restored_generator`)."""

    generator: Generator
    state: dict[str, Any]  #: the checkpoint's contents
    checkpoint: Path  #: the checkpoint file it came from
    #: the classes a conditional generator takes (class ``k`` is ``classes[k]``); None when
    #: the generator takes no labels
    classes: tuple[str, ...] | None


def restored_generator(path: Path, device: torch.device, ema: bool = True) -> RestoredGenerator:
    """A run's generator, in eval mode, from a checkpoint file or a run folder: the moving
    average of G's weights when the run kept one (``train.ema``) and ``ema``. Also the checkpoint's
    contents, its path, and the classes of a conditional generator. The data set is not
    needed: the checkpoint holds the image shape and the class names.
    """
    checkpoint, state = open_checkpoint(path)
    if "image_shape" not in state:
        raise GanlabError(
            f"{checkpoint}: the checkpoint holds no image shape (an older ganlab wrote it), so "
            "its generator cannot be rebuilt. Sample from a checkpoint of this version."
        )
    resolved = recipe_in(checkpoint, state)
    component, _ = resolved.get("generator")
    conditional = component.conditional or resolved.get("discriminator")[0].conditional
    names = state.get("class_names")
    if conditional and not names:
        raise GanlabError(
            f"{checkpoint}: its models take class labels, but the checkpoint holds no class "
            "names (an older ganlab wrote it), so they cannot be rebuilt with their number of "
            "classes. Sample from a checkpoint of this version."
        )
    num_classes = len(names) if conditional and names else None
    shape = tuple(state["image_shape"])
    generator, _ = build_models(resolved, shape, torch.device("cpu"), num_classes)
    try:
        generator.load_state_dict(generator_weights(state, ema))
    except RuntimeError as exc:
        raise GanlabError(
            f"{checkpoint}: the saved weights do not fit generator {component.name!r} as plugin "
            f"{component.plugin!r} builds it now ({str(exc).splitlines()[0]}). The plugin has "
            "probably changed since the run; sample with the version that trained it."
        ) from None
    classes = tuple(names) if component.conditional and names else None
    return RestoredGenerator(generator.eval().to(device), state, checkpoint, classes)


def generator_weights(state: dict[str, Any], ema: bool = True) -> dict[str, torch.Tensor]:
    """The weights to sample with: the moving average of G's when the run kept one
    (``train.ema``) and ``ema``, else G's own."""
    average = state.get("generator_ema") if ema else None
    if not average:
        return state["generator"]
    # An AveragedModel's state: the averaged generator under "module.", plus its counter.
    prefix = "module."
    return {k.removeprefix(prefix): v for k, v in average.items() if k.startswith(prefix)}
