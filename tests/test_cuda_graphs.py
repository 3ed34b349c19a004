"""``train.cuda_graphs``: where it cannot apply the run trains eagerly, byte for byte as
without it, and says why once; on a CUDA GPU it trains like the eager step and resumes
exactly (those tests need one and are skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.engine.distributed import Group, check_supported
from ganlab.engine.graphs import eager_reason
from ganlab.engine.networks import make_optimizer
from ganlab.errors import GanlabError
from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from ganlab.recipe.train import OptimizerSpec
from ganlab_plugins.losses.classic import BCELoss, WassersteinGPLoss
from tests.conftest import invoke, only_run_dir, tiny_recipe, write_recipe

CUDA = torch.device("cuda")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def reason(**changes: object) -> str | None:
    """`eager_reason` for a plain one-process fp32 BCE run on CUDA, with ``changes``."""
    settings: dict = {
        "device": CUDA,
        "precision": "fp32",
        "processes": 1,
        "loss": BCELoss(),
        "augmentations": 0,
        "penalties": 0,
    }
    settings.update(changes)
    return eager_reason(**settings)


def test_a_plain_cuda_run_uses_cuda_graphs() -> None:
    assert reason() is None
    assert reason(precision="bf16") is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"device": torch.device("cpu")}, "need a CUDA device, and this run trains on cpu"),
        ({"device": torch.device("mps")}, "this run trains on mps"),
        ({"processes": 2}, "2 processes average their gradients"),
        ({"precision": "fp16"}, "fp16's gradient scalers"),
        ({"loss": WassersteinGPLoss(10.0)}, "WassersteinGPLoss) adds a penalty"),
        ({"penalties": 1}, "penalties run only at some steps and differentiate"),
        ({"augmentations": 2}, "augmentations draw their parameters"),
    ],
)
def test_each_reason_to_train_eagerly(changes: dict, says: str) -> None:
    found = reason(**changes)
    assert found is not None and says in found


def _recipe(tmp_path: Path, device: str = "cpu", steps: int = 4) -> Path:
    recipe = tiny_recipe("unused", device=device, callbacks=[])
    recipe["data"] = {"name": "cartoon_faces", "params": {"count": 32, "image_size": 16}}
    recipe["train"] = {"steps": steps, "batch_size": 8, "log_every": 1, "checkpoint_every": 2}
    return write_recipe(tmp_path / "r.yaml", recipe)


def _train(path: Path, out: Path, *sets: str) -> tuple[list[dict], str]:
    args = ["run", str(path), "--out", str(out)]
    for override in sets:
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return read_metrics(only_run_dir(out) / "metrics.jsonl"), result.output


def test_on_cpu_the_option_trains_byte_identically_and_says_why_once(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    plain, plain_output = _train(path, tmp_path / "plain")
    asked, output = _train(path, tmp_path / "asked", "train.cuda_graphs=true")
    assert asked == plain
    line = (
        "ganlab: note: train.cuda_graphs is off: CUDA graphs need a CUDA device, and this run "
        "trains on cpu."
    )
    assert output.count(line) == 1 and "cuda_graphs" not in plain_output
    plain_state, asked_state = (
        load_checkpoint(only_run_dir(tmp_path / name) / "checkpoints" / "final.pt")
        for name in ("plain", "asked")
    )
    for net in ("generator", "discriminator"):
        for key, weight in plain_state[net].items():
            assert torch.equal(asked_state[net][key], weight), (net, key)


def test_fp16_with_several_processes_is_refused_with_the_reason() -> None:
    with pytest.raises(GanlabError) as refused:
        check_supported("fp16", Group(rank=0, world=2))
    message = str(refused.value)
    assert "fp16 with 2 processes" in message and "drift apart" in message
    assert "Use bf16" in message
    check_supported("fp16", Group())  # one process: fp16 trains
    check_supported("bf16", Group(rank=0, world=2))


@needs_cuda
def test_on_cuda_graphed_steps_train_like_eager_ones(tmp_path: Path) -> None:
    path = _recipe(tmp_path, device="cuda", steps=6)
    eager, _ = _train(path, tmp_path / "eager", "train.deterministic=true")
    graphed, output = _train(
        path, tmp_path / "graphed", "train.deterministic=true", "train.cuda_graphs=true"
    )
    assert "train.cuda_graphs is off" not in output
    assert len(graphed) == len(eager) == 6
    for e, g in zip(eager, graphed, strict=True):
        # Fused Adam and compiled kernels round differently: close, not equal.
        assert g["loss_d"] == pytest.approx(e["loss_d"], rel=1e-2, abs=1e-3)
        assert g["loss_g"] == pytest.approx(e["loss_g"], rel=1e-2, abs=1e-3)


@needs_cuda
def test_on_cuda_a_graphed_run_resumes_exactly(tmp_path: Path) -> None:
    path = _recipe(tmp_path, device="cuda", steps=6)
    sets = ("train.deterministic=true", "train.cuda_graphs=true")
    straight, _ = _train(path, tmp_path / "straight", *sets)
    _train(path, tmp_path / "halves", *sets, "train.steps=3")
    run_dir = only_run_dir(tmp_path / "halves")
    result = invoke("run", "--resume", str(run_dir), "--set", "train.steps=6")
    assert result.exit_code == 0, result.output
    assert read_metrics(run_dir / "metrics.jsonl") == straight


def test_the_fused_adam_of_cuda_graphs_steps_like_the_default_one() -> None:
    """`make_optimizer(fused=True)`, what a graphed run trains with, on the CPU (torch has a
    fused CPU Adam too): the same update as the default Adam, to rounding."""
    spec = OptimizerSpec(name="adam", lr=1e-2)
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(2)]
    copies = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    fused, plain = make_optimizer(spec, weights, fused=True), make_optimizer(spec, copies)
    assert fused.param_groups[0]["fused"] is True and not plain.param_groups[0]["fused"]
    for _ in range(3):
        for group, optimizer in ((weights, fused), (copies, plain)):
            optimizer.zero_grad()
            sum((w**2).sum() for w in group).backward()
            optimizer.step()
    for w, c in zip(weights, copies, strict=True):
        torch.testing.assert_close(w, c)
