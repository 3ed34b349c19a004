"""Weights & Biases: every logged row, the sample images, the animation and the final
checkpoint, in an offline W&B run inside the run folder (``<run>/wandb/offline-run-*``)
unless W&B is asked to go online.

The mode is ``WANDB_MODE`` when it is set (``ganlab run --wandb MODE`` sets it), else the
logger's ``mode`` param, else ``offline``: a run never needs a network or an API key. An
offline run is uploaded later with the ``wandb sync ...`` command printed at the end and
kept in ``run.json`` under ``wandb``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import Field

import ganlab

#: The modes this logger runs W&B in.
Mode = Literal["offline", "online", "disabled"]

#: WANDB_MODE values W&B accepts, as the mode this logger uses.
MODES: dict[str, Mode] = {
    "offline": "offline",
    "dryrun": "offline",
    "online": "online",
    "run": "online",
    "disabled": "disabled",
}

STEP = "train/step"  #: the x-axis of every chart: the training step


class WandbParams(ganlab.Params):
    mode: Mode | None = Field(
        default=None,
        description="offline, online or disabled; WANDB_MODE wins when set; default offline",
    )
    project: str = Field(default="ganlab", min_length=1, description="W&B project")
    entity: str | None = Field(default=None, description="W&B user or team (default: yours)")
    tags: list[str] = Field(
        default_factory=list, description="tags added to seed-<N> and the git commit"
    )
    log_checkpoint: bool = Field(
        default=True, description="log checkpoints (the final one) as model artifacts"
    )


def effective_mode(param: Mode | None) -> Mode:
    """``WANDB_MODE`` if set, else the ``mode`` param, else ``offline``."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env:
        if env not in MODES:
            raise ganlab.GanlabError(
                f"WANDB_MODE={env!r} is not a W&B mode this logger knows. "
                "Set it to offline, online or disabled (or unset it)."
            )
        return MODES[env]
    return param or "offline"


def setup_wandb(mode: Mode) -> Any:
    """Import wandb with its process-wide settings in ``mode`` and silent; returns wandb.

    W&B's own usage telemetry follows these settings, not a run's: left at their default
    (online), an offline run would still try the network when the process exits. Silent
    also keeps ``wandb.login()`` from asking the server for the user's name.
    """
    import wandb

    wandb.setup(wandb.Settings(mode=mode, silent=True))
    return wandb


