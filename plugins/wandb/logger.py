"""Weights & Biases: every logged row at its training step, the sample images, the
animation, the model checkpoints, the system metrics and the console, in an offline W&B run
inside the run folder (``<run>/wandb/offline-run-*``) unless W&B is asked to go online.

The mode is ``WANDB_MODE`` when it is set (``ganlab run --wandb MODE`` sets it), else the
logger's ``mode`` param, else ``offline``: a run never needs a network or an API key. An
offline run is uploaded later with the ``wandb sync ...`` command printed at the end and
kept in ``run.json`` under ``wandb``. A resumed run continues the same W&B run, one more
piece (folder) of it; the sync command names them all. docs/outputs.md says what W&B gets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import Field, field_validator

import ganlab
from ganlab_plugins.wandb.config import default_group, run_config
from ganlab_plugins.wandb.history import STEP, History
from ganlab_plugins.wandb.models import log_model, model_version
from ganlab_plugins.wandb.offline import (
    Piece,
    is_cut,
    last_step,
    pieces,
    run_record,
    sync_commands,
)

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

#: W&B's own environment variables for what ``ganlab run --name/--notes/--tags/--group``
#: set; like ``WANDB_MODE``, they win over the recipe.
NAME, NOTES, TAGS, GROUP = "WANDB_NAME", "WANDB_NOTES", "WANDB_TAGS", "WANDB_RUN_GROUP"

#: How often W&B writes its buffered records to the transaction log (W&B's default: every
#: 15 s, ``x_transaction_log_flush_interval``): a session killed with SIGKILL loses what was
#: not written yet (the rows come back when the run is resumed; media, system metrics and
#: console lines of those seconds do not).
FLUSH_SECONDS = 2.0

#: What W&B accepts as a tag (wandb 0.31, ``wandb_settings.py``, ``validate_run_tags``).
TAG_RULE = "a tag has 1 to 64 characters and no comma"


def tag_ok(tag: str) -> bool:
    return 1 <= len(tag) <= 64 and "," not in tag


class WandbParams(ganlab.Params):
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

    @field_validator("tags")
    @classmethod
    def _tags_w_and_b_takes(cls, tags: list[str]) -> list[str]:
        bad = [tag for tag in tags if not tag_ok(tag)]
        if bad:
            raise ValueError(f"{bad}: {TAG_RULE}")
        return tags


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


def from_env(name: str) -> str | None:
    """A W&B environment variable's value, None when unset or empty."""
    return os.environ.get(name, "").strip() or None


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


def wait_for_a_new_second(earlier: list[Piece]) -> None:
    """W&B names a piece's folder by the second it starts in: a piece started in the same
    second as an earlier one would take over its folder and transaction log."""
    now = time.time()
    stamps = {time.strftime("%Y%m%d_%H%M%S", f(now)) for f in (time.localtime, time.gmtime)}
    if any(piece.start in stamps for piece in earlier):
        time.sleep(1.05 - now % 1)


def key_info(run: ganlab.RunView, key: str) -> tuple[str, str | None]:
    """A logged key's namespace and direction (``"lower"``, ``"higher"`` or None), from
    ``run.keys``. A resumed run's ``run.keys`` hold its earlier sessions' keys too, even
    after a session killed outright (the runner records each key in run.json as it
    appears); only a key of a run from before ganlab did so is described nowhere, and is
    taken for a metric's result."""
    info = run.keys.get(key)
    if info is not None:
        return info.namespace, info.better
    return "eval", None


