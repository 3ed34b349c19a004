"""FID and KID: torchmetrics' numbers against a direct NumPy/SciPy computation, the plumbing
with a small feature extractor, the missing-weights message, and the whole path (a run, its
logged scores, the real-feature cache, `ganlab eval`) with an Inception of random weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from scipy import linalg
from torch import nn

from ganlab.engine.assemble import NoHooks, assemble_run
from ganlab.engine.seeding import seed_everything
from ganlab.files.metrics_log import read_metrics
from ganlab.plugin_manager.loading import load_plugins
from ganlab.recipe.resolve import load_recipe, resolve
from ganlab_plugins.metrics.fid import (
    FID,
    KID,
    WEIGHTS_ENV,
    WEIGHTS_NAME,
    WEIGHTS_URL,
    InceptionParams,
    KIDParams,
    frechet_distance,
    kernel_distance,
)
from tests.conftest import RECIPES, TINY_QUICKSTART, invoke, only_run_dir


def numpy_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID as Heusel et al. define it: |mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))."""
    mu_r, mu_f = real.mean(0), fake.mean(0)
    s_r, s_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = linalg.sqrtm(s_r @ s_f).real
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r + s_f - 2 * root))


def numpy_kid(real: np.ndarray, fake: np.ndarray) -> float:
    """The unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al.)."""
    d, m = real.shape[1], len(real)
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    k_rr, k_ff, k_rf = k(real, real), k(fake, fake), k(real, fake)
    off = lambda mat: (mat.sum() - np.trace(mat)) / (m * (m - 1))  # noqa: E731
    return float(off(k_rr) + off(k_ff) - 2 * k_rf.mean())


def test_fid_and_kid_match_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(80, 6))
    fake = rng.normal(size=(80, 6)) @ rng.normal(size=(6, 6)) * 0.5 + 0.3
    torch_real, torch_fake = torch.from_numpy(real), torch.from_numpy(fake)
    assert frechet_distance(torch_real, torch_fake) == pytest.approx(numpy_fid(real, fake), 1e-6)
    # One subset of every sample: the subsets' random choice drops out.
    mean, std = kernel_distance(torch_real, torch_fake, subsets=1, subset_size=80, seed=0)
    assert mean == pytest.approx(numpy_kid(real, fake), rel=1e-6) and std == 0
    # Identical sets: FID 0; KID of two halves of one distribution is near 0.
    assert frechet_distance(torch_real, torch_real) == pytest.approx(0, abs=1e-6)
    same = kernel_distance(torch_real[:40], torch_real[40:], subsets=5, subset_size=30, seed=0)
    assert abs(same[0]) < 0.1 * mean


class SmallFeatures(nn.Module):
    """A fixed random projection of 8x8 thumbnails: a stand-in for Inception."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(3 * 8 * 8, 16)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        small = nn.functional.adaptive_avg_pool2d(images.float() / 255, 8)
        return self.project(small.flatten(1))


def test_metrics_score_the_runs_images_with_any_extractor(tmp_path: Path) -> None:
    """FID and KID of a run, with a small extractor, equal the direct computation on the
    features of the same real images and the same generated ones."""
    recipe = load_recipe(RECIPES / "quickstart.yaml", [*TINY_QUICKSTART, "device=cpu"])
    seed_everything(recipe.seed)
    resolved = resolve(recipe, load_plugins(recipe.plugins).registry)
    run = assemble_run(resolved, torch.device("cpu"), tmp_path, NoHooks()).view
    torch.manual_seed(0)
    extractor = SmallFeatures()
    fid = FID(InceptionParams(images=48, batch_size=20), extractor=extractor)
    kid = KID(KIDParams(images=48, subsets=1, subset_size=48), extractor=extractor)
    scores = {**fid(run), **kid(run)}

    import ganlab

    with torch.no_grad():
        real = extractor(ganlab.to_uint8(run.real_images(48, seed=0))).double().numpy()
        latents = run.sample_latents(48, 0)
        fake = extractor(ganlab.to_uint8(run.generate(latents, eval_mode=True))).double().numpy()
    assert scores["fid"] == pytest.approx(numpy_fid(real, fake), rel=1e-5)
    assert scores["kid"] == pytest.approx(numpy_kid(real, fake) * 1e3, rel=1e-5)


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FID Inception's architecture with random weights, saved as its weights file is:
    a state dict of the same names and shapes (torchvision's Inception-v3 has the same layers;
    torch-fidelity's head has 1008 classes). Batch-norm statistics are set from one batch, so
    that features stay of moderate size."""
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # running statistics = this batch's
    with torch.no_grad():
        model.train()(torch.rand(4, 3, 299, 299) * 2 - 1)
    state = model.state_dict()
    state["fc.weight"], state["fc.bias"] = torch.randn(1008, 2048) * 0.01, torch.zeros(1008)
    path = tmp_path_factory.mktemp("weights") / WEIGHTS_NAME
    torch.save(state, path)
    return path


