"""`ganlab bench` measures ganlab beside a minimal loop and the tutorial's loop (not a timed
test: it checks that the numbers are produced and consistent, not how large they are)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RECIPES, TINY, invoke, write_jpegs


def test_bench_on_a_folder_in_celebas_layout(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "celeba" / "img_align_celeba", 24)
    args = ["bench", str(RECIPES / "dcgan_celeba.yaml"), "--steps", "2", "--warmup", "1"]
    args += ["--set", f"data.params.root={tmp_path / 'celeba'}"]
    for override in TINY:
        args += ["--set", override]
    result = invoke(*args, "--set", "train.precision=bf16", "--json")
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.output[result.output.index("{") :])
    assert numbers["precision"] == "bf16" and numbers["batch_size"] == 8
    for key in ("ganlab_img_s", "minimal_img_s", "reference_img_s", "data_prep_img_s"):
        assert numbers[key] > 0, key
    ratio = numbers["ganlab_img_s"] / numbers["reference_img_s"]
    assert abs(numbers["speedup_vs_reference"] - ratio) < 1e-9
    text = invoke(*args, "--no-reference")
    assert text.exit_code == 0, text.output
    assert "ganlab (fp32, full loop)" in text.output and "overhead" in text.output
    assert "reference" not in text.output


def test_bench_on_the_generated_data_set() -> None:
    args = ["bench", str(RECIPES / "quickstart.yaml"), "--steps", "2", "--warmup", "1"]
    for override in ("data.params.count=64", "data.params.image_size=16", "train.batch_size=8"):
        args += ["--set", override]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "minimal loop (fp32, same step)" in result.output
    assert "reference" not in result.output  # no files to decode: no tutorial loader to time
