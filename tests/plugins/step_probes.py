"""Plugins that watch the training step from inside, for tests/test_step_contracts.py.

Each one records what it saw to a JSON-lines file named by its ``record`` param (one line per
call, with the process's rank), so a test can read what happened in a run that ran in another
process (torchrun, a resumed run after SIGKILL) as well as in-process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganlab

#: Forward calls of every `CountingD`, in this process.
D_CALLS = [0]
#: The score tensors the last `RecordingLoss.discriminator_loss` got.
SEEN: dict[str, torch.Tensor] = {}


def append(path: str, **values: Any) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps({"rank": int(os.environ.get("RANK", 0)), **values}) + "\n")


def caller() -> str:
    """The code that called the probe's caller (a loss's or a penalty's method): its file and
    qualified name, so a test can tell ganlab's own step from any other code."""
    code = sys._getframe(2).f_code
    return f"{code.co_filename}:{code.co_qualname}"


class Record(ganlab.Params):
    record: str = ""
    every: int = 1
    weight: float = 1.0


class CountingD(nn.Module):
    """A tiny D that counts its forward calls."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 4, 2, 1)
        self.head = nn.LazyLinear(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        D_CALLS[0] += 1
        return self.head(F.leaky_relu(self.conv(images), 0.2).flatten(1))


def build_counting_d(params: ganlab.NoParams, image_shape: tuple[int, int, int]) -> nn.Module:
    d = CountingD(image_shape[0])
    d(torch.zeros(1, *image_shape))  # materialize the lazy layer
    return d


class WithW(nn.Module):
    """A tiny G that exposes its intermediate latents ``w`` (`ganlab.ExposesIntermediates`)."""

    def __init__(self, nz: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.latent_shape = (nz,)
        self.image_shape = image_shape
        self.mapping = nn.Linear(nz, nz)
        self.synthesis = nn.Linear(nz, int(torch.tensor(image_shape).prod()))

    def forward_with_intermediates(
        self, latents: torch.Tensor
    ) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
        w = self.mapping(latents)
        return torch.tanh(self.synthesis(w)).view(-1, *self.image_shape), {"w": w}

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.forward_with_intermediates(latents)[0]


def build_with_w(params: ganlab.NoParams, image_shape: tuple[int, int, int]) -> nn.Module:
    return WithW(8, image_shape)


class RecordingLoss(ganlab.GanLoss):
    """BCE that keeps the scores D's loss got, and records what G's loss got."""

    def __init__(self, params: RealScoresParams) -> None:
        self.record = params.record
        self.needs_real_scores = params.real_scores  # chosen per run, for the test

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        SEEN.update(real=real, fake=fake)
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.record:
            last = SEEN["real"].detach()
            append(
                self.record,
                calls=D_CALLS[0],
                caller=caller(),
                real_given=real_scores is not None,
                same_as_d_update=real_scores is not None and torch.equal(real_scores, last),
            )
        return F.softplus(-fake_scores).mean()


class RealScoresParams(Record):
    real_scores: str | None = None


class ScoresProbe(ganlab.Penalty):
    """A D penalty on the step's own scores (LeCam's shape): records whether they are the
    very tensors D's loss got, and how many D calls the run has made so far."""

    reads_scores = True

    def __init__(self, params: Record) -> None:
        super().__init__(params.weight, params.every)
        self.record = params.record

    def value(self, critic, real, fake, scores: ganlab.StepScores) -> torch.Tensor:  # type: ignore[no-untyped-def]
        append(
            self.record,
            calls=D_CALLS[0],
            caller=caller(),
            same=scores.real is SEEN["real"] and scores.fake is SEEN["fake"],
            images=torch.equal(scores.real_images, real),
        )
        return (scores.real.mean() - scores.fake.mean()).square()


