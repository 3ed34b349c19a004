"""Weights & Biases: every logged row at its training step, the sample images, the
animation, the model checkpoints, the system metrics and the console, in an offline W&B run
inside the run folder (``<run>/wandb/offline-run-*``) unless W&B is asked to go online.

The mode is ``WANDB_MODE`` when it is set (``ganlab run --wandb MODE`` sets it), else the
logger's ``mode`` param, else ``offline``: a run never needs a network or an API key. An
offline run is uploaded later with the ``wandb sync ...`` command printed at the end and
kept in ``run.json`` under ``wandb``. A resumed run continues the same W&B run, one more
piece (folder) of it; the sync command names them all. docs/outputs.md says what W&B gets.

W&B is an optional extra (``pip install 'ganlab[wandb]'``): without it a recipe that names
this logger trains all the same, and the logger says once how to install it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

import ganlab
from ganlab_plugins.wandb.config import default_group, run_config

# `ganlab eval`'s scores into the evaluated run's W&B run: a hook of this plugin module.
from ganlab_plugins.wandb.eval_logging import (
    ganlab_checkpoint_evaluated as ganlab_checkpoint_evaluated,
)
from ganlab_plugins.wandb.history import STEP, History
from ganlab_plugins.wandb.lineage import use_data
from ganlab_plugins.wandb.models import log_model, model_version
from ganlab_plugins.wandb.params import WandbParams
from ganlab_plugins.wandb.pieces import (
    Piece,
    floor,
    read_pieces,
    record_finish,
    record_start,
    sync_commands,
    synced,
    wait_for_a_new_second,
)
from ganlab_plugins.wandb.run_options import GROUP, NAME, NOTES, TAGS, from_env
from ganlab_plugins.wandb.session import (
    INSTALL,
    Mode,
    effective_mode,
    has_credentials,
    installed,
    is_rank_zero,
    setup_wandb,
)
from ganlab_plugins.wandb.tables import SampleTables

#: How often W&B writes its buffered records to its files (W&B's default: every 15 s): a
#: session killed with SIGKILL loses what was not written yet.
FLUSH_SECONDS = 2.0


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
        self.tables = SampleTables(params.table_every, params.table_rows)

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

        # The earlier pieces of this run's W&B run (it was resumed), from ganlab's record.
        recorded = [p for p in read_pieces(run.dir, run.info) if p.mode == self.mode]
        run_id = recorded[-1].run_id if recorded else None
        earlier = [p for p in recorded if p.run_id == run_id]
        wait_for_a_new_second(earlier)

        kwargs = self._init_kwargs(run, run_id, earlier[-1] if earlier else None)
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
            earlier = []  # the offline pieces, if any, are of another W&B run
            self.wb = setup_wandb("offline").init(mode="offline", **kwargs)
        here = Path(self.wb.settings.sync_dir).absolute()  # absolute: works from anywhere
        piece = Piece(
            str(here),
            self.wb.id,
            self.mode,
            time.time(),
            *(kwargs[k] for k in ("name", "group", "tags", "notes")),
        )
        record_start(run.dir, piece)

        surely = floor(earlier, run.step)
        if self.mode == "online" and earlier:
            # Online, W&B's server has the resumed run's summary: its last training step.
            last = self.wb.summary.get(STEP)
            if isinstance(last, int):
                surely = max(surely or 0, last)
        self.history = History(self.wb, surely, run.step)
        # Every chart against the training step. Keys with a direction get their summary
        # when first logged (`describe`).
        self.wb.define_metric(STEP)
        for namespace in ("train", "eval", "media"):
            self.define_namespace(namespace)
        # A resumed run's rows up to its checkpoint that the W&B run may lack (those of a
        # run logged to another W&B run before, say). The rows after the checkpoint come
        # again as the run repeats those steps.
        for row in run.history:
            step = int(row["step"])
            values = {k: v for k, v in row.items() if k != "step"}
            self.history.row(step, {self.describe(run, k): v for k, v in values.items()})

        offline = [p for p in (*earlier, piece) if p.mode == "offline" and Path(p.path).is_dir()]
        self.info = {
            "mode": self.mode,
            "id": self.wb.id,
            "path": str(here),
            **{k: kwargs[k] for k in ("project", "entity", "name", "group", "job_type")},
            "tags": kwargs["tags"],
            "notes": kwargs["notes"],
            "resumed": "resume" in kwargs,
        }
        if self.mode == "online":
            self.info["url"] = self.wb.url
        if offline:
            self.info["paths"] = [p.path for p in offline]
            self.info["sync"] = sync_commands(offline)
            killed = [p.path for p in offline if p is not piece and not p.finished]
            if killed:
                self.info["killed"] = killed
        self.info["data_artifact"] = use_data(self.wb, run)  # the data it trains on: an input
        run.info["wandb"] = self.info  # run.json gets it when the run ends or fails

    def _init_kwargs(
        self, run: ganlab.RunView, run_id: str | None, before: Piece | None
    ) -> dict[str, Any]:
        """``wandb.init``'s arguments: the command line (W&B's environment variables) wins,
        then an earlier piece of the same W&B run, then the recipe, then ganlab's default."""
        import wandb

        p = self.params
        tags = [f"seed-{run.seed}"]
        git = run.info.get("git")
        if isinstance(git, dict) and git.get("commit"):
            tags.append(str(git["commit"])[:7])
        cli_tags = [t.strip() for t in (from_env(TAGS) or "").split(",") if t.strip()]
        for tag in (*(before.tags if before else ()), *p.tags, *cli_tags):
            if tag not in tags:
                tags.append(tag)
        settings = wandb.Settings(
            silent=True,  # ganlab prints what matters; no W&B banner
            console="auto" if p.console else "off",
            x_disable_stats=not p.system_metrics,
            x_transaction_log_flush_interval=FLUSH_SECONDS,
        )
        kwargs: dict[str, Any] = dict(
            project=from_env("WANDB_PROJECT") or p.project,
            entity=from_env("WANDB_ENTITY") or p.entity,
            group=from_env(GROUP)
            or (before.group if before else None)
            or p.group
            or default_group(run.recipe.model_dump(mode="json")),
            job_type=from_env("WANDB_JOB_TYPE") or "train",
            name=from_env(NAME) or (before.name if before else None) or p.name or run.dir.name,
            notes=from_env(NOTES) or (before.notes if before else None) or p.notes,
            tags=tags,
            config=run_config(run),
            dir=str(run.dir),
            reinit="create_new",  # its own run: leaves any other W&B run in the process alone
            settings=settings,
        )
        if run_id:
            # A resumed ganlab run continues its W&B run. Offline, W&B records the wish;
            # `wandb sync` then resumes the run on the server.
            kwargs.update(id=run_id, resume="allow")
        return kwargs

    def finish(self, run: ganlab.RunView, exit_code: int) -> None:
        wb, self.wb = self.wb, None
        if wb is None:
            return
        history = self.history
        if history is not None:
            history.release()  # files still waiting for their step
            history.close()  # before `summarize`: W&B updates the summary from each row
            history.warn_dropped()
            self.info["last_step"] = history.last if history.last is not None else history.floor
        self.summarize(wb, run)
        wb.finish(exit_code=exit_code)
        record_finish(run.dir, self.info["path"], self.info.get("last_step"))
        if self.mode == "online":
            click.echo(f"W&B run: {wb.url}")
        elif self.info.get("sync"):
            for path in self.info.get("killed", []):
                click.echo(
                    f"W&B: warning: {path} is from a session killed before it finished W&B, "
                    "so it may end in a record cut short, where `wandb sync` stops the whole "
                    "command: the command below syncs the pieces after it apart. Run all of "
                    "it, each part in turn.",
                    err=True,
                )
            count = len(self.info["paths"])
            note = f" ({count} pieces of one W&B run)" if count > 1 else ""
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
    def ganlab_step_end(self, run: ganlab.RunView, stats: ganlab.StepStats) -> None:
        # Tables of samples (tables.py); the last step's at the end, after its metrics.
        if self.history is not None and self.tables.due(stats.step, run.total_steps):
            self.history.media(stats.step, self.tables.tables(run))

    @ganlab.hookimpl
    def ganlab_run_end(self, run: ganlab.RunView) -> None:
        if self.history is not None and self.tables.due_at_end(run.step):
            self.history.media(run.step, self.tables.tables(run))
        if self.wb is not None:
            self.wb.summary["steps"] = run.step
        self.finish(run, exit_code=0)

    @ganlab.hookimpl
    def ganlab_run_error(self, run: ganlab.RunView, error: BaseException) -> None:
        try:
            self.finish(run, exit_code=1)
        except Exception as exc:  # must not hide the run's own error
            click.echo(f"W&B: could not finish the run: {type(exc).__name__}: {exc}", err=True)


