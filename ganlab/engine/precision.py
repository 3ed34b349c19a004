"""Mixed precision in one object: autocast, gradient scaling, backward and step.

In the spirit of Accelerate's ``accelerator.backward(loss)``: the step says *what* to compute
(``with precision.autocast():`` around the forward passes, ``precision.backward_and_step``
for each network's update) and this object says *how* for ``train.precision``:

* ``fp32``: no autocast; plain ``loss.backward()`` and ``optimizer.step()``;
* ``bf16``: autocast to bfloat16 (same range as fp32, so no scaling);
* ``fp16``: autocast to float16 and one gradient scaler per network, since each loss
  overflows at its own scale; the scalers' state is part of a checkpoint (``scalers``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

#: The autocast dtype of each ``train.precision`` that uses one.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: The networks that have their own optimizer (and, in fp16, their own scaler).
NETWORKS = ("generator", "discriminator")


class Precision:
    """How one run computes: autocast for the forward passes, and each network's update."""

    def __init__(self, precision: str, device: torch.device) -> None:
        self.name = precision
        dtype = AUTOCAST_DTYPES.get(precision)
        self._autocast = (
            torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        )
        self.scalers: dict[str, torch.amp.GradScaler] = (
            {net: torch.amp.GradScaler(device.type) for net in NETWORKS}
            if precision == "fp16"
            else {}
        )

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context for forward passes and losses."""
        return self._autocast

    def backward_and_step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        net: str,
        before_step: Callable[[], None] = lambda: None,
    ) -> None:
        """Gradients of ``loss`` and one step of ``net``'s optimizer.

        ``before_step`` runs between the backward pass and the step (the runner averages the
        gradients of several processes there). In fp16 the loss is scaled, and the step is
        skipped when the scaled gradients overflowed.
        """
        optimizer.zero_grad(set_to_none=True)
        scaler = self.scalers.get(net)
        if scaler is None:
            loss.backward()
            before_step()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The scalers' state, by network (empty unless fp16)."""
        return {net: scaler.state_dict() for net, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for net, scaler in self.scalers.items():
            scaler.load_state_dict(state[net])
