"""W&B's registry: ``ganlab wandb link RUN_DIR`` links a run's model artifact (``model-<W&B
run id>``, `ganlab_plugins.wandb.models`) into a registry collection, through W&B's public
API (``wandb.Api().artifact(...).link(target, aliases)``).

The registry lives on W&B's server: linking needs a W&B account (``wandb login``), the
network, and the run's artifacts uploaded (``wandb sync`` of an offline run). Everything is
checked here first, without the network, and a missing piece is one `ganlab.GanlabError`
that says what to do. This module imports neither torch nor wandb at import time: the
command line loads it with ``ganlab --help``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import yaml

import ganlab
from ganlab_plugins.wandb.models import alias
from ganlab_plugins.wandb.pieces import read_pieces, sync_commands, synced
from ganlab_plugins.wandb.session import INSTALL, MODES, has_credentials, installed

#: The registry a model goes to unless --target says otherwise: W&B's own Model registry.
DEFAULT_REGISTRY = "wandb-registry-model"


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run folder's ``run.json``."""
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ganlab.GanlabError(
            f"{run_dir}: not a ganlab run folder ({exc}). Give the folder `ganlab run` made "
            "(it holds run.json)."
        ) from None
    if not isinstance(info, dict):
        raise ganlab.GanlabError(f"{run_dir / 'run.json'}: not a run's record.")
    return info


def model_name(run_dir: Path, info: dict[str, Any], which: str) -> str:
    """``[<entity>/]<project>/model-<id>:<which>``, the artifact to link, from run.json."""
    wb = info.get("wandb")
    if not isinstance(wb, dict) or not wb.get("id"):
        raise ganlab.GanlabError(
            f"{run_dir}: this run was not logged to W&B, so it has no model artifact to link. "
            "Train with the wandb logger (loggers: [{name: wandb}])."
        )
    if which == "best" and not isinstance(info.get("best"), dict):
        raise ganlab.GanlabError(
            f"{run_dir}: the run kept no best checkpoint (the `best` callback), so its model "
            "artifact has no version aliased `best`. Link the last one with --which latest."
        )
    prefix = "/".join(str(wb[k]) for k in ("entity", "project") if wb.get(k))
    return f"{prefix}/model-{wb['id']}:{which}" if prefix else f"model-{wb['id']}:{which}"


def default_target(run_dir: Path) -> str:
    """``wandb-registry-model/<recipe name>``: one collection per recipe."""
    try:
        recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
        name = str(recipe["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        name = run_dir.parent.name  # runs/<recipe name>/<run>
    return f"{DEFAULT_REGISTRY}/{alias(name)}"


def check_can_reach_wandb(run_dir: Path, info: dict[str, Any]) -> None:
    """Everything linking needs that can be checked without the network: W&B installed,
    online, credentials, and the run's offline pieces uploaded."""
    what = "ganlab wandb link links a model into W&B's registry, on W&B's server"
    if not installed():
        raise ganlab.GanlabError(f"{what}, and W&B is not installed: {INSTALL}.")
    mode = MODES.get(os.environ.get("WANDB_MODE", "").strip().lower())
    if mode in ("offline", "disabled"):
        raise ganlab.GanlabError(
            f"{what}, and WANDB_MODE={os.environ['WANDB_MODE']} keeps W&B off the network. "
            "Unset WANDB_MODE (or set it to online) for this command."
        )
    if not has_credentials():
        raise ganlab.GanlabError(
            f"{what}: it needs a W&B account, and W&B has no API key here. Run `wandb login` "
            "(or set WANDB_API_KEY), then `wandb sync` the run if it was logged offline, "
            "then link it. Training and logging offline need no account."
        )
    pieces = read_pieces(run_dir, info)
    run_id = pieces[-1].run_id if pieces else None
    waiting = [
        p
        for p in pieces
        if p.run_id == run_id and p.mode == "offline" and Path(p.path).is_dir() and not synced(p)
    ]
    if waiting:
        raise ganlab.GanlabError(
            f"{run_dir}: the run was logged offline and not uploaded yet, so W&B's server does "
            f"not have its model. Upload it first with: {sync_commands(waiting)}"
        )


def link_model(name: str, target: str, aliases: list[str]) -> Any:
    """Link the logged artifact ``name`` into the collection ``target`` with ``aliases``."""
    import wandb

    try:
        artifact = wandb.Api().artifact(name, type="model")
        return artifact.link(target, aliases=aliases or None)
    except Exception as exc:  # W&B's errors: network, not found, no access
        raise ganlab.GanlabError(
            f"W&B could not link {name} into {target}: {type(exc).__name__}: {exc}. Check "
            "that the run was uploaded (wandb sync), that the artifact exists on W&B, and "
            "that your account may write to the registry."
        ) from exc


def check_alias(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    bad = [v for v in values if not v or alias(v) != v]
    if bad:
        raise click.BadParameter(f"{bad}: an alias is letters, digits, '-', '_' and '.'.")
    return list(values)


@click.group("wandb")
def wandb_group() -> None:
    """Weights & Biases: what needs W&B's server (a W&B account and the network).

    Training, logging and sweeps work offline without an account; see docs/outputs.md.
    """


@wandb_group.command("link")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--which",
    type=click.Choice(["best", "latest"]),
    default="best",
    show_default=True,
    help="The version of the run's model artifact: the best checkpoint (the `best` "
    "callback's), or the last one logged.",
)
@click.option(
    "--alias",
    "aliases",
    multiple=True,
    callback=check_alias,
    help="An alias for the linked version in the registry, e.g. production (repeatable); "
    "W&B adds latest.",
)
@click.option(
    "--target",
    metavar="wandb-registry-REGISTRY/COLLECTION",
    help=f"The registry collection. Default: {DEFAULT_REGISTRY}/<recipe name>.",
)
@ganlab.user_command
def link(run_dir: Path, which: str, aliases: list[str], target: str | None) -> None:
    """Link RUN_DIR's model artifact into W&B's registry.

    Needs a W&B account (`wandb login`) and the network; a run logged offline is uploaded
    first with `wandb sync` (the command run.json and the end of the run print).

    \b
    Examples:
      ganlab wandb link runs/quickstart/20250101-120000-s0 --alias candidate
      ganlab wandb link RUN --which latest --target wandb-registry-model/faces
    """
    info = read_run(run_dir)
    name = model_name(run_dir, info, which)
    check_can_reach_wandb(run_dir, info)
    target = target or default_target(run_dir)
    link_model(name, target, aliases)
    shown = f" as {', '.join(aliases)}" if aliases else ""
    click.echo(f"Linked {name} into {target}{shown}.")