def has_credentials() -> bool:
    """Whether W&B has credentials for its server, found without a prompt or the network."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    wandb = setup_wandb("online")  # login() refuses to look while the process is offline
    try:
        # Reads the environment, the settings files and .netrc; no prompt, no network.
        return bool(wandb.login(prompt=False, verify=False))
    except TypeError:  # a wandb older than login(prompt=...)
        return bool(wandb.api.api_key)
    except Exception as exc:  # e.g. a malformed key in .netrc
        raise ganlab.GanlabError(
            f"wandb logger: W&B's credentials are not usable: {exc} Run `wandb login` again, "
            "or log offline (--wandb offline)."
        ) from exc


def is_rank_zero() -> bool:
    """False in every process of a distributed run but the first."""
    rank = os.environ.get("RANK", "").strip()
    if rank and rank != "0":
        return False
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def artifact_name(*parts: str) -> str:
    """A valid W&B artifact name (letters, digits, ``-``, ``_``, ``.``; at most 128)."""
    name = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", p).strip("-") for p in parts if p)
    return name[:128] or "ganlab-model"


class WandbLogger:
    """Sends one ganlab run to one W&B run (rank 0 only)."""

    def __init__(self, params: WandbParams, mode: Mode) -> None:
        self.params = params
        self.mode = mode
        self.wb: Any = None  # the wandb Run, once started
        self.started = False  # start() ran (also when it decided to do nothing)
        self.paths: list[str] = []  # offline run folders of this ganlab run, oldest first

    # --- start and finish ---------------------------------------------------------------

    def start(self, run: ganlab.Run) -> None:
        if self.started:
            return
        self.started = True
        if self.mode == "disabled" or not is_rank_zero():
            return
        wandb = setup_wandb(self.mode)
        previous = run.info.get("wandb")
        previous = previous if isinstance(previous, dict) else {}
        kwargs = self._init_kwargs(run, previous)
        try:
            self.wb = wandb.init(mode=self.mode, **kwargs)
        except Exception as exc:
            if self.mode != "online":
                raise
            click.echo(
                f"W&B: could not start an online run ({type(exc).__name__}: {exc}); "
                "logging offline instead.",
                err=True,
            )
            self.mode = "offline"
            self.wb = setup_wandb("offline").init(mode="offline", **kwargs)

        # Every chart against the training step; metrics keep their min, max and last (the
        # best is the min for the built-ins, the max for a higher-is-better plugin metric).
        # (One glob per prefix: a catch-all "*" would hide eval/*'s summary.)
        self.wb.define_metric(STEP)
        self.wb.define_metric("train/*", step_metric=STEP)
        self.wb.define_metric("media/*", step_metric=STEP)
        self.wb.define_metric("eval/*", step_metric=STEP, summary="min,max,last")

        # Offline pieces of this ganlab run (earlier ones when it was resumed), to upload.
        self.paths = [p for p in previous.get("paths", []) if isinstance(p, str)]
        here = str(self.wb.settings.sync_dir)
        if self.mode == "offline":
            self.paths.append(here)
        # The core records the versions of what it imports; this plugin adds its own.
        run.info.setdefault("versions", {})["wandb"] = wandb.__version__
        info: dict[str, Any] = {"mode": self.mode, "id": self.wb.id, "path": here}
        if self.mode == "online":
            info["url"] = self.wb.url
        if self.paths:
            info["paths"] = self.paths
            info["sync"] = "wandb sync " + " ".join(shlex.quote(p) for p in self.paths)
        run.info["wandb"] = info  # run.json gets it when the run ends or fails

    def _init_kwargs(self, run: ganlab.Run, previous: dict[str, Any]) -> dict[str, Any]:
        import wandb

        tags = [f"seed-{run.seed}"]
        git = run.info.get("git")
        if isinstance(git, dict) and git.get("commit"):
            tags.append(str(git["commit"])[:7])
        tags += [t for t in self.params.tags if t not in tags]
        kwargs: dict[str, Any] = dict(
            project=self.params.project,
            entity=self.params.entity,
            group=run.name or None,
            job_type="train",
            name=run.dir.name,
            tags=tags,
            config=run.recipe.model_dump(mode="json"),
            dir=str(run.dir),
            reinit="create_new",  # its own run: leaves any other W&B run in the process alone
            settings=wandb.Settings(
                silent=True,  # ganlab prints what matters; no W&B banner
                console="off",  # the console output stays the user's
                x_disable_stats=True,  # no system-metrics sampler
            ),
        )
        if previous.get("id") and previous.get("mode") == self.mode:
            # A resumed ganlab run continues its W&B run (`wandb sync` joins the pieces).
            kwargs.update(id=previous["id"], resume="allow")
        return kwargs

    def finish(self, exit_code: int) -> None:
        wb, self.wb = self.wb, None
        if wb is None:
            return
        wb.finish(exit_code=exit_code)
        if self.mode == "online":
            click.echo(f"W&B run: {wb.url}")
        elif self.paths:
            sync = " ".join(shlex.quote(p) for p in self.paths)
            click.echo(f"W&B offline run saved. Upload it with: wandb sync {sync}")

    # --- event hooks --------------------------------------------------------------------

    @ganlab.hookimpl(tryfirst=True)  # before callbacks, so their files find the W&B run
    def ganlab_run_start(self, run: ganlab.Run) -> None:
        self.start(run)

    @ganlab.hookimpl
    def ganlab_log_metrics(
        self, run: ganlab.Run, step: int, values: dict[str, float | int]
    ) -> None:
        self.start(run)
        if self.wb is None:
            return
        row: dict[str, Any] = {STEP: step}
        for key, value in values.items():
            # Each key under its namespace: train/, eval/, or a plugin's own (run.log).
            info = run.keys.get(key)
            row[f"{info.namespace if info else 'eval'}/{key}"] = value
        self.wb.log(row)  # one committed row per logged row: a burst keeps every step

    @ganlab.hookimpl
    def ganlab_log_file(self, run: ganlab.Run, step: int, name: str, path: Path, kind: str) -> None:
        self.start(run)
        if self.wb is None:
            return
        import wandb

        if kind == "image":
            # From the PNG on disk (uint8): W&B casts float arrays to uint8 without scaling.
            self.wb.log({STEP: step, f"media/{name}": wandb.Image(str(path))})
        elif kind == "video":
            # A GIF file needs no moviepy (only raw frames do).
            self.wb.log({STEP: step, f"media/{name}": wandb.Video(str(path))})
        elif kind == "model" and self.params.log_checkpoint:
            final = name == "checkpoint"  # the core's final checkpoint
            artifact = wandb.Artifact(
                artifact_name(run.name or "ganlab", "model" if final else name),
                type="model",
                metadata={"step": step, "seed": run.seed, "file": path.name, "name": name},
            )
            artifact.add_file(str(path))
            aliases = [f"step-{step}", *(["final"] if final else [])]
            self.wb.log_artifact(artifact, aliases=aliases)

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.Run) -> None:
        if self.wb is not None:
            self.wb.summary["steps"] = run.step
        self.finish(exit_code=0)

    @ganlab.hookimpl
    def ganlab_run_error(self, run: ganlab.Run, error: BaseException) -> None:
        try:
            self.finish(exit_code=1)
        except Exception as exc:  # must not hide the run's own error
            click.echo(f"W&B: could not finish the run: {type(exc).__name__}: {exc}", err=True)


def set_mode_for_this_command(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> None:
    """``--wandb MODE``: W&B's own switch, ``WANDB_MODE``, set until the command ends."""
    if value is None:
        return
    previous = os.environ.get("WANDB_MODE")
    os.environ["WANDB_MODE"] = value

    def restore() -> None:
        if previous is None:
            os.environ.pop("WANDB_MODE", None)
        else:
            os.environ["WANDB_MODE"] = previous

    ctx.call_on_close(restore)