class GProbe(ganlab.GeneratorPenalty):
    """A G penalty that differs between processes (each has its own latents), and records
    a digest of G's weights as it finds them (after the previous step's update)."""

    def __init__(self, params: Record) -> None:
        super().__init__(params.weight, params.every)
        self.record = params.record

    def value(self, g: ganlab.GeneratorPass) -> torch.Tensor:
        weights = torch.cat([p.detach().flatten() for p in g.generator.parameters()])
        value = g.images.square().mean()
        w = g.intermediates.get("w")
        append(
            self.record,
            weights=weights.double().sum().item(),
            weights_abs=weights.double().abs().sum().item(),
            value=value.item(),
            caller=caller(),
            has_w=w is not None and w.requires_grad,
            latents_grad=g.latents.requires_grad,
        )
        return value + (w.square().mean() if w is not None else 0)


class StatefulLoss(ganlab.GanLoss):
    """BCE whose G loss is scaled by a moving average of D's mean real score: its state
    changes training, so a resume that lost it would differ."""

    def __init__(self) -> None:
        self.average = torch.zeros(())
        self.calls = 0

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        self.average = 0.9 * self.average + 0.1 * torch.sigmoid(real.detach().mean())
        self.calls += 1
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def generator_loss(
        self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        return (1 + self.average) * F.softplus(-fake_scores).mean()

    def statistics(self) -> dict[str, torch.Tensor]:
        return {"average": self.average}

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average.clone(), "calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average, self.calls = state["average"].clone(), state["calls"]


class StatefulPenalty(ganlab.Penalty):
    """LeCam's shape: moving averages of the step's scores, kept as state."""

    reads_scores = True

    def __init__(self, weight: float) -> None:
        super().__init__(weight)
        self.ema_real = torch.zeros(())
        self.ema_fake = torch.zeros(())

    def value(self, critic, real, fake, scores: ganlab.StepScores) -> torch.Tensor:  # type: ignore[no-untyped-def]
        self.ema_real = 0.9 * self.ema_real + 0.1 * scores.real.detach().mean()
        self.ema_fake = 0.9 * self.ema_fake + 0.1 * scores.fake.detach().mean()
        return (
            F.relu(scores.real - self.ema_fake).square().mean()
            + F.relu(self.ema_real - scores.fake).square().mean()
        )

    def statistics(self) -> dict[str, torch.Tensor]:
        return {"ema_real": self.ema_real, "ema_fake": self.ema_fake}

    def state_dict(self) -> dict[str, Any]:
        return {"ema_real": self.ema_real.clone(), "ema_fake": self.ema_fake.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema_real, self.ema_fake = state["ema_real"].clone(), state["ema_fake"].clone()


class StatefulCallback:
    """Counts steps and sums D's loss; logs both at every step."""

    def __init__(self) -> None:
        self.steps = 0
        self.total = 0.0

    @ganlab.hookimpl
    def ganlab_step_end(self, run: ganlab.RunView, stats: ganlab.StepStats) -> None:
        self.steps += 1
        self.total += float(stats.loss_d)
        run.log({"counted": self.steps, "total": self.total})

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.total = state["steps"], state["total"]


@ganlab.hookimpl
def ganlab_register_discriminators(register: ganlab.Register) -> None:
    register("counting_d", build_counting_d)


@ganlab.hookimpl
def ganlab_register_generators(register: ganlab.Register) -> None:
    register("with_w", build_with_w)


@ganlab.hookimpl
def ganlab_register_losses(register: ganlab.Register) -> None:
    register("recording_bce", RecordingLoss, params=RealScoresParams)
    register("stateful_loss", lambda params: StatefulLoss())


@ganlab.hookimpl
def ganlab_register_penalties(register: ganlab.Register) -> None:
    register("scores_probe", ScoresProbe, params=Record)
    register("g_probe", GProbe, params=Record)
    register("stateful_penalty", lambda params: StatefulPenalty(0.5))


@ganlab.hookimpl
def ganlab_register_callbacks(register: ganlab.Register) -> None:
    register("stateful_callback", lambda params: StatefulCallback())
