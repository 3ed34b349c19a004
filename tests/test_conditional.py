"""Conditional models end to end: the labels a conditional G and D are called with (probe
models that check them against the pixels), the built-in `cdcgan`, per-class grids and
`ganlab sample --class`, per-class SWD, exact resume, 2 processes, and the refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.files.checkpoint import load_checkpoint
from ganlab.files.metrics_log import read_metrics
from ganlab_plugins.dcgan.models import (
    DiscriminatorParams,
    GeneratorParams,
    build_conditional_discriminator,
    build_conditional_generator,
)
from tests.conftest import RECIPES, ROOT, invoke, only_run_dir, train, write_recipe
from tests.test_labels import LEVELS, coded_folder

#: Conditional G and D that check every label they are given against the images: G paints
#: each fake the gray of its class (`LEVELS`, as the coded folder's real images are), and D
#: raises when an image's gray is not its label's, real or fake. G counts the classes it is
#: asked for in training (a buffer, so the checkpoint holds the counts).
PROBE = """
import torch
from torch import nn

import ganlab

LEVELS = (40, 120, 200)  # class k's gray, as uint8


def gray(labels):
    return torch.tensor(LEVELS, dtype=torch.float32, device=labels.device)[labels] / 127.5 - 1


class ProbeG(ganlab.Generator):
    def __init__(self, image_shape, num_classes):
        super().__init__()
        self.latent_shape = (4,)
        self.image_shape = tuple(image_shape)
        self.weight = nn.Parameter(torch.ones(4))
        self.register_buffer("counts", torch.zeros(num_classes, dtype=torch.int64))

    def forward(self, z, labels):
        if self.training:
            self.counts += torch.bincount(labels, minlength=len(self.counts))
        # exactly the class's gray; the zero term gives G a gradient to step on
        value = gray(labels) + 0.0 * (z * self.weight).sum(1)
        return value[:, None, None, None].expand(-1, *self.image_shape).contiguous()


class ProbeD(nn.Module):
    def __init__(self, image_shape, num_classes):
        super().__init__()
        self.linear = nn.Linear(int(torch.tensor(image_shape).prod()), 1)
        self.embed = nn.Embedding(num_classes, 1)

    def forward(self, images, labels):
        wrong = (images.flatten(1) - gray(labels)[:, None]).abs().amax(1) > 0.02
        if wrong.any():
            i = int(wrong.nonzero()[0])
            raise AssertionError(f"image {i} is not of class {int(labels[i])}")
        return self.linear(images.flatten(1)).squeeze(1) + self.embed(labels).squeeze(1)


@ganlab.hookimpl
def ganlab_register_generators(register):
    register("probe", lambda params, shape, classes: ProbeG(shape, classes), conditional=True)


@ganlab.hookimpl
def ganlab_register_discriminators(register):
    register("probe", lambda params, shape, classes: ProbeD(shape, classes), conditional=True)
"""

#: Classes of the coded folder: a third of the images, two thirds, ... (uneven on purpose).
COUNTS = {"a": 8, "b": 2, "c": 2}


def probe_recipe(tmp_path: Path, **train: Any) -> Path:
    """Probe G and D on the coded image folder (3 classes, 12 images, 8x8)."""
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    root = coded_folder(tmp_path / "coded", COUNTS)
    spec = {
        "name": "probe",
        "seed": 3,
        "device": "cpu",
        "plugins": ["probe.py"],
        "data": {"name": "image_folder", "params": {"root": str(root), "image_size": 8}},
        "generator": {"name": "probe"},
        "discriminator": {"name": "probe"},
        "loss": {"name": "bce"},
        "train": {"steps": 10, "batch_size": 4, "d_steps": 2, "checkpoint_every": 3, **train},
        "callbacks": [{"name": "samples", "params": {"every": 5}}],
    }
    return write_recipe(tmp_path / "probe.yaml", spec)


def grid_grays(path: Path, rows: int, columns: int, side: int = 8, pad: int = 2) -> np.ndarray:
    """The gray level of every tile of a make_grid grid, (rows, columns)."""
    image = np.asarray(Image.open(path).convert("L")).astype(int)
    assert image.shape == (rows * (side + pad) + pad, columns * (side + pad) + pad)
    return np.array(
        [
            [
                image[pad + r * (side + pad) + side // 2, pad + c * (side + pad) + side // 2]
                for c in range(columns)
            ]
            for r in range(rows)
        ]
    )


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 steps of the probe models, 2 D updates a step, from the decode-once cache."""
    tmp = tmp_path_factory.mktemp("probe")
    return train(probe_recipe(tmp), tmp / "runs")


