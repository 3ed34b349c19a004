"""`ganlab bench` measures ganlab beside a minimal loop and the tutorial's loop (not a timed
test: it checks that the numbers are produced and consistent, not how large they are)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from ganlab.api import prepare_recipe
from ganlab.commands.bench.flops import peak_bf16_tflops, step_flops_per_image
from ganlab.engine.step import Step
from tests.conftest import RECIPES, ROOT, TINY, TINY_QUICKSTART, invoke, write_jpegs

QUICKSTART = ["bench", str(RECIPES / "quickstart.yaml"), "--steps", "2", "--warmup", "1"]
for _override in ("data.params.count=64", "data.params.image_size=16", "train.batch_size=8"):
    QUICKSTART += ["--set", _override]
#: Plugins that record what the training step gives them (losses, penalties).
PROBES = str(Path(__file__).parent / "plugins" / "step_probes.py")


def numbers_of(output: str) -> dict[str, Any]:
    """The JSON that ``--json`` prints (among the console's notes and progress lines)."""
    loaded: dict[str, Any] = json.JSONDecoder().raw_decode(output[output.index("{") :])[0]
    return loaded


def test_bench_on_a_folder_in_celebas_layout(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "celeba" / "img_align_celeba", 24)
    args = ["bench", str(RECIPES / "dcgan_celeba.yaml"), "--steps", "2", "--warmup", "1"]
    args += ["--set", f"data.params.root={tmp_path / 'celeba'}"]
    for override in TINY:
        args += ["--set", override]
    result = invoke(*args, "--set", "train.precision=bf16", "--json")
    assert result.exit_code == 0, result.output
    numbers = numbers_of(result.output)
    assert numbers["precision"] == "bf16" and numbers["image_size"] == 16
    assert numbers["device"] == "cpu" and numbers["peak_bf16_tflops"] is None
    assert numbers["deterministic"] is False and numbers["cuda_graphs"] == "off"
    assert numbers["data_prep_img_s"] > 0 and numbers["flops_per_image"] > 0
    (row,) = numbers["runs"]
    assert row["batch_size"] == 8
    for loop in ("ganlab", "minimal", "reference"):
        assert row[f"{loop}_img_s"] > 0, loop
        tflops = row[f"{loop}_img_s"] * numbers["flops_per_image"] / 1e12
        assert row[f"{loop}_tflops"] == pytest.approx(tflops)
        assert f"{loop}_peak_fraction" not in row  # no peak known for a CPU
    ratio = row["ganlab_img_s"] / row["reference_img_s"]
    assert abs(row["speedup_vs_reference"] - ratio) < 1e-9
    text = invoke(*args, "--no-reference")
    assert text.exit_code == 0, text.output
    assert "ganlab (fp32, full loop)" in text.output and "overhead" in text.output
    assert "TFLOP/s" in text.output and "achieved TFLOP/s only" in text.output
    assert "reference" not in text.output


def test_bench_on_the_generated_data_set() -> None:
    result = invoke(*QUICKSTART)
    assert result.exit_code == 0, result.output
    assert "minimal loop (fp32, same step)" in result.output
    assert "reference" not in result.output  # no files to decode: no tutorial loader to time


def test_a_batch_size_sweep_gives_one_row_per_size_and_loop() -> None:
    result = invoke(*QUICKSTART, "--batch-sizes", "8, 16", "--json")
    assert result.exit_code == 0, result.output
    numbers = numbers_of(result.output)
    assert [row["batch_size"] for row in numbers["runs"]] == [8, 16]
    assert all(row["ganlab_img_s"] > 0 and row["minimal_img_s"] > 0 for row in numbers["runs"])
    text = invoke(*QUICKSTART, "--batch-sizes", "16,8")
    assert text.exit_code == 0, text.output
    rows = [line.split()[:2] for line in text.output.splitlines() if "img/s" not in line]
    assert [r for r in rows if r[1:] in (["ganlab"], ["minimal"])] == [
        ["16", "ganlab"],
        ["16", "minimal"],
        ["8", "ganlab"],
        ["8", "minimal"],
    ]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("128,abc", "'abc' is not a batch size; give positive whole numbers separated by commas"),
        ("0", "'0' is not a batch size"),
        ("128,,256", "'' is not a batch size"),
        ("64,64", "64 is given twice; give each batch size once."),
    ],
)
def test_a_bad_batch_size_list_is_a_usage_error(given: str, says: str) -> None:
    result = invoke(*QUICKSTART, "--batch-sizes", given)
    assert result.exit_code == 2
    assert "Invalid value for '--batch-sizes'" in result.output and says in result.output


