"""A run from its first step to its end: completed, interrupted by a signal, or failed.

`Life.live` trains to the end (`ganlab.engine.loop.Loop`), publishes the final checkpoint,
and writes ``run.json`` with how the run ended; on an error it marks the run folder
``interrupted`` or ``failed`` and turns the error into one message that says what went wrong,
whose code it came from, and what became of the run folder.
"""

from __future__ import annotations

import contextlib
import errno
import time

import click

from ganlab.contracts import Metric, Observer
from ganlab.engine.components import Built
from ganlab.engine.loop import Loop
from ganlab.engine.run import Run
from ganlab.engine.signals import signals_stop
from ganlab.engine.step import Step
from ganlab.errors import GanlabError, PluginError, RunInterrupted
from ganlab.files.atomic import write_json_atomic
from ganlab.files.checkpoint import publish_final, step_checkpoints
from ganlab.plugin_manager.blame import (
    Suspect,
    code_home,
    describe,
    failure,
    find_culprit,
    is_out_of_memory,
    out_of_memory,
)
from ganlab.plugin_manager.loading import Plugins
from ganlab.plugin_manager.registry import Component
from ganlab.recipe.models import Resolved

#: errno values that mean "no room left to write".
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Life:
    """One run from its first step to its end, and the run.json and message that end it."""

    def __init__(
        self,
        run: Run,
        plugins: Plugins,
        resolved: Resolved,
        observers: list[Built[Observer]],
        metrics: list[Built[Metric]],
    ) -> None:
        self.run = run
        self.plugins = plugins
        self.resolved = resolved
        self.observers = observers
        self.step = Step(run, describe(resolved.get("loss")[0], "loss"))
        self.loop = Loop(run, self.step, metrics)
        # A resumed run's wall time and images add to those of its earlier segments.
        self.earlier_wall = float(run.info.get("wall_seconds") or 0.0)
        self.earlier_images = int(run.info.get("images_seen") or 0)

    def live(self) -> None:
        """Train to the end and end the run: ``run.json`` says how it ended; an error that
        stopped it is raised again, explained (`explain`) where ganlab can say more."""
        run = self.run
        started = time.perf_counter()
        try:
            with signals_stop(self.loop.request_stop):
                last = self.loop.run_to_end()
                if run.group.is_main:
                    run.log_file("checkpoint", publish_final(last), kind="model")
                run.hook.ganlab_run_end(run=run.view)
                self.finish("completed", started)  # after run_end: plugins may add to info
        except BaseException as exc:
            with contextlib.suppress(OSError):  # best effort: the disk may be what failed
                self.loop.flush(check=False)
                interrupted = isinstance(exc, (KeyboardInterrupt, RunInterrupted))
                run.info["error"] = f"{type(exc).__name__}: {exc}"
                self.finish("interrupted" if interrupted else "failed", started)
            try:
                run.hook.ganlab_run_error(run=run.view, error=exc)
            except Exception as hook_exc:  # must not hide the error that stopped the run
                click.echo(f"ganlab: while stopping: {self.explain(hook_exc)}", err=True)
            explained = self.explain(exc)
            if explained is not None:
                raise explained from exc
            raise
        finally:
            with contextlib.suppress(OSError):
                self.loop.log.close()

    def finish(self, status: str, started: float) -> None:
        """Write run.json as the run ends (rank 0)."""
        run = self.run
        if not run.group.is_main:
            return
        # Every segment of a resumed run counts: its wall time and images are added up.
        wall = self.earlier_wall + time.perf_counter() - started
        images = self.earlier_images + run.images_seen
        run.info.update(
            status=status,
            keys={key: info.as_json() for key, info in run.keys.items()},
            steps=run.step,
            epochs_completed=run.epoch,
            images_seen=images,
            wall_seconds=round(wall, 3),
            images_per_second=round(images / wall, 1) if wall > 0 else None,
            ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        write_json_atomic(run.dir / "run.json", run.info)

    # --- what to tell the user when the run stops on an error ---------------------------------

    def explain(self, exc: BaseException) -> GanlabError | None:
        """The error to report for ``exc``, which stopped the run (None: ``exc`` itself):
        a file-system error or lack of memory says what to do; an error in a plugin's code
        names the plugin. Either way the message says what became of the run folder."""
        run = self.run
        if not isinstance(exc, Exception) or type(exc) is RunInterrupted:
            return None
        kept = step_checkpoints(run.dir)
        folder = f"{run.dir} is marked failed; " + (
            f"its newest checkpoint is {kept[-1].name}." if kept else "it has no checkpoint yet."
        )
        if isinstance(exc, GanlabError):
            return type(exc)(f"{exc} {folder}") if isinstance(exc, PluginError) else None
        if isinstance(exc, OSError):
            fix = "Free disk space" if exc.errno in DISK_FULL else "Fix the cause"
            where = f"{exc.filename}: " if exc.filename else ""
            return GanlabError(
                f"{where}{exc.strerror or exc}. The run stopped after step {run.step}; "
                f"{folder} {fix}, then continue with: ganlab run --resume {run.dir}"
            )
        if is_out_of_memory(exc):
            return out_of_memory(f"after step {run.step} (so {folder[:-1]})", exc)
        culprit = self.culprit(exc)
        if culprit is None:
            return None
        suspect, action = culprit
        error = failure(suspect.subject, action, exc, suspect.home)
        return type(error)(f"{error} {folder}")

    def culprit(self, exc: BaseException) -> tuple[Suspect, str] | None:
        """Whose code ``exc`` came from (`ganlab.plugin_manager.blame.find_culprit`), and when."""
        run = self.run
        by_object: dict[int, Suspect] = {}

        def suspect(component: Component, place: str, *objects: object) -> str:
            found = Suspect(describe(component, place), code_home(component.build))
            by_object.update({id(obj): found for obj in objects if obj is not None})
            return found.subject

        suspect(self.resolved.get("data")[0], "data", run.dataset, run.batches)
        suspect(self.resolved.get("loss")[0], "loss", run.loss)
        models = {
            "generator": (run.generator, self.step.generator, run.generator_ema),
            "discriminator": (run.discriminator, self.step.discriminator),
        }
        for place, objects in models.items():
            suspect(self.resolved.get(place)[0], place, *objects)
        names = {o.name: suspect(o.component, o.place, o.obj) for o in self.observers}
        by_code = {
            impl.function.__code__: Suspect(
                names.get(impl.plugin_name, f"plugin {impl.plugin_name!r}"),
                code_home(impl.function),
                hook,
            )
            for hook, impl in self.plugins.hook_implementations()
        }
        found = find_culprit(exc, by_object, by_code)
        if found is None:
            return None
        culprit, hook = found
        return culprit, f"in {hook} at step {run.step}" if hook else f"at step {run.step + 1}"