@ganlab.hookimpl
def ganlab_register_commands(cli: click.Group) -> None:
    """``ganlab run --wandb offline|online|disabled``."""
    run = cli.commands.get("run")
    if run is None:
        return
    option = click.Option(
        ["--wandb"],
        type=click.Choice(["offline", "online", "disabled"]),
        expose_value=False,
        callback=set_mode_for_this_command,
        help="Mode of the recipe's wandb logger for this run (sets WANDB_MODE; the logger's "
        "default is offline). Has no effect on a recipe without the wandb logger.",
    )
    names = [param.name for param in run.params]
    run.params.insert(names.index("debug") if "debug" in names else len(names), option)


def build_wandb(params: WandbParams) -> WandbLogger:
    """Log the run to Weights & Biases: offline in the run folder unless asked for online."""
    mode = effective_mode(params.mode)
    if mode == "online" and not has_credentials():
        raise ganlab.GanlabError(
            "wandb logger: W&B is set to online but has no API key. Run `wandb login` "
            "(or set WANDB_API_KEY), or log offline (--wandb offline, or mode: offline) "
            "and upload later with `wandb sync`."
        )
    return WandbLogger(params, mode)


@ganlab.hookimpl
def ganlab_register_loggers(register: ganlab.Register) -> None:
    register("wandb", build_wandb, params=WandbParams)