class WandbLogger:
    """Sends one ganlab run to one W&B run (rank 0 only)."""

    def __init__(self, params: WandbParams, mode: Mode) -> None:
        self.params = params
        self.mode = mode
        self.wb: Any = None  # the wandb Run, once started
        self.history: History | None = None
        self.started = False  # start() ran (also when it decided to do nothing)
        self.info: dict[str, Any] = {}  # what run.json keeps under "wandb"
        self.namespaces: set[str] = set()  # "<namespace>/*" defined in W&B
        self.described: dict[str, str] = {}  # ganlab key -> its W&B key

    # --- start and finish ---------------------------------------------------------------

    def start(self, run: ganlab.RunView) -> None:
        if self.started:
            return
        self.started = True
        if self.mode == "disabled" or not is_rank_zero():
            return
        wandb = setup_wandb(self.mode)
        # The core records the versions of what it imports; this plugin adds its own.
        run.info.setdefault("versions", {})["wandb"] = wandb.__version__

        # The pieces this run folder holds already (it was resumed): read before W&B adds one.
        previous = run.info.get("wandb")
        previous = previous if isinstance(previous, dict) else {}
        offline = self.mode == "offline"
        earlier = [p for p in pieces(run.dir) if p.offline == offline]
        run_id = earlier[-1].run_id if earlier else None
        if run_id is None and previous.get("mode") == self.mode:
            run_id = previous.get("id")  # its folders are gone, W&B may have the run
        earlier = [p for p in earlier if p.run_id == run_id]
        steps = [s for s in (last_step(p.log) for p in earlier) if s is not None]
        floor = max(steps) if steps else previous.get("last_step")
        # What the newest earlier piece that got as far as its run record was called.
        records = (run_record(p.log) for p in reversed(earlier))
        before = next((record for record in records if record is not None), None)
        wait_for_a_new_second(earlier)

        kwargs = self._init_kwargs(run, run_id, before)
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

        self.history = History(self.wb, floor if isinstance(floor, int) else None, run.step)
        # Every chart against the training step (it is W&B's step too). Keys with a direction
        # get their summary when first logged (`describe`).
        self.wb.define_metric(STEP)
        for namespace in ("train", "eval", "media"):
            self.define_namespace(namespace)
        # A resumed run's rows up to its checkpoint that no earlier piece holds: W&B loses
        # what it had not written yet when a session is killed. (The rows after the
        # checkpoint come again as the run repeats those steps.)
        for row in run.history:
            step = int(row["step"])
            values = {k: v for k, v in row.items() if k != "step"}
            self.history.row(step, {self.describe(run, k): v for k, v in values.items()})

        # Absolute: run.json's command works from any folder. A piece killed before W&B
        # wrote its run record holds nothing to upload, and `wandb sync` would refuse the
        # whole command for it ("didn't find run info", core/internal/runsync/runreader.go).
        here = str(Path(self.wb.settings.sync_dir).absolute())
        uploadable = [p for p in earlier if p.offline and p.has_run_record]
        paths = [str(p.path.absolute()) for p in uploadable]
        # A killed session may leave its last record cut in half: `wandb sync` stops there.
        cut = [str(p.path.absolute()) for p in uploadable if is_cut(p.log)]
        if self.mode == "offline":
            paths.append(here)
        self.info = {
            "mode": self.mode,
            "id": self.wb.id,
            "path": here,
            "project": kwargs["project"],
            "entity": kwargs["entity"],
            "name": kwargs["name"],
            "group": kwargs["group"],
            "job_type": kwargs["job_type"],
            "tags": kwargs["tags"],
            "notes": kwargs["notes"],
            "resumed": "resume" in kwargs,
        }
        if self.mode == "online":
            self.info["url"] = self.wb.url
        if paths:
            self.info["paths"] = paths
            self.info["sync"] = sync_commands(paths, cut)
            if cut:
                self.info["cut"] = cut
        run.info["wandb"] = self.info  # run.json gets it when the run ends or fails

    def _init_kwargs(self, run: ganlab.RunView, run_id: str | None, before: Any) -> dict[str, Any]:
        """``wandb.init``'s arguments: the command line (W&B's environment variables) wins,
        then an earlier piece of the same W&B run, then the recipe, then ganlab's default."""
        import wandb

        p = self.params
        earlier_tags = list(before.tags) if before is not None else []
        tags = [f"seed-{run.seed}"]
        git = run.info.get("git")
        if isinstance(git, dict) and git.get("commit"):
            tags.append(str(git["commit"])[:7])
        cli_tags = [t.strip() for t in (from_env(TAGS) or "").split(",") if t.strip()]
        for tag in (*earlier_tags, *p.tags, *cli_tags):
            if tag not in tags:
                tags.append(tag)
        config = run_config(run)
        settings: dict[str, Any] = dict(
            silent=True,  # ganlab prints what matters; no W&B banner
            console="auto" if p.console else "off",
            x_disable_stats=not p.system_metrics,
        )
        if "x_transaction_log_flush_interval" in wandb.Settings.model_fields:  # wandb >= 0.2x
            settings["x_transaction_log_flush_interval"] = FLUSH_SECONDS
        kwargs: dict[str, Any] = dict(
            project=from_env("WANDB_PROJECT") or p.project,
            entity=from_env("WANDB_ENTITY") or p.entity,
            group=from_env(GROUP)
            or (before.run_group if before is not None and before.run_group else None)
            or p.group
            or default_group(run.recipe.model_dump(mode="json")),
            job_type=from_env("WANDB_JOB_TYPE") or "train",
            name=from_env(NAME)
            or (before.display_name if before is not None and before.display_name else None)
            or p.name
            or run.dir.name,
            notes=from_env(NOTES) or (before.notes if before is not None else None) or p.notes,
            tags=tags,
            config=config,
            dir=str(run.dir),
            reinit="create_new",  # its own run: leaves any other W&B run in the process alone
            settings=wandb.Settings(**settings),
        )
        if run_id:
            # A resumed ganlab run continues its W&B run. Offline, W&B records the wish
            # (the run record's `resume`); `wandb sync` then resumes the run on the server.
            kwargs.update(id=run_id, resume="allow")
        return kwargs

    def finish(self, run: ganlab.RunView, exit_code: int) -> None:
        wb, self.wb = self.wb, None
        if wb is None:
            return
        history = self.history
        if history is not None:
            history.release()  # files still waiting for their step
            history.warn_dropped()
            if history.last is not None:
                # Close the last row now: W&B would otherwise update the summary from it
                # after `summarize`, and its update would win.
                wb.log({}, step=history.last, commit=True)
            self.info["last_step"] = history.last if history.last is not None else history.floor
        self.summarize(wb, run)
        wb.finish(exit_code=exit_code)
        if self.mode == "online":
            click.echo(f"W&B run: {wb.url}")
        elif self.info.get("sync"):
            for path in self.info.get("cut", []):
                click.echo(
                    f"W&B: warning: {path} ends in a record cut in half (its session was "
                    "killed while W&B wrote it). `wandb sync` uploads that piece up to the "
                    "cut, reports it failed and syncs no later piece in the same command, "
                    "so the command below is split after it: run all of it, each part in "
                    "turn. The rows after the cut are in the next piece.",
                    err=True,
                )
            pieces_note = len(self.info["paths"])
            note = f" ({pieces_note} pieces of one W&B run)" if pieces_note > 1 else ""
            click.echo(f"W&B offline run saved{note}. Upload it with: {self.info['sync']}")

    def summarize(self, wb: Any, run: ganlab.RunView) -> None:
        """The summary of each key with a direction: its best (min or max) and last value over
        the whole run. W&B computes them from the rows it saw, which after ``--resume`` are
        only this piece's; ``run.history`` holds every piece's."""
        for key, wandb_key in self.described.items():
            _, better = key_info(run, key)
            values = [(row["step"], row[key]) for row in run.history if key in row]
            if better is None or not values:
                continue
            best = min if better == "lower" else max
            wb.summary[wandb_key] = {
                "min" if better == "lower" else "max": best(v for _, v in values),
                "last": max(values)[1],
            }

    # --- namespaces and directions ------------------------------------------------------

    def define_namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            self.namespaces.add(namespace)
            self.wb.define_metric(f"{namespace}/*", step_metric=STEP)

    def describe(self, run: ganlab.RunView, key: str) -> str:
        """``key``'s W&B name, ``<namespace>/<key>``, defined in W&B the first time: a key
        whose lower (higher) values are better keeps its min (max) and last value as its
        summary, any other key its last value."""
        known = self.described.get(key)
        if known is not None:
            return known
        namespace, better = key_info(run, key)
        self.define_namespace(namespace)
        wandb_key = f"{namespace}/{key}"
        if better is not None:
            self.wb.define_metric(
                wandb_key,
                step_metric=STEP,
                summary="min,last" if better == "lower" else "max,last",
            )
        self.described[key] = wandb_key
        return wandb_key

    # --- event hooks --------------------------------------------------------------------

    @ganlab.hookimpl(tryfirst=True)  # before callbacks, so their files find the W&B run
    def ganlab_run_start(self, run: ganlab.RunView) -> None:
        self.start(run)

    @ganlab.hookimpl
    def ganlab_log_metrics(
        self, run: ganlab.RunView, step: int, values: dict[str, float | int]
    ) -> None:
        self.start(run)
        if self.wb is None or self.history is None:
            return
        row = {self.describe(run, key): value for key, value in values.items()}
        self.history.row(step, row)

    @ganlab.hookimpl
    def ganlab_log_file(
        self, run: ganlab.RunView, step: int, name: str, path: Path, kind: str
    ) -> None:
        self.start(run)
        if self.wb is None or self.history is None:
            return
        import wandb

        if kind == "image":
            # From the PNG on disk (uint8): W&B casts float arrays to uint8 without scaling.
            self.history.media(step, {f"media/{name}": wandb.Image(str(path))})
        elif kind == "video":
            # A GIF file needs no moviepy (only raw frames do).
            self.history.media(step, {f"media/{name}": wandb.Video(str(path))})
        elif kind == "model" and self.params.log_checkpoint:
            version = model_version(run, step, name, path, self.info.get("group", ""))
            wb = self.wb
            self.history.after(step, lambda: log_model(wb, version))

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.RunView) -> None:
        if self.wb is not None:
            self.wb.summary["steps"] = run.step
        self.finish(run, exit_code=0)

    @ganlab.hookimpl
    def ganlab_run_error(self, run: ganlab.RunView, error: BaseException) -> None:
        try:
            self.finish(run, exit_code=1)
        except Exception as exc:  # must not hide the run's own error
            click.echo(f"W&B: could not finish the run: {type(exc).__name__}: {exc}", err=True)