class NotInstalled:
    """The wandb logger where W&B is not installed: the run trains, and this says so once."""

    @ganlab.hookimpl
    def ganlab_run_start(self, run: ganlab.RunView) -> None:
        if is_rank_zero():
            click.echo(
                f"W&B: not installed, so this run is not logged to W&B ({INSTALL} adds it).",
                err=True,
            )


def build_wandb(params: WandbParams) -> WandbLogger | NotInstalled:
    """Log the run to Weights & Biases: offline in the run folder unless asked for online."""
    mode = effective_mode(params.mode)
    if mode != "disabled" and not installed():
        return NotInstalled()
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


@ganlab.hookimpl
def ganlab_run_columns(folder: Path, info: dict[str, Any]) -> dict[str, str] | None:
    """``ganlab runs``: the run's W&B id, and whether ``wandb sync`` uploaded its offline
    pieces (``yes``, ``no``, or how many of them), ``online`` for an online run."""
    recorded = read_pieces(folder, info)
    if not recorded:
        return None
    run_id = recorded[-1].run_id
    offline = [p for p in recorded if p.run_id == run_id and p.mode == "offline"]
    offline = [p for p in offline if Path(p.path).is_dir()]
    if not offline:
        state = "online" if recorded[-1].mode == "online" else "-"
    else:
        done = sum(synced(p) for p in offline)
        state = "yes" if done == len(offline) else "no" if not done else f"{done}/{len(offline)}"
    return {"W&B id": run_id, "W&B synced": state}
