"""Learning-rate schedules: torch's schedulers by name, whose length follows the run's.

A recipe names a class of `torch.optim.lr_scheduler` and its arguments for each optimizer
(``optimizers.<net>.schedule``); the runner steps it once per training step. A scheduler
whose constructor takes the length of the whole schedule (`RUN_LENGTH`: LinearLR's
``total_iters``, CosineAnnealingLR's ``T_max``, OneCycleLR's ``total_steps``, ...) gets the
run's total steps when the recipe leaves that argument out: ``--set train.steps=N`` then
makes the schedule end at step N, and the recipe keeps saying "the run's length".
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR

from ganlab.errors import GanlabError, did_you_mean

#: Schedulers a recipe cannot drive: they take a Python function or other schedulers, or
#: step on a metric rather than once per training step.
NOT_FROM_A_RECIPE = {
    "LambdaLR",
    "MultiplicativeLR",
    "ChainedScheduler",
    "SequentialLR",
    "ReduceLROnPlateau",
}

#: The constructor arguments that are the length of a whole schedule, in scheduler steps
#: (training steps here), each with the arguments that can give that length instead. Any
#: scheduler whose signature has one gets the run's total steps for it when the recipe gives
#: neither it nor all of its alternatives. LinearLR, ConstantLR and PolynomialLR take
#: ``total_iters``, CosineAnnealingLR ``T_max``, OneCycleLR ``total_steps`` (or ``epochs``
#: with ``steps_per_epoch``). Periods and milestones are not the run's length and stay as
#: the recipe (or torch) has them: StepLR's ``step_size``, CyclicLR's ``step_size_up``,
#: CosineAnnealingWarmRestarts' ``T_0``, MultiStepLR's ``milestones``.
RUN_LENGTH: dict[str, tuple[str, ...]] = {
    "total_iters": (),
    "T_max": (),
    "total_steps": ("epochs", "steps_per_epoch"),
}

#: The length a recipe's schedule is checked with (`ganlab.recipe.train.LRSchedule`), before the
#: run's length is known: any positive number of steps.
CHECKING_LENGTH = 100


def lr_scheduler_class(name: str) -> type[LRScheduler]:
    """The class ``name`` of `torch.optim.lr_scheduler`; ValueError naming the usable ones."""
    known = sorted(
        n
        for n, v in vars(torch.optim.lr_scheduler).items()
        if isinstance(v, type) and issubclass(v, LRScheduler) and v is not LRScheduler
        if not n.startswith("_") and n not in NOT_FROM_A_RECIPE
    )
    if name in known:
        kind: type[LRScheduler] = getattr(torch.optim.lr_scheduler, name)
        return kind
    if name in NOT_FROM_A_RECIPE:
        why = "takes a Python function, other schedulers or a metric, which a recipe cannot give."
    else:
        why = f"is not a scheduler of torch.optim.lr_scheduler.{did_you_mean(name, known)}"
    raise ValueError(f"{name!r} {why} Usable: {', '.join(known)}.")


def run_length_parameter(name: str, params: Mapping[str, Any]) -> str | None:
    """The argument of scheduler ``name`` that the run's length fills, given the recipe's
    ``params``: None when the scheduler has no length (`RUN_LENGTH`) or the recipe gives it."""
    accepted = inspect.signature(lr_scheduler_class(name)).parameters
    for parameter, alternatives in RUN_LENGTH.items():
        if parameter in accepted:
            by_alternatives = bool(alternatives) and all(a in params for a in alternatives)
            given = parameter in params or by_alternatives
            return None if given else parameter
    return None


def with_run_length(name: str, params: Mapping[str, Any], total_steps: int) -> dict[str, Any]:
    """The arguments scheduler ``name`` is built with: the recipe's ``params``, and the run's
    ``total_steps`` for a length they leave out."""
    parameter = run_length_parameter(name, params)
    return {**params, parameter: total_steps} if parameter else dict(params)


def make_scheduler(
    name: str, params: Mapping[str, Any], optimizer: torch.optim.Optimizer, total_steps: int
) -> LRScheduler:
    """Scheduler ``name`` of ``optimizer`` with the recipe's ``params``, for a run of
    ``total_steps`` steps (`with_run_length`)."""
    return lr_scheduler_class(name)(optimizer, **with_run_length(name, params, total_steps))


def check_length(scheduler: LRScheduler, total_steps: int, where: str) -> None:
    """Refuse a run longer than its OneCycleLR's cycle, before it starts: torch raises an
    error when the scheduler steps past ``total_steps`` (the others stay at their end)."""
    if isinstance(scheduler, OneCycleLR) and scheduler.total_steps < total_steps:
        raise GanlabError(
            f"{where}: OneCycleLR's cycle has {scheduler.total_steps} steps, but the run has "
            f"{total_steps}, and torch refuses to step past the cycle's end. Leave total_steps "
            "(and epochs, steps_per_epoch) out, so the cycle is the run's length, or give at "
            f"least {total_steps}."
        )


def fit_to_run(
    scheduler: LRScheduler,
    name: str,
    params: Mapping[str, Any],
    total_steps: int,
    steps_done: int,
) -> None:
    """After ``scheduler`` was loaded from a checkpoint: if its length follows the run and
    the checkpoint's run had another length (a resume with another ``train.steps`` or
    ``train.epochs``), make it (and its optimizer's rate) what a run of ``total_steps``
    steps has after ``steps_done`` steps. A resumed run with an unchanged length keeps the
    loaded state, bit for bit.

    The new schedule is replayed from its start, as an uninterrupted run steps it (the
    recursive forms of torch's schedulers depend on every earlier step): microseconds a
    step, once per resume.
    """
    parameter = run_length_parameter(name, params)
    if parameter is None or getattr(scheduler, parameter, None) == total_steps:
        return
    optimizer = scheduler.optimizer
    for group in optimizer.param_groups:
        # The rate a fresh run's scheduler starts from: the optimizer's own (the recipe's).
        group["lr"] = group["initial_lr"]
    fresh = make_scheduler(name, params, optimizer, total_steps)
    with warnings.catch_warnings():
        # torch warns when a scheduler steps before its optimizer has: here it must.
        warnings.simplefilter("ignore")
        for _ in range(steps_done):
            fresh.step()
    scheduler.load_state_dict(fresh.state_dict())


def learning_rates(schedulers: Mapping[str, LRScheduler]) -> dict[str, float]:
    """Each scheduled optimizer's learning rate now, by logged key (``lr_generator``,
    ``lr_discriminator``): host floats that torch keeps, read without waiting for the device."""
    return {rate_key(net): float(s.get_last_lr()[0]) for net, s in schedulers.items()}


def rate_key(net: str) -> str:
    """The logged key of network ``net``'s learning rate: ``lr_generator``."""
    return f"lr_{net}"