# --- ganlab run's options -------------------------------------------------------------------


def set_env_for_this_command(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """An option callback that sets W&B's environment variable ``name`` until the command
    ends (a tuple of values, from a repeatable option, comma-joined as W&B reads it)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value == ():
            return
        if isinstance(value, tuple):
            bad = [tag for tag in value if not tag_ok(tag)]
            if bad:
                raise click.BadParameter(f"{bad}: {TAG_RULE}", ctx=ctx, param=param)
            value = ",".join(value)
        previous = os.environ.get(name)
        os.environ[name] = value

        def restore() -> None:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous

        ctx.call_on_close(restore)

    return callback


#: ``ganlab run``'s W&B options: flags, W&B's environment variable, metavar, help.
OPTIONS: list[tuple[str, str, str | None, str]] = [
    (
        "--wandb",
        "WANDB_MODE",
        None,
        "Mode of the recipe's wandb logger for this run (sets WANDB_MODE; the logger's "
        "default is offline). Has no effect on a recipe without the wandb logger.",
    ),
    ("--name", NAME, "TEXT", "W&B run name (default: the run folder's name)."),
    ("--notes", NOTES, "TEXT", "W&B run notes."),
    ("--tags", TAGS, "TAG", "A W&B tag, added to the recipe's (repeatable)."),
    ("--group", GROUP, "NAME", "W&B group (default: <recipe>-<hash of its configuration>)."),
]


@ganlab.hookimpl
def ganlab_register_commands(cli: click.Group) -> None:
    """``ganlab run --wandb offline|online|disabled --name --notes --tags --group``."""
    run = cli.commands.get("run")
    if run is None:
        return
    names = [param.name for param in run.params]
    at = names.index("debug") if "debug" in names else len(names)
    for flag, env, metavar, help_text in OPTIONS:
        option = click.Option(
            [flag],
            type=click.Choice(["offline", "online", "disabled"]) if env == "WANDB_MODE" else str,
            metavar=metavar,
            multiple=flag == "--tags",
            expose_value=False,
            callback=set_env_for_this_command(env),
            help=help_text,
        )
        run.params.insert(at, option)
        at += 1


# --- ganlab runs ----------------------------------------------------------------------------


@ganlab.hookimpl
def ganlab_run_columns(folder: Path, info: dict[str, Any]) -> dict[str, str] | None:
    """``ganlab runs``: the run's W&B id, and whether ``wandb sync`` uploaded its offline
    pieces (``yes``, ``no``, or how many of them), ``online`` for an online run."""
    recorded = info.get("wandb")
    recorded = recorded if isinstance(recorded, dict) else {}
    found = pieces(folder)
    run_id = (found[-1].run_id if found else None) or recorded.get("id")
    if not run_id:
        return None
    # A piece W&B wrote no run record into is never uploaded (see `start`): not counted.
    offline = [p for p in found if p.run_id == run_id and p.offline and p.has_run_record]
    if not offline:
        online = recorded.get("mode") == "online" or any(not p.offline for p in found)
        synced = "online" if online else "-"
    else:
        done = sum(p.synced for p in offline)
        synced = "yes" if done == len(offline) else "no" if not done else f"{done}/{len(offline)}"
    return {"W&B id": str(run_id), "W&B synced": synced}


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
