"""W&B lineage and registry, offline and for real: the data set each run uses as an input
artifact (keyed by ganlab's data fingerprint, or by a generated data set's params), the
model artifacts it logs, metadata paths relative to the run folder, and ``ganlab wandb link``
refusing clearly where it cannot reach W&B."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

wandb = pytest.importorskip("wandb", reason="W&B is an optional extra: pip install 'ganlab[wandb]'")

from tests.conftest import RECIPES, invoke, only_run_dir  # noqa: E402
from tests.test_wandb import (  # noqa: E402, F401 (wandb_env: W&B's clean environment)
    PLUGIN,
    by_type,
    invoke_run,
    read_records,
    wandb_env,
    wandb_file,
)

#: A tiny DCGAN run of the quickstart recipe, on whatever data set the test gives.
TINY = [
    "generator.params.ngf=8",
    "generator.params.nz=8",
    "discriminator.params.ndf=8",
    "train.steps=2",
    "train.batch_size=8",
    "metrics=[]",
    "callbacks=[]",
    "loggers=[{name: wandb}]",
]


def write_images(folder: Path, count: int = 8, size: int = 8) -> None:
    """``count`` small PNGs, each its own colour."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (size, size), (30 * i, 255 - 30 * i, 7 * i)).save(folder / f"{i}.png")


def train(out: Path, *sets: str) -> Path:
    args = [str(RECIPES / "quickstart.yaml"), "--out", str(out), "-p", PLUGIN]
    for override in (*TINY, *sets):
        args += ["--set", override]
    result = invoke_run(*args)
    assert result.exit_code == 0, result.output
    return only_run_dir(out)


def artifacts(run_dir: Path) -> tuple[Any, dict[tuple[str, ...], Any], Any]:
    """The run's data artifact, its model artifacts by aliases, and the run record."""
    records = by_type(read_records(wandb_file(run_dir)))
    (run,) = records["run"]
    (data,) = [a for a in records["artifact"] if a.type == "dataset"]
    models = {tuple(sorted(a.aliases)): a for a in records["artifact"] if a.type == "model"}
    return data, models, run


def test_a_folder_is_an_input_keyed_by_its_fingerprint(tmp_path: Path) -> None:
    images = tmp_path / "faces"
    write_images(images)
    folder = [f"data={{name: image_folder, params: {{root: {images}, image_size: 16}}}}"]
    first = train(tmp_path / "a", *folder)
    write_images(images, count=1, size=8)  # 0.png written again, as it was: the same data
    same = train(tmp_path / "b", *folder, "seed=1")  # another run folder and seed
    (images / "3.png").unlink()
    write_images(tmp_path / "other", count=1)
    (tmp_path / "other" / "0.png").rename(images / "3.png")  # one image changed
    changed = train(tmp_path / "c", *folder)

    data, models, run = artifacts(first)
    info = json.loads((first / "run.json").read_text())
    # The data set: an input of the run, logged by no run (W&B's use_artifact of an
    # artifact not yet logged), named after the data set and its folder.
    assert data.name == "image_folder-faces"
    assert data.user_created and data.use_after_commit
    assert info["wandb"]["data_artifact"] == data.name
    metadata = json.loads(data.metadata)
    assert metadata["dataset"] == "image_folder" and metadata["images"] == 8
    assert metadata["digest"] == info["data"]["digest"]  # ganlab's fingerprint of the data
    assert metadata["image_shape"] == [3, 16, 16] and metadata["params"]["image_size"] == 16
    # No image goes to W&B: one small file, the fingerprint, kept in the run folder.
    (entry,) = data.manifest.contents
    assert entry.path == "fingerprint.json" and not entry.ref
    kept = Path(entry.local_path)
    assert kept.parent == first / "wandb" / "data"
    assert json.loads(kept.read_text()) == {"images": 8, "digest": info["data"]["digest"]}

    # The models: outputs of the same run, with paths relative to the run folder.
    ((aliases, final),) = models.items()
    assert aliases == ("final", "latest", "step-2")
    assert final.run_id == run.run_id and not final.user_created and not final.use_after_commit
    assert json.loads(final.metadata)["file"] == "checkpoints/final.pt"

    # The same data, the same artifact digest; a changed image, another.
    digests = [artifacts(r)[0].digest for r in (first, same, changed)]
    assert digests[0] == digests[1] != digests[2]
    assert artifacts(changed)[0].name == data.name  # another version of the same artifact


def test_generated_data_is_known_by_its_params_and_link_needs_an_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faces = ("data.params.count=16", "data.params.image_size=16")
    run_dir = train(tmp_path / "runs", *faces)
    other = train(tmp_path / "more", *faces, "data.params.seed=1")
    data, _, _ = artifacts(run_dir)
    name, digits = data.name.rsplit("-", 1)
    assert name == "cartoon_faces" and len(digits) == 8
    assert not data.manifest.contents  # nothing but its name and metadata
    assert data.user_created and data.use_after_commit
    metadata = json.loads(data.metadata)
    assert metadata["params"] == {"count": 16, "image_size": 16, "seed": 0, "classes": None}
    assert artifacts(other)[0].name not in (data.name, None)  # other params: another artifact

    # The registry needs W&B's server: without credentials, one clear message, exit 2.
    result = invoke("wandb", "link", str(run_dir), "--which", "latest", "--alias", "candidate")
    assert result.exit_code == 2, result.output
    assert "needs a W&B account" in result.output and "wandb login" in result.output
    # Offline (WANDB_MODE), the same, saying so.
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = invoke("wandb", "link", str(run_dir), "--which", "latest")
    assert result.exit_code == 2 and "WANDB_MODE=offline" in result.output
    monkeypatch.delenv("WANDB_MODE")
    # With credentials, a run logged offline must be uploaded first: the command says how.
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    result = invoke("wandb", "link", str(run_dir), "--which", "latest")
    info = json.loads((run_dir / "run.json").read_text())["wandb"]
    assert result.exit_code == 2 and info["sync"] in result.output
    # No best checkpoint (no `best` callback): --which best says to take latest.
    result = invoke("wandb", "link", str(run_dir))
    assert result.exit_code == 2 and "--which latest" in result.output


def test_metadata_paths_are_relative_to_the_run_folder_in_any_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganlab_plugins.wandb.models import run_relative

    monkeypatch.chdir(tmp_path)
    run_dir = Path("runs") / "quickstart" / "20261127-101500-s0"  # as `--out runs` gives it
    absolute = tmp_path / run_dir / "checkpoints" / "best.pt"
    assert run_relative(run_dir, absolute) == "checkpoints/best.pt"
    assert run_relative(tmp_path / run_dir, run_dir / "checkpoints" / "best.pt") == (
        "checkpoints/best.pt"
    )
    assert run_relative(run_dir, tmp_path / "elsewhere.pt") == "../../../elsewhere.pt"