def test_every_label_g_and_d_get_is_their_images_class(probe_run: Path) -> None:
    """The run finished, so D found every real image (cache, seeded order, d_steps) and every
    fake (the labels G made it with) of the class its label says; the fakes' classes were
    drawn as often as the data's: 8 of 12 images are of class a."""
    counts = load_checkpoint(probe_run / "checkpoints" / "final.pt")["generator"]["counts"]
    drawn = counts.tolist()
    info = json.loads((probe_run / "run.json").read_text())
    assert sum(drawn) == info["images_seen"]  # a fake for every real image of every D update
    assert drawn[0] > drawn[1] + drawn[2] and min(drawn) > 0


def test_the_grid_has_one_row_per_class_and_run_json_names_them(probe_run: Path) -> None:
    grays = grid_grays(probe_run / "samples" / "final.png", rows=3, columns=8)
    assert (grays == np.array(list(LEVELS.values()))[:, None]).all()
    info = json.loads((probe_run / "run.json").read_text())
    assert info["classes"] == ["a", "b", "c"]
    state = load_checkpoint(probe_run / "checkpoints" / "final.pt")
    assert state["class_names"] == ["a", "b", "c"]


def test_sample_class_writes_the_rows_asked_for(probe_run: Path, tmp_path: Path) -> None:
    out = invoke("sample", str(probe_run), "--class", "c", "--class", "0", "-n", "3")
    assert out.exit_code == 0, out.output
    assert "one row per class: c, a" in out.output
    grid = probe_run / "samples" / "sample-s0-class-2-0.png"
    assert (grid_grays(grid, rows=2, columns=3) == [[200] * 3, [40] * 3]).all()

    every = invoke("sample", str(probe_run), "--out", str(tmp_path / "all.png"))
    assert every.exit_code == 0, every.output  # by default every class, 8 images each
    assert (grid_grays(tmp_path / "all.png", 3, 8) == [[40] * 8, [120] * 8, [200] * 8]).all()

    each = invoke(
        "sample",
        str(probe_run),
        "--separate",
        "--class",
        "b",
        "-n",
        "2",
        "--out",
        str(tmp_path / "each"),
    )
    assert each.exit_code == 0, each.output
    files = sorted((tmp_path / "each").rglob("*.png"))
    assert [f.relative_to(tmp_path / "each").as_posix() for f in files] == [
        "b/0000.png",
        "b/0001.png",
    ]
    assert all((np.asarray(Image.open(f).convert("L")) == 120).all() for f in files)


def test_sample_refuses_unknown_classes_and_nrow_on_a_class_grid(probe_run: Path) -> None:
    wrong = invoke("sample", str(probe_run), "--class", "d")
    assert wrong.exit_code == 2
    assert "'d' is not a class of this run" in wrong.output
    assert "0=a, 1=b, 2=c" in wrong.output
    nrow = invoke("sample", str(probe_run), "--nrow", "4")
    assert nrow.exit_code == 2 and "one row per class" in nrow.output


def test_class_on_an_unconditional_run_is_a_usage_error(tmp_path: Path) -> None:
    """An unconditional DCGAN trains on the labelled folder (it ignores the classes); asked
    for a class, `sample` says it has none, and writes nothing."""
    recipe = probe_recipe(tmp_path, steps=2)
    run_dir = train(
        recipe,
        tmp_path / "runs",
        "generator={name: dcgan, params: {nz: 4, ngf: 4}}",
        "discriminator={name: dcgan, params: {ndf: 4}}",
    )
    result = invoke("sample", str(run_dir), "--class", "a")
    assert result.exit_code == 2
    assert "--class applies only to a conditional run" in result.output
    assert not list((run_dir / "samples").glob("sample-*"))