def quickstart_args(out: Path, *overrides: str) -> list[str]:
    args = ["run", str(RECIPES / "quickstart.yaml"), "--out", str(out)]
    for override in [*TINY_QUICKSTART, *overrides]:
        args += ["--set", override]
    return args


INCEPTION_METRICS = (
    "metrics=[{name: fid, params: {images: 12, batch_size: 12}},"
    " {name: kid, params: {images: 12, batch_size: 12, subsets: 5, subset_size: 6}}]"
)


def test_fid_and_kid_during_training_and_with_ganlab_eval(
    tmp_path: Path, random_inception: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(random_inception))
    best_fid = (
        "callbacks=[{name: console, params: {every: 100}}, {name: best, params: {metric: fid}}]"
    )
    args = quickstart_args(tmp_path / "runs", INCEPTION_METRICS, "train.eval_every=2", best_fid)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "[eval] step 2: fid: " in result.output
    run_dir = only_run_dir(tmp_path / "runs")
    rows = read_metrics(run_dir / "metrics.jsonl")
    scores = [r for r in rows if "fid" in r]
    assert [r["step"] for r in scores] == [2, 4]
    assert all(r["fid"] > 0 and np.isfinite(r["kid"]) and r["kid_std"] >= 0 for r in scores)
    best = json.loads((run_dir / "run.json").read_text())["best"]
    assert best["metric"] == "fid" and best["value"] == min(r["fid"] for r in scores)

    # Real features were computed once, cached, and are reused (not rewritten) by eval.
    cached = list((Path(os.environ["GANLAB_CACHE"]) / "inception").glob("*.pt"))
    assert len(cached) == 1
    written = cached[0].stat().st_mtime_ns
    evaluated = invoke("eval", str(run_dir), "--json")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["step"] == 4 and report["checkpoint"].endswith("final.pt")
    assert report["fid"] == pytest.approx(scores[-1]["fid"], rel=1e-9)
    assert report["kid"] == pytest.approx(scores[-1]["kid"], rel=1e-9)
    assert cached[0].stat().st_mtime_ns == written

    # Metrics never change training: the losses equal those of a run without metrics.
    plain = invoke(*quickstart_args(tmp_path / "plain"))
    assert plain.exit_code == 0, plain.output
    plain_rows = read_metrics(only_run_dir(tmp_path / "plain") / "metrics.jsonl")
    assert [r for r in rows if "fid" not in r] == plain_rows


@pytest.mark.parametrize("problem", ["missing", "not weights", "pickled code"])
def test_fid_without_usable_weights_exits_2_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    if problem == "not weights":
        (tmp_path / "w.pth").write_bytes(b"<html>404</html>")
        monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "w.pth"))
    elif problem == "pickled code":
        torch.save({"conv": os.path.join}, tmp_path / "w.pth")
        monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "w.pth"))
    result = invoke(*quickstart_args(tmp_path / "runs", "metrics=[{name: fid}]"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    if problem == "missing":
        hub = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS_NAME
        assert f"fid needs the FID Inception weights, {WEIGHTS_NAME}" in result.output
        assert WEIGHTS_URL in result.output and str(hub) in result.output
        assert WEIGHTS_ENV in result.output
    else:
        assert "is not the FID Inception weights file" in result.output
    assert not (tmp_path / "runs").exists()


def test_eval_of_a_run_without_metrics(tmp_path: Path) -> None:
    assert invoke(*quickstart_args(tmp_path)).exit_code == 0
    run_dir = only_run_dir(tmp_path)
    result = invoke("eval", str(run_dir))
    assert result.exit_code == 2 and "has no metrics" in result.output
    result = invoke(
        "eval",
        str(run_dir / "checkpoints" / "step_000004.pt"),
        "-m",
        "swd",
        "--set",
        "metrics.0.params.images=32",
    )
    assert result.exit_code == 0, result.output
    assert "step_000004.pt (step 4, the generator):" in result.output and "swd_16" in result.output
