"""``ganlab eval``'s scores in the W&B run it evaluated: the run is resumed (the same id, from
ganlab's record of it, `ganlab_plugins.wandb.pieces`), the scores are logged at the evaluated
checkpoint's training step (the ``train/step`` axis of every chart) under the keys training
logged them as (``eval/<key>``), and the model artifact version of that checkpoint, when the
run logged one, gets them in its metadata under ``eval``.

The session is one more piece of the run's W&B run, recorded like a resumed session's, so
that ``ganlab runs`` and the ``wandb sync`` command printed here include it. It leaves the
run's summary alone (``summary="none"``): the summary stays what training made it.

Online, the artifact version's metadata is updated through W&B's public API
(``wandb.Api().artifact(...)``, ``Artifact.save()``). Offline there is no server to ask: the
checkpoint the version holds (kept in ``<run>/wandb/models/``) is logged again with the
scores in its metadata; W&B versions by content, so it is the same version (the same digest)
once synced.

Nothing happens with ``--wandb disabled`` (``WANDB_MODE=disabled``), without W&B installed,
or for a run that has no W&B run.
"""

from __future__ import annotations

import filecmp
import time
from pathlib import Path
from typing import Any

import click

import ganlab
from ganlab_plugins.wandb.history import STEP
from ganlab_plugins.wandb.models import MODELS, ModelVersion, log_model
from ganlab_plugins.wandb.pieces import (
    Piece,
    read_pieces,
    record_finish,
    record_start,
    sync_commands,
    wait_for_a_new_second,
)
from ganlab_plugins.wandb.run_options import from_env
from ganlab_plugins.wandb.session import (
    MODES,
    Mode,
    effective_mode,
    has_credentials,
    installed,
    setup_wandb,
)

#: The namespace W&B files a metric's results under (the logger's ``eval/*``).
EVAL = "eval"


def scored_model(folder: Path, step: int, checkpoint: Path) -> Path | None:
    """The frozen file of the model artifact version that holds ``checkpoint`` (logged at
    ``step``; `ganlab_plugins.wandb.models.freeze`), or None when the run logged none."""
    for frozen in sorted((folder / MODELS).glob(f"step_{step:06d}-*")):
        if frozen.is_file() and filecmp.cmp(frozen, checkpoint, shallow=False):
            return frozen
    return None


def eval_metadata(folder: Path, checkpoint: Path, results: dict[str, float]) -> dict[str, Any]:
    """What an evaluation adds to a model version's metadata: the scores and the checkpoint
    scored (relative to the run folder)."""
    scored = checkpoint.absolute()
    where = folder.absolute()
    shown = scored.relative_to(where) if scored.is_relative_to(where) else scored
    return {"scores": dict(results), "checkpoint": shown.as_posix(), "when": time.time()}


def update_online(wb: Any, step: int, metadata: dict[str, Any]) -> None:
    """Add ``metadata`` under ``eval`` to the version ``step-<step>`` of ``model-<id>``,
    through W&B's public API."""
    import wandb

    name = f"{wb.entity}/{wb.project}/model-{wb.id}:step-{step}"
    try:
        artifact = wandb.Api().artifact(name, type="model")
    except Exception as exc:  # no such version (the run did not log it), or no network
        click.echo(f"W&B: {name} not updated: {type(exc).__name__}: {exc}", err=True)
        return
    artifact.metadata = {**artifact.metadata, EVAL: metadata}
    artifact.save()


def start(mode: Mode, run_id: str, before: Piece, recorded: dict[str, Any], folder: Path) -> Any:
    """Resume the W&B run ``run_id`` as its last piece ``before`` left it (its name, group,
    tags and notes; the project and entity run.json ``recorded``, unless W&B's environment
    variables say otherwise), writing into ``folder``."""
    wandb = setup_wandb(mode)
    settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)
    return wandb.init(
        mode=mode,
        id=run_id,
        resume="allow",
        project=from_env("WANDB_PROJECT") or recorded.get("project") or "ganlab",
        entity=from_env("WANDB_ENTITY") or recorded.get("entity"),
        name=before.name,
        group=before.group,
        tags=before.tags,
        notes=before.notes,
        dir=str(folder),
        reinit="create_new",
        settings=settings,
    )


@ganlab.hookimpl
def ganlab_checkpoint_evaluated(
    folder: Path, info: dict[str, Any], step: int, path: Path, results: dict[str, float]
) -> None:
    """Log ``ganlab eval``'s scores into the W&B run of ``folder`` at ``step``."""
    recorded = read_pieces(folder, info)
    if not recorded or not results:
        return  # the run has no W&B run
    last = recorded[-1]
    mode = effective_mode(MODES.get(last.mode))
    if mode == "disabled":
        return
    if not installed():
        click.echo("W&B: not installed, so the scores do not go to the run's W&B run.", err=True)
        return
    same_mode = [p for p in recorded if p.mode == mode]
    if not same_mode:
        click.echo(f"W&B: the run has no {mode} W&B run; the scores stay here.", err=True)
        return
    run_id = same_mode[-1].run_id
    earlier = [p for p in same_mode if p.run_id == run_id]
    before = earlier[-1]
    wait_for_a_new_second(earlier)

    if mode == "online" and not has_credentials():
        click.echo("W&B: online, but no API key (`wandb login`); the scores stay here.", err=True)
        return
    found = info.get("wandb")
    try:
        wb = start(mode, run_id, before, found if isinstance(found, dict) else {}, folder)
    except Exception as exc:  # no server, say: the scores were printed all the same
        click.echo(f"W&B: the scores could not be added: {type(exc).__name__}: {exc}", err=True)
        return
    here = Path(wb.settings.sync_dir).absolute()
    piece = Piece(
        str(here), wb.id, mode, time.time(), before.name, before.group, before.tags, before.notes
    )
    record_start(folder, piece)
    try:
        # The scores join their step's curves; the summary keeps what training made it.
        wb.define_metric(STEP, summary="none")
        for key in results:
            wb.define_metric(f"{EVAL}/{key}", step_metric=STEP, summary="none")
        wb.log({STEP: step, **{f"{EVAL}/{key}": value for key, value in results.items()}})
        metadata = eval_metadata(folder, path, results)
        if mode == "online":
            update_online(wb, step, metadata)
        else:
            frozen = scored_model(folder, step, path)
            if frozen is not None:
                version = ModelVersion(
                    frozen,
                    f"model{frozen.suffix}",
                    [f"step-{step}"],
                    {"step": step, EVAL: metadata},
                )
                log_model(wb, version)
    finally:
        wb.finish()
        record_finish(folder, str(here), None)
    if mode == "online":
        click.echo(f"W&B: scores of step {step} added to {wb.url}", err=True)
        return
    offline = [p for p in (*earlier, piece) if Path(p.path).is_dir()]
    click.echo(
        f"W&B: scores of step {step} added to the offline run {run_id}. Upload it with: "
        f"{sync_commands(offline)}",
        err=True,
    )
