"""The recipe's ``train`` and ``optimizers`` sections: how long and how the runner trains,
and each network's optimizer with its learning-rate schedule.

Every field is documented in its ``Field(description=...)``, which docs/recipes.md's tables
are generated from; the top-level `ganlab.recipe.models.Recipe` holds these sections.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from ganlab.recipe.schedules import CHECKING_LENGTH, lr_scheduler_class, with_run_length
from ganlab.recipe.section import RecipeSection


class LRSchedule(RecipeSection):
    """A torch learning-rate scheduler by class name, with its arguments."""

    name: str = Field(
        min_length=1,
        description="a class of `torch.optim.lr_scheduler` (`LinearLR`, `CosineAnnealingLR`, ...)",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "the scheduler's arguments but the optimizer; a length left out (`total_iters`, "
            "`T_max`, `total_steps`) is the run's total steps"
        ),
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_scheduler(cls, name: str) -> str:
        lr_scheduler_class(name)
        return name

    @model_validator(mode="after")
    def _params_are_accepted(self) -> LRSchedule:
        # Made once on a throwaway optimizer, so `recipe validate` finds what the run would;
        # a length left to the run gets a stand-in (the run's is known when it is built).
        throwaway = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        params = with_run_length(self.name, self.params, CHECKING_LENGTH)
        try:
            lr_scheduler_class(self.name)(throwaway, **params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.name} refuses its params: {str(exc).rstrip('.')}") from None
        return self


class OptimizerSpec(RecipeSection):
    """Adam (the tutorial's) or AdamW for one network."""

    name: Literal["adam", "adamw"] = Field(
        default="adam",
        description="`torch.optim.Adam` (weight decay as an L2 term) or `AdamW` (decoupled)",
    )
    lr: float = Field(default=2e-4, gt=0, description="learning rate")
    betas: tuple[float, float] = Field(
        default=(0.5, 0.999), description="Adam's β1 and β2, each in `[0, 1)`"
    )
    weight_decay: float = Field(default=0.0, ge=0, description="weight decay")
    schedule: LRSchedule | None = Field(
        default=None,
        description="a learning-rate schedule: one of torch's `torch.optim.lr_scheduler` "
        "classes by name, with its arguments (all but the optimizer), stepped once per "
        "training step and saved in checkpoints; its length, left out, is the run's, e.g. "
        "`{name: LinearLR, params: {start_factor: 1.0, end_factor: 0.0}}` for SNGAN's linear "
        "decay to zero over the run. An optimizer with a schedule logs its rate (`lr_<net>`)",
    )

    @model_validator(mode="after")
    def _betas_in_range(self) -> OptimizerSpec:
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must each be in [0, 1), got {list(self.betas)}")
        return self


class Optimizers(RecipeSection):
    """One optimizer per network."""

    generator: OptimizerSpec = Field(default_factory=OptimizerSpec, description="G's optimizer")
    discriminator: OptimizerSpec = Field(default_factory=OptimizerSpec, description="D's optimizer")


class TrainSpec(RecipeSection):
    """How long and how the runner trains."""

    epochs: int | None = Field(default=None, gt=0, description="passes over the data set")
    steps: int | None = Field(
        default=None,
        gt=0,
        description=(
            "training steps (`d_steps` D updates and one G update each); with `epochs` too, "
            "whichever is reached first ends the run. At least one of the two must be set"
        ),
    )
    batch_size: int = Field(
        default=128,
        gt=0,
        description=(
            "images per D update; an epoch has `ceil(len(data) / (batch_size * d_steps))` steps, "
            "the last batch may be smaller"
        ),
    )
    d_steps: int = Field(
        default=1,
        gt=0,
        description=(
            "D updates per G update, each on its own real batch and fresh fakes; G's update then "
            "uses the last fakes. WGAN-GP uses 5. The last step of an epoch may make fewer D "
            "updates, with the images that are left"
        ),
    )
    g_batch_size: int | None = Field(
        default=None,
        gt=0,
        description=(
            "G's update on this many fresh latent vectors (SNGAN uses twice D's batch); null: "
            "on the last fakes of D's update, as in the tutorial"
        ),
    )
    ema: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description=(
            "keep an exponential moving average of G's weights and batch-norm statistics with this "
            "decay (0.999 is usual), updated after every G update "
            "(`torch.optim.swa_utils.AveragedModel`). The metrics, `ganlab sample` and `ganlab "
            "eval` then use the average; the progress grids show G itself. Saved in checkpoints, so"
            " resuming stays exact"
        ),
    )
    ema_warmup: bool = Field(
        default=True,
        description=(
            "ramp the average's decay up from the start, min(ema, (1 + n) / (10 + n)) after n "
            "updates (TensorFlow's ExponentialMovingAverage with num_updates), so that a short "
            "run's average does not keep most of G's initial weights; false: `ema` from the first "
            "update"
        ),
    )
    ema_rampup: float | None = Field(
        default=None,
        gt=0,
        description=(
            "StyleGAN2's ramp of the average instead of `ema_warmup`'s (their `ema_rampup`, 0.05): "
            "after n updates the decay is min(ema, 0.5 ** (1 / (ema_rampup * n))), so the "
            "average's half-life is at most `ema_rampup` times the updates so far. Their "
            "`ema_kimg` K at batch size B is `ema: 0.5 ** (B / (1000 K))`. Needs `ema`; null: off"
        ),
    )
    workers: int = Field(
        default=0,
        ge=0,
        description=(
            "`DataLoader` worker processes (0: load in the main process); unused when the "
            "images are decoded already (a data set of `ganlab.TensorImages`, or `data_cache`), "
            "except to build the cache"
        ),
    )
    data_cache: bool = Field(
        default=True,
        description=(
            "decode a data set from files once into a uint8 cache (`$GANLAB_CACHE`, else "
            "`~/.cache/ganlab`), memory-mapped, and slice batches from it: no epoch decodes an "
            "image again; a change of files or transform makes a new cache. `ganlab data prepare "
            "RECIPE` builds it ahead of time. Data sets generated in memory need none"
        ),
    )
    log_every: int = Field(
        default=50,
        gt=0,
        description=(
            "step statistics stay on the device and are written (`metrics.jsonl`, loggers) in "
            "blocks of this many steps; every step still gets its row"
        ),
    )
    eval_every: int | None = Field(
        default=None,
        gt=0,
        description=(
            "compute the metrics every N steps; with metrics they are always computed once at the "
            "end as well"
        ),
    )
    checkpoint_every: int | None = Field(
        default=1000,
        gt=0,
        description=(
            "write `checkpoints/step_<N>.pt` (the whole training state) every N steps; one is "
            "always written at the end; `null`: only at the end"
        ),
    )
    keep_checkpoints: int = Field(
        default=3, gt=0, description="how many of the newest step checkpoints to keep"
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32",
        description=(
            "`bf16` runs the forward passes and losses under `torch.autocast(dtype=bfloat16)` (CPU "
            "and CUDA); `fp16` under `float16` autocast with one gradient scaler per network (their"
            " state is saved in checkpoints)"
        ),
    )
    channels_last: bool = Field(
        default=True,
        description=(
            "keep the models and batches in the channels-last (NHWC) memory layout, which runs "
            "DCGAN's convolutions 15-25% faster on this project's CPUs and suits tensor cores; "
            "`false` for the plain layout"
        ),
    )
    compile: bool = Field(
        default=False,
        description=(
            "run the training step's forward passes through `torch.compile` (the first steps pay "
            "the compilation; needs a C++ compiler on CPU). Checkpoints keep the plain modules' "
            "weights"
        ),
    )
    cuda_graphs: bool = Field(
        default=False,
        description=(
            "on CUDA, replay the step's forward and backward passes as CUDA graphs "
            "(`torch.compile` in mode `reduce-overhead`) and use Adam's fused kernels: fewer "
            "kernel launches for small models. Where it cannot apply (not CUDA, several "
            "processes, fp16, a penalty's double backward, augmentations) the run trains "
            "eagerly, exactly as without it, and says why in one line"
        ),
    )
    deterministic: bool = Field(
        default=False,
        description=(
            "on CUDA, use only deterministic algorithms (`torch.use_deterministic_algorithms`, no "
            "cuDNN autotuning): repeatable runs, slower steps. CPU runs are repeatable either way"
        ),
    )

    @model_validator(mode="after")
    def _has_length(self) -> TrainSpec:
        if self.epochs is None and self.steps is None:
            raise ValueError("set train.epochs or train.steps (or both: the first reached ends)")
        if self.ema_rampup is not None and self.ema is None:
            raise ValueError(
                "train.ema_rampup ramps the moving average of G's weights, which needs train.ema "
                "(its decay, e.g. 0.999); set train.ema or remove train.ema_rampup"
            )
        return self
