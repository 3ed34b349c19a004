"""Metrics whose values are scripted, for tests/test_wandb_tables.py: each evaluation
returns the next value of its list (the last one again once the list runs out), so a test
knows the best and the last value of a run in advance."""

from __future__ import annotations

import ganlab

#: Lower is better: down, then up (its best is neither the first nor the last).
LOWER = (0.5, 0.2, 0.7)
#: Higher is better: up, then down.
HIGHER = (0.3, 0.9, 0.4)


class Scripted:
    """Returns ``{key: values[n]}`` at its ``n``-th evaluation."""

    def __init__(self, key: str, values: tuple[float, ...]) -> None:
        self.key = key
        self.values = values
        self.calls = 0

    def __call__(self, run: ganlab.RunView) -> dict[str, float]:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return {self.key: value}


@ganlab.hookimpl
def ganlab_register_metrics(register: ganlab.Register) -> None:
    register("scripted_lower", lambda params: Scripted("scripted_lower", LOWER))
    register("scripted_higher", lambda params: Scripted("scripted_higher", HIGHER), better="higher")