def test_a_conditional_model_on_a_data_set_without_classes_exits_2(tmp_path: Path) -> None:
    recipe = probe_recipe(tmp_path)
    result = invoke(
        "run",
        str(recipe),
        "--out",
        str(tmp_path / "runs"),
        "--set",
        "data={name: cartoon_faces, params: {count: 16, image_size: 8}}",
    )
    assert result.exit_code == 2, result.output
    assert "generator 'probe' takes class labels, but data set 'cartoon_faces'" in result.output
    assert "Use a data set that gives class labels" in result.output
    assert "Traceback" not in result.output
    assert not list((tmp_path / "runs").glob("*/*"))  # no run folder left behind


# --- the built-in conditional DCGAN -------------------------------------------------------


def test_cdcgan_g_and_d_depend_on_the_class() -> None:
    torch.manual_seed(0)
    g = build_conditional_generator(GeneratorParams(nz=8, ngf=8), (3, 16, 16), num_classes=5)
    d = build_conditional_discriminator(
        DiscriminatorParams(ndf=8, spectral_norm=True), (3, 16, 16), num_classes=5
    )
    g.eval(), d.eval()
    z = torch.randn(1, 8, 1, 1).expand(5, -1, -1, -1)  # one z, every class
    labels = torch.arange(5)
    with torch.no_grad():
        images = g(z, labels)
        assert images.shape == (5, 3, 16, 16) and images.abs().max() <= 1
        assert all(not torch.equal(images[0], images[k]) for k in range(1, 5))
        scores = d(images[:1].expand(5, -1, -1, -1), labels)  # one image, every class
    assert scores.shape == (5,) and len(set(scores.tolist())) == 5


def cdcgan_recipe(tmp_path: Path, steps: int) -> Path:
    spec = {
        "name": "cond",
        "seed": 2,
        "device": "cpu",
        "data": {
            "name": "cartoon_faces",
            "params": {"count": 40, "image_size": 16, "classes": "hair_style"},
        },
        "generator": {"name": "cdcgan", "params": {"nz": 8, "ngf": 8}},
        "discriminator": {"name": "cdcgan", "params": {"ndf": 8, "spectral_norm": True}},
        "loss": {"name": "hinge"},
        "train": {"steps": steps, "batch_size": 8, "log_every": 1, "checkpoint_every": 3},
    }
    return write_recipe(tmp_path / "cond.yaml", spec)


def test_a_resumed_conditional_run_ends_as_one_run_straight_through(tmp_path: Path) -> None:
    """7 steps cross an epoch (5 steps of 8); stopped at step 3 and resumed, every row and
    weight is the same: the labels' order and the fakes' classes resume exactly."""
    straight = train(cdcgan_recipe(tmp_path, 7), tmp_path / "a")
    first = train(cdcgan_recipe(tmp_path, 3), tmp_path / "b")
    resumed = invoke("run", "--resume", str(first), "--set", "train.steps=7")
    assert resumed.exit_code == 0, resumed.output
    assert read_metrics(first / "metrics.jsonl") == read_metrics(straight / "metrics.jsonl")
    a = load_checkpoint(straight / "checkpoints" / "final.pt")
    b = load_checkpoint(first / "checkpoints" / "final.pt")
    for net in ("generator", "discriminator"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), (net, key)


def test_eval_scores_swd_per_class(tmp_path: Path) -> None:
    run_dir = train(cdcgan_recipe(tmp_path, 2), tmp_path / "runs")
    result = invoke(
        "eval",
        str(run_dir),
        "--metric",
        "swd",
        "--json",
        "--set",
        "metrics.0.params.per_class=true",
        "--set",
        "metrics.0.params.images=40",
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)  # notes (fewer images per class) go to stderr
    names = ("bald", "short", "long", "bob", "afro")
    assert all(scores[f"swd_class_{name}"] > 0 for name in names)
    assert scores["swd"] > 0