def test_the_image_size_reaches_every_loop_and_the_flops() -> None:
    small = numbers_of(invoke(*QUICKSTART, "--json").output)
    result = invoke(*QUICKSTART, "--image-size", "32", "--json")
    assert result.exit_code == 0, result.output
    large = numbers_of(result.output)
    assert small["image_size"] == 16 and large["image_size"] == 32
    # One more block in G and D and four times the pixels per layer: more than 4x the work.
    assert large["flops_per_image"] > 4 * small["flops_per_image"]
    refused = invoke(*QUICKSTART, "--image-size", "24")
    assert refused.exit_code == 2 and "power of two" in refused.output


def test_bench_reports_deterministic_and_why_cuda_graphs_are_off() -> None:
    sets = ["--set", "train.deterministic=true", "--set", "train.cuda_graphs=true"]
    result = invoke(*QUICKSTART, *sets, "--json")
    assert result.exit_code == 0, result.output
    numbers = numbers_of(result.output)
    assert numbers["deterministic"] is True
    assert numbers["cuda_graphs"].startswith("off (CUDA graphs need a CUDA device")
    text = invoke(*QUICKSTART, *sets).output
    assert "deterministic: on; train.cuda_graphs: off (CUDA graphs need" in text


def test_flops_are_counted_per_real_image_without_touching_the_rng() -> None:
    recipe = str(RECIPES / "quickstart.yaml")
    sets = ("data.params.count=64", "data.params.image_size=16", "generator.params.ngf=8")
    before = torch.get_rng_state()
    once = step_flops_per_image(prepare_recipe(recipe, sets, ())[0])
    assert torch.equal(torch.get_rng_state(), before)  # the timed loops start from the seed
    twice = step_flops_per_image(prepare_recipe(recipe, (*sets, "train.d_steps=2"), ())[0])
    # Per real image D's updates cost the same, while G's one update is shared by twice the
    # real images: less work per image, but more than D's share alone.
    assert once / 2 < twice < once


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H200", 989.0),
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A100-PCIE-40GB", 312.0),
        ("NVIDIA H100 PCIe", None),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_known_gpus_have_a_bf16_peak(name: str, peak: float | None) -> None:
    assert peak_bf16_tflops(name) == peak


def test_the_gpu_check_table_is_built_from_bench_json(tmp_path: Path) -> None:
    """benchmarks/gpu_table.py, which ends benchmarks/gpu_check.sh, on a CPU bench's output:
    a row per loop and batch size, the failed measurements named, the quickstart timed."""
    spec = importlib.util.spec_from_file_location("gpu_table", ROOT / "benchmarks/gpu_table.py")
    assert spec is not None and spec.loader is not None
    gpu_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_table)
    (tmp_path / "bench").mkdir()
    result = invoke(*QUICKSTART, "--batch-sizes", "8,16", "--json")
    assert result.exit_code == 0, result.output
    (tmp_path / "bench" / "sweep_bf16.json").write_text(result.output)
    (tmp_path / "failures.txt").write_text("FAILED: tutorial_fp32 (see its log)\n")
    quick = invoke(
        "run",
        str(RECIPES / "quickstart.yaml"),
        "--out",
        str(tmp_path / "quickstart_fp32"),
        *[arg for o in TINY_QUICKSTART for arg in ("--set", o)],
        "--set",
        "loggers=[]",
    )
    assert quick.exit_code == 0, quick.output
    (tmp_path / "quickstart_fp32.seconds").write_text("12.5\n")
    text = gpu_table.table(tmp_path)
    lines = text.splitlines()
    assert lines[0].startswith("| measurement | loop | precision | batch |")
    sweep = [line for line in lines if line.startswith("| batch-size sweep |")]
    assert [line.split(" | ")[1:4] for line in sweep] == [
        ["ganlab", "fp32", "8"],
        ["minimal loop", "fp32", "8"],
        ["ganlab", "fp32", "16"],
        ["minimal loop", "fp32", "16"],
    ]
    assert "no peak known for cpu" in sweep[0] and "ganlab's overhead" in sweep[1]
    assert "| tutorial settings (DCGAN-64, batch 128) | | | | | | | | tutorial_fp32: FAILED" in text
    assert "whole command 12.5 s (under the 15 s target)" in text
    assert "Deterministic resume on CUDA: not measured" in text
    assert "- FAILED: tutorial_fp32 (see its log)" in text


