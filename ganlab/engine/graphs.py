"""``train.cuda_graphs``: the training step's forward and backward passes replayed as CUDA
graphs, for small models whose steps are bound by kernel launches rather than arithmetic.

On CUDA the step's G and D go through ``torch.compile(mode="reduce-overhead")`` (Inductor's
CUDA graph trees: one launch replays a whole forward or backward pass) and Adam and AdamW
use their fused kernels (one launch per update instead of several per parameter). The
optimizer step itself is not captured: it stays between the graphs, where the learning-rate
schedules, the moving average and the gradient averaging of other features can reach it.

Whether the option applies is decided here, in `eager_reason`, and nowhere else: where it
cannot apply the run trains eagerly, exactly as without the option, and says why in one line.
"""

from __future__ import annotations

import torch

from ganlab.contracts import GanLoss

#: What the step calls G and D through when the option applies.
COMPILE_MODE = "reduce-overhead"


def eager_reason(
    device: torch.device,
    precision: str,
    processes: int,
    loss: GanLoss,
    augmentations: int,
    penalties: int,
) -> str | None:
    """None when the step can run through CUDA graphs; otherwise why it cannot, in words a
    user can act on. ``augmentations`` and ``penalties`` count the recipe's lists."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, and this run trains on {device.type}"
    if processes > 1:
        return (
            f"{processes} processes average their gradients between the backward pass and the "
            "step, outside any graph; CUDA graphs are for one process"
        )
    if precision == "fp16":
        return (
            "fp16's gradient scalers decide on the host, after every backward pass, whether to "
            "skip the step; use bf16 (no scaler) to train through CUDA graphs"
        )
    if type(loss).discriminator_penalty is not GanLoss.discriminator_penalty:
        return (
            f"the loss ({type(loss).__name__}) adds a penalty through D's double backward, "
            "which CUDA graphs cannot capture"
        )
    if penalties:
        return (
            "the recipe's penalties run only at some steps and differentiate through a "
            "network twice (double backward)"
        )
    if augmentations:
        return (
            "the recipe's augmentations draw their parameters (and ADA its probability) anew "
            "at every call, which a replayed graph would freeze"
        )
    return None


def graphed(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` compiled to replay CUDA graphs; it shares the plain module's weights."""
    # dynamic=False: a fixed batch shape per graph (an epoch's smaller last batch gets its own).
    compiled: torch.nn.Module = torch.compile(module, mode=COMPILE_MODE, dynamic=False)  # type: ignore[assignment]
    return compiled


def step_begins() -> None:
    """Tell the CUDA graph trees that a new training step starts: the previous step's graph
    outputs may now be overwritten (the step keeps none of them: its statistics are copies)."""
    torch.compiler.cudagraph_mark_step_begin()
