"""What a hook or metric can do through `ganlab.RunView`: read the run, sample and score,
and nothing that changes training (no setter, no engine state, models and RNG untouched)."""

from __future__ import annotations

import random

import numpy as np
import pluggy
import pytest
import torch

import ganlab
from ganlab import hookspecs
from ganlab.engine.assemble import NoHooks, assemble_run
from ganlab.engine.run import GuardedHooks, Run
from tests.conftest import TINY_QUICKSTART


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A tiny DCGAN run at step 0 (D has batch-norm statistics), nothing trained; the tests
    change nothing of it but ``should_stop``."""
    resolved = ganlab.load_recipe("recipes/quickstart.yaml", [*TINY_QUICKSTART, "loggers=[]"])
    return assemble_run(resolved, torch.device("cpu"), tmp_path_factory.mktemp("run"), NoHooks())


def test_the_view_reads_the_run_and_sets_nothing(run: Run) -> None:
    view = run.view
    assert view is run.view  # one view for the run's life: a plugin may key on it
    assert (view.step, view.dir, view.image_shape) == (0, run.dir, (3, 16, 16))
    assert view.dataset_size == 64 and view.class_names is None and view.latent_shape
    for name, value in [("step", 5), ("epoch", 1), ("should_stop", True), ("opt_g", None)]:
        with pytest.raises(AttributeError, match="RunView"):
            setattr(view, name, value)
    assert (run.step, run.epoch, run.should_stop) == (0, 0, False)
    for engine_state in ("opt_g", "opt_d", "schedulers", "precision", "batches", "hook"):
        with pytest.raises(AttributeError, match=f"no {engine_state!r}"):
            getattr(view, engine_state)
    # What it hands out are copies: changing them changes nothing of the run's.
    view.fixed_latents.zero_()
    assert run.fixed_latents.abs().sum() > 0
    with pytest.raises(TypeError):
        view.keys["loss_d"] = ganlab.KeyInfo("mine")  # type: ignore[index]
    view.stop()
    assert run.should_stop


def reseed() -> None:
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)


def draws() -> tuple[float, float, float]:
    """One draw from each of Python's, NumPy's and torch's global streams."""
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_scoring_and_sampling_leave_the_models_and_the_random_streams_as_they_were(
    run: Run,
) -> None:
    """D scores and G samples in eval mode, but afterwards each is in its training mode
    with the same batch-norm statistics, and no random stream has moved."""
    d, g = run.discriminator, run.generator
    assert d.training and g.training
    buffers = {name: b.clone() for name, b in [*d.named_buffers(), *g.named_buffers()]}
    assert any("running_mean" in name for name in buffers)  # the check below can fail
    reseed()

    images = run.view.generate(run.view.fixed_latents[:8])  # G in training mode: batch stats
    scores = run.view.score(images)
    sampled = run.view.sample_images(4, seed=0)

    after = draws()
    reseed()
    assert after == draws()  # as if nothing had run in between
    assert scores.shape == (8,) and sampled.dtype == torch.uint8 and sampled.shape[0] == 4
    assert d.training and g.training
    for name, buffer in [*d.named_buffers(), *g.named_buffers()]:
        assert torch.equal(buffer, buffers[name]), name


def test_the_hook_relay_hands_plugins_the_view_never_the_run(run: Run) -> None:
    """Every event goes through `GuardedHooks`: a hook given the engine's `Run` by mistake
    is an error in the engine, not a plugin that quietly holds the optimizers."""
    seen: list[object] = []

    class Watcher:
        @ganlab.hookimpl
        def ganlab_run_end(self, run: ganlab.RunView) -> None:
            seen.append(run)

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(Watcher())
    relay = GuardedHooks(pm.hook)
    relay.ganlab_run_end(run=run.view)
    assert seen == [run.view]
    with pytest.raises(TypeError, match=r"run\.view"):
        relay.ganlab_run_end(run=run)
    assert seen == [run.view]