def test_the_conditional_quickstart_runs_with_a_row_per_hair_style(tmp_path: Path) -> None:
    sets = [
        "data.params.count=64",
        "data.params.image_size=16",
        "generator.params.ngf=8",
        "discriminator.params.ndf=8",
        "train.steps=2",
        "train.batch_size=16",
        "metrics=[{name: swd, params: {images: 32, per_class: true}}]",
        "callbacks=[{name: samples}]",
        "loggers=[]",
    ]
    run_dir = train(RECIPES / "quickstart_conditional.yaml", tmp_path, *sets)
    assert Image.open(run_dir / "samples" / "final.png").size == (8 * 18 + 2, 5 * 18 + 2)
    final = [row for row in read_metrics(run_dir / "metrics.jsonl") if "swd" in row][-1]
    assert {f"swd_class_{k}" for k in ("bald", "short", "long", "bob", "afro")} <= final.keys()


def test_wandb_config_names_the_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wandb = pytest.importorskip("wandb", reason="W&B is an optional extra (ganlab[wandb])")

    from tests.test_wandb import by_type, read_records, wandb_file

    home = tmp_path / "home"
    for name, value in {
        "HOME": home,
        "NETRC": home / ".netrc",
        "WANDB_CONFIG_DIR": home / "config",
        "WANDB_CACHE_DIR": home / "cache",
        "WANDB_DATA_DIR": home / "data",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    wandb.teardown()
    try:
        run_dir = train(
            cdcgan_recipe(tmp_path, 1),
            tmp_path / "runs",
            "loggers=[{name: wandb, params: {mode: offline}}]",
        )
    finally:
        wandb.teardown()  # W&B's service writes the whole file as it shuts down
    (record,) = by_type(read_records(wandb_file(run_dir)))["run"]
    config = {u.key: json.loads(u.value_json) for u in record.config.update}
    assert config["classes"] == ["bald", "short", "long", "bob", "afro"]


# --- the docs' example and two processes --------------------------------------------------


def test_the_conditional_model_example_in_docs_plugins_trains(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n# cond_mlp\.py.*?\n(.*?)```", text, re.S)
    assert code, "docs/plugins.md lost its conditional model example, cond_mlp.py"
    (tmp_path / "cond_mlp.py").write_text(code.group(1), encoding="utf-8")
    spec = {
        "seed": 0,
        "device": "cpu",
        "plugins": ["cond_mlp.py"],
        "data": {
            "name": "cartoon_faces",
            "params": {"count": 32, "image_size": 8, "classes": "glasses"},
        },
        "generator": {"name": "cond_mlp", "params": {"nz": 8, "hidden": 16}},
        "discriminator": {"name": "cond_mlp", "params": {"hidden": 16}},
        "loss": {"name": "bce"},
        "train": {"steps": 3, "batch_size": 8},
        "callbacks": [{"name": "samples"}],
    }
    run_dir = train(write_recipe(tmp_path / "r.yaml", spec), tmp_path / "runs")
    assert Image.open(run_dir / "samples" / "final.png").size == (8 * 10 + 2, 2 * 10 + 2)
    sample = invoke("sample", str(run_dir), "--class", "glasses", "-n", "4")
    assert sample.exit_code == 0, sample.output


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ganlab",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_two_processes_carry_the_labels_and_resume_exactly(tmp_path: Path) -> None:
    """Each process's shard of the seeded order comes with its labels (D checks every
    image), and a 2-process conditional run stopped at step 3 resumes to the same end."""
    recipe = probe_recipe(tmp_path, steps=6, batch_size=2)
    straight = torchrun("run", str(recipe), "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    first = torchrun("run", str(recipe), "--out", str(tmp_path / "b"), "--set", "train.steps=3")
    assert first.returncode == 0, first.stderr
    run_b = only_run_dir(tmp_path / "b")
    resumed = torchrun("run", "--resume", str(run_b), "--set", "train.steps=6")
    assert resumed.returncode == 0, resumed.stderr
    run_a = only_run_dir(tmp_path / "a")
    assert read_metrics(run_b / "metrics.jsonl") == read_metrics(run_a / "metrics.jsonl")
    a = load_checkpoint(run_a / "checkpoints" / "final.pt")
    b = load_checkpoint(run_b / "checkpoints" / "final.pt")
    assert a["processes"] == 2 and a["class_names"] == ["a", "b", "c"]
    for key, value in a["discriminator"].items():
        assert torch.equal(value, b["discriminator"][key]), key