def test_bench_on_a_conditional_recipe_skips_only_the_tutorials_loop() -> None:
    args = ["bench", str(RECIPES / "quickstart_conditional.yaml"), "--steps", "1", "--warmup", "1"]
    for override in TINY_QUICKSTART:
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    rates = dict(re.findall(r"(ganlab|minimal loop) \(fp32, [^)]+\)\s+([\d.]+)", result.output))
    assert float(rates["ganlab"]) > 0 and float(rates["minimal loop"]) > 0, result.output
    assert (
        "reference (tutorial) loop skipped: the DCGAN tutorial's loop is unconditional, and "
        "generator 'cdcgan' and discriminator 'cdcgan' take class labels" in result.output
    )


def test_a_conditional_models_flops_match_its_unconditional_counterparts() -> None:
    recipe = str(RECIPES / "quickstart_conditional.yaml")
    sets = ("data.params.count=64", "data.params.image_size=16", "generator.params.ngf=8")
    sets += ("discriminator.params.ndf=8",)
    conditional = step_flops_per_image(prepare_recipe(recipe, sets, ())[0])
    plain = ("generator.name=dcgan", "discriminator.name=dcgan")
    unconditional = step_flops_per_image(prepare_recipe(recipe, (*sets, *plain), ())[0])
    # Class embeddings and the projection are lookups and products, not matrix arithmetic.
    assert conditional > 0 and conditional == pytest.approx(unconditional, rel=0.05)


def test_every_loop_and_the_flop_count_run_ganlabs_own_step(tmp_path: Path) -> None:
    """Probes (tests/plugins/step_probes.py) record each call and the code that made it: the
    minimal loop and the FLOP count run ganlab's own step (`ganlab.engine.step.Step`, not a
    copy of it), with the recipe's D and G penalties at the steps they are due, the step's
    own scores, and the real scores G's loss declares it needs."""
    d_record, g_record, loss_record = (tmp_path / f"{n}.jsonl" for n in ("d", "g", "loss"))
    penalties = (
        f"[{{name: scores_probe, params: {{record: '{d_record}'}}}},"
        f" {{name: g_probe, params: {{record: '{g_record}', every: 2}}}},"
        " {name: r1, params: {weight: 1.0, every: 2}}]"
    )
    sets = [
        "loss.name=recording_bce",
        f"loss.params={{real_scores: current, record: '{loss_record}'}}",
        f"penalties={penalties}",
    ]
    result = invoke(*QUICKSTART, "-p", PROBES, *[a for s in sets for a in ("--set", s)], "--json")
    assert result.exit_code == 0, result.output
    assert numbers_of(result.output)["runs"][0]["minimal_img_s"] > 0

    def records(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines()]

    # Three steps (1 warm-up, 2 timed) in each loop, and the FLOP count's: one step where
    # only the every-step penalties are due, then one per lazy penalty (r1, g_probe).
    assert len(records(d_record)) == 3 + 3 + 3
    assert all(r["same"] and r["images"] for r in records(d_record))
    # The G penalty, every 2nd step: steps 0 and 2 in each loop, once in the FLOP count.
    assert len(records(g_record)) == 2 + 2 + 1
    assert len(records(loss_record)) == 9 and all(r["real_given"] for r in records(loss_record))
    the_step = f"{Step.__call__.__code__.co_filename}:{Step.__call__.__qualname__}"
    callers = {r["caller"] for path in (d_record, g_record, loss_record) for r in records(path)}
    assert callers == {the_step}


def test_a_lazy_penalty_costs_its_share_of_the_flops() -> None:
    recipe = str(RECIPES / "quickstart.yaml")
    sets = ("data.params.count=64", "data.params.image_size=16", "generator.params.ngf=8")

    def flops(*more: str) -> float:
        return step_flops_per_image(prepare_recipe(recipe, (*sets, *more), ())[0])

    plain = flops()
    r1 = "penalties=[{name: r1, params: {weight: 1.0, every: %d}}]"
    every_step, every_fourth = flops(r1 % 1), flops(r1 % 4)
    assert every_step > plain  # R1's double backward through D
    assert every_fourth - plain == pytest.approx((every_step - plain) / 4)
