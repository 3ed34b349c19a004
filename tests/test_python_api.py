"""The Python API (ganlab/api.py, ganlab/export.py; docs/python.md): train a recipe from
Python, load its generator, sample, export and run the exported model; Ctrl-C during
`ganlab.train` returns control with a checkpoint; mistakes raise `GanlabError`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganlab
from tests.conftest import RECIPES, ROOT, TINY_QUICKSTART, invoke

#: The tiny quickstart without its W&B logger: a run of 4 steps in about a second.
TINY = [*TINY_QUICKSTART, "loggers=[]"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> ganlab.TrainResult:
    out = tmp_path_factory.mktemp("api-runs")
    handlers = [signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)]
    result = ganlab.train(RECIPES / "quickstart.yaml", TINY, out=out)
    # Nothing of the run stays behind in the process: the signal handlers are as they were.
    assert [signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)] == handlers
    return result


def test_train_returns_the_run_and_its_models(trained: ganlab.TrainResult) -> None:
    assert trained.status == "completed" and trained.step == 4
    assert trained.checkpoint == trained.run_dir / "checkpoints" / "final.pt"
    assert trained.checkpoint.is_file()
    logged = [json.loads(line) for line in (trained.run_dir / "metrics.jsonl").open()]
    assert trained.rows == logged
    assert trained.metrics["step"] == 4 and trained.metrics["loss_d"] == logged[-1]["loss_d"]
    assert not trained.generator.training and not trained.discriminator.training
    assert trained.classes is None
    # The generator handed back is the one a later session loads from the run folder.
    loaded = ganlab.load_generator(trained.run_dir)
    assert not loaded.training
    for name, tensor in trained.generator.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_sample_is_seeded_and_leaves_the_caller_alone(trained: ganlab.TrainResult) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    images = ganlab.sample(trained.generator, 6, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, ganlab.sample(trained.run_dir, 6, seed=3))  # from the folder
    # Any n: the same images, up to the last bits a convolution's batch size may change.
    assert torch.allclose(images[:2], ganlab.sample(trained.generator, 2, seed=3), atol=1e-6)
    assert not torch.equal(images, ganlab.sample(trained.generator, 6, seed=4))


def test_sample_draws_what_the_sample_command_draws(
    trained: ganlab.TrainResult, tmp_path: Path
) -> None:
    png = tmp_path / "grid.png"
    result = invoke("sample", str(trained.run_dir), "-n", "4", "--seed", "3", "--out", str(png))
    assert result.exit_code == 0, result.output
    written = torch.from_numpy(np.array(Image.open(png).convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(written, ganlab.grid(ganlab.sample(trained.run_dir, 4, seed=3)))


@pytest.mark.parametrize("fmt", ["export", "torchscript"])
def test_an_exported_generator_gives_the_same_images(
    trained: ganlab.TrainResult, tmp_path: Path, fmt: str
) -> None:
    generator = ganlab.load_generator(trained.run_dir)
    path = ganlab.export_generator(generator, tmp_path / f"g-{fmt}.pt2", fmt)
    model = torch.jit.load(path) if fmt == "torchscript" else torch.export.load(path).module()
    latents = torch.randn(5, *generator.latent_shape)  # another batch size than the example
    with torch.no_grad():
        assert torch.allclose(model(latents), generator(latents), atol=1e-6)
    again = pytest.raises(ganlab.GanlabError, match="already exists")
    with again:
        ganlab.export_generator(generator, path, fmt)


def test_export_command_writes_a_file_once(trained: ganlab.TrainResult, tmp_path: Path) -> None:
    out = tmp_path / "g.pt"
    args = ("export", str(trained.run_dir), "--format", "torchscript", "--out", str(out))
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert f"Wrote {out} (torchscript; inputs: latents of shape N x " in result.output
    generator = ganlab.load_generator(trained.run_dir)
    latents = torch.randn(3, *generator.latent_shape)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(out)(latents), generator(latents), atol=1e-6)
    written = out.read_bytes()
    result = invoke(*args)
    assert result.exit_code == 2 and "already exists" in result.output
    assert out.read_bytes() == written


@pytest.mark.skipif(
    all(__import__("importlib").util.find_spec(m) for m in ("onnx", "onnxscript")),
    reason="onnx is installed: the error for its absence cannot show",
)
def test_onnx_without_onnx_says_how_to_install_it(
    trained: ganlab.TrainResult, tmp_path: Path
) -> None:
    with pytest.raises(ganlab.GanlabError, match=r"pip install .ganlab\[onnx\]."):
        ganlab.export_generator(trained.generator, tmp_path / "g.onnx", "onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_onnx_export_gives_the_same_images(trained: ganlab.TrainResult, tmp_path: Path) -> None:
    """Runs where onnx and onnxscript are installed (the suite does not need them), with
    onnx's own reference evaluator as the runtime."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from onnx.reference import ReferenceEvaluator

    generator = trained.generator
    path = ganlab.export_generator(generator, tmp_path / "g.onnx", "onnx")
    latents = torch.randn(3, *generator.latent_shape)
    (images,) = ReferenceEvaluator(onnx.load(str(path))).run(None, {"latents": latents.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(images), generator(latents), atol=1e-5)


def test_a_conditional_model_samples_per_class(tmp_path: Path) -> None:
    result = ganlab.train(
        RECIPES / "quickstart_conditional.yaml", [*TINY, "train.ema=0.5"], out=tmp_path
    )
    # A run that keeps a moving average hands back that average, as load_generator does by
    # default; ema=False gives G's own weights.
    average, own = (ganlab.load_generator(result.run_dir, ema=ema) for ema in (True, False))
    for name, tensor in result.generator.state_dict().items():
        assert torch.equal(tensor, average.state_dict()[name]), name
    pairs = zip(average.parameters(), own.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)
    classes = result.classes
    assert classes is not None and len(classes) >= 2
    per_class = ganlab.sample(result.generator, 3, seed=1)
    assert per_class.shape == (3 * len(classes), 3, 16, 16)
    for k, name in enumerate(classes):
        rows = per_class[3 * k : 3 * k + 3]
        alone = ganlab.sample(result.generator, 3, seed=1, label=k)
        # A batch of 3 against one of 3 per class: equal up to the last bits a convolution's
        # batch size may change (torch promises no more); the same call from the run
        # folder, by the class's name, is the same bits.
        assert torch.allclose(alone, rows, atol=1e-6)
        assert torch.equal(ganlab.sample(result.run_dir, 3, seed=1, label=name), alone)
    with pytest.raises(ganlab.GanlabError, match="not a class"):
        ganlab.sample(result.generator, 1, label="no such class")
    path = ganlab.export_generator(result.generator, tmp_path / "c.pt2")
    model = torch.export.load(path).module()
    latents, labels = torch.randn(4, *result.generator.latent_shape), torch.tensor([1, 0, 1, 0])
    with torch.no_grad():
        assert torch.allclose(model(latents, labels), result.generator(latents, labels))


def test_mistakes_raise_ganlab_error_not_system_exit(tmp_path: Path) -> None:
    with pytest.raises(ganlab.GanlabError, match="stesp"):
        ganlab.load_recipe(RECIPES / "quickstart.yaml", {"train.stesp": 3})
    with pytest.raises(ganlab.GanlabError, match="not found"):
        ganlab.train(tmp_path / "missing.yaml", out=tmp_path)
    with pytest.raises(ganlab.GanlabError, match="not found"):
        ganlab.load_generator(tmp_path / "no-run")
    parts = {"data": "cartoon_faces", "generator": "dcgan", "discriminator": "dcgan", "loss": "bce"}
    raw = {key: {"name": name} for key, name in parts.items()}
    recipe = ganlab.load_recipe({**raw, "train": {"steps": 3}}, {"train.batch_size": 4})
    assert recipe.recipe.train.batch_size == 4  # from a dict, with an override
    assert recipe.recipe.train.d_steps == 1  # and every default filled in
    with pytest.raises(ganlab.GanlabError, match="is a value, not a section"):
        ganlab.load_recipe(recipe, ["seed.x=1"])
    assert not list(tmp_path.iterdir())


#: Trains the tiny quickstart long enough to be interrupted, then says it got control back.
INTERRUPTED = """
import sys, ganlab
try:
    ganlab.train(sys.argv[1], sys.argv[2:], out=sys.argv[1] + '.runs')
except ganlab.TrainingInterrupted as exc:
    result = exc.result
    images = ganlab.sample(result.generator, 2)  # the models trained so far work
    print('CONTROL RETURNED', result.status, result.step, result.checkpoint, flush=True)
    print('SAMPLED', tuple(images.shape), flush=True)
"""


def test_ctrl_c_stops_training_with_a_checkpoint_and_returns(tmp_path: Path) -> None:
    recipe = tmp_path / "quickstart.yaml"
    recipe.write_text((RECIPES / "quickstart.yaml").read_text())
    sets = [*TINY, "train.steps=100000", "callbacks=[{name: console, params: {every: 1}}]"]
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(recipe), *sets],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    for line in process.stdout:  # the first rows: training is under way
        seen.append(line)
        if line.startswith("[0/"):
            process.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "".join(seen)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(seen) + output
    found = re.search(r"CONTROL RETURNED interrupted (\d+) (\S+)", output)
    assert found, "".join(seen) + output
    checkpoint = Path(found[2])
    assert checkpoint.is_file() and checkpoint.name == f"step_{int(found[1]):06d}.pt"
    info = json.loads((checkpoint.parent.parent / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert "SAMPLED (2, 3, 16, 16)" in output


def test_every_python_example_in_the_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/python.md's ```python blocks, in order, in one namespace, in a fresh folder
    with the recipes beside it."""
    text = (ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    (tmp_path / "recipes").symlink_to(RECIPES)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/python.md", "exec"), namespace)
