"""The wandb logger's params: where and under what name a run goes to W&B, and what it
sends besides its rows (docs/outputs.md, W&B)."""

from __future__ import annotations

from pydantic import Field, field_validator

import ganlab
from ganlab_plugins.wandb.run_options import TAG_RULE, tag_ok
from ganlab_plugins.wandb.session import Mode
from ganlab_plugins.wandb.tables import TableEvery


class WandbParams(ganlab.Params):
    """The ``wandb`` logger's params (recipe: ``loggers: [{name: wandb, params: ...}]``)."""

    mode: Mode | None = Field(
        default=None,
        description="offline, online or disabled; WANDB_MODE wins when set; default offline",
    )
    project: str = Field(
        default="ganlab", min_length=1, description="W&B project; WANDB_PROJECT wins when set"
    )
    entity: str | None = Field(
        default=None, description="W&B user or team (default: yours); WANDB_ENTITY wins"
    )
    name: str | None = Field(
        default=None, description="W&B run name (default: the run folder's name); --name wins"
    )
    notes: str | None = Field(default=None, description="W&B run notes; --notes wins")
    group: str | None = Field(
        default=None,
        description="W&B group (default: <recipe>-<hash of the configuration>); --group wins",
    )
    tags: list[str] = Field(
        default_factory=list,
        description="tags added to seed-<N> and the git commit (and to --tags)",
    )
    log_checkpoint: bool = Field(
        default=True,
        description="log the final and best checkpoints as versions of the artifact model-<id>",
    )
    system_metrics: bool = Field(
        default=True, description="W&B's system metrics (CPU, memory, GPU): its System tab"
    )
    console: bool = Field(
        default=True, description="W&B's copy of the console output: its Logs tab"
    )
    table_every: TableEvery = Field(
        default=0,
        description="a W&B Table of samples (image, class, D's score, seed) every N steps and "
        "at the end; end: at the end only; 0: none",
    )
    table_rows: int = Field(
        default=64, ge=1, le=1024, description="rows (samples) of each table of samples"
    )

    @field_validator("table_every")
    @classmethod
    def _every_not_negative(cls, every: TableEvery) -> TableEvery:
        if isinstance(every, int) and every < 0:
            raise ValueError("give a number of steps (0: no tables) or end")
        return every

    @field_validator("tags")
    @classmethod
    def _tags_w_and_b_takes(cls, tags: list[str]) -> list[str]:
        bad = [tag for tag in tags if not tag_ok(tag)]
        if bad:
            raise ValueError(f"{bad}: {TAG_RULE}")
        return tags
