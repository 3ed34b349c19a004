"""Data lineage: the data set a run trains on, as an input artifact of its W&B run, so that
W&B's lineage graph shows which data a model was trained on and which runs shared it.

The artifact (type ``dataset``) never holds an image, and W&B never reads the data:

- Data on disk (a data set with a ``root`` param, such as ``image_folder`` or ``celeba``, a
  folder or a zip) is named ``<data set>-<folder or zip name>`` and holds one small file,
  ``fingerprint.json``: the number of images and the digest of the fingerprint ganlab
  records of them (``run.json``'s ``data``: every image's name and pixel hash, from the
  decode-once cache). W&B versions an artifact by its files' contents, so the same images
  give the same version, in any folder and on any machine, and one changed image another.
- Any other data set (generated in code, as ``cartoon_faces``) is known by its name and
  params: ``<data set>-<8 hex digits of its params>``, with no file at all.

Both carry the data set's name, params, image count and shape, digest and classes as
metadata. The model artifacts (`ganlab_plugins.wandb.models`) are the same run's outputs.

How W&B records the use: ``Run.use_artifact`` of an artifact not yet logged logs it without
a run that made it and marks the run as its user (wandb 0.31, ``wandb/sdk/wandb_run.py``:
``_log_artifact(..., is_user_created=True, use_after_commit=True)``). Offline, W&B refuses
``use_artifact`` outright ("Cannot use artifact when in offline mode"), although for such an
artifact it needs no network: it only writes the artifact's record, and ``wandb sync``
creates and uses it (``core/pkg/artifacts/saver.go``: ``UseAfterCommit``). Offline, the
logger therefore makes that same call itself, the one private W&B call of the plugin; where
a W&B version lacks it, the run is logged without its data's lineage, and says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

import ganlab
from ganlab_plugins.wandb.models import alias

#: Where the data artifacts' fingerprint files wait until ``wandb sync`` uploads them.
DATA = Path("wandb") / "data"

#: The artifact's type in W&B.
TYPE = "dataset"


@dataclass(frozen=True)
class DataArtifact:
    """The artifact of a run's data set: its name, its one file (on-disk data) and metadata."""

    name: str
    metadata: dict[str, Any]
    fingerprint: Path | None = None  #: ``fingerprint.json`` for data on disk, else None


def params_hash(params: Any) -> str:
    """8 hex digits of ``params`` as canonical JSON: the same params, the same digits."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def data_artifact(run: ganlab.RunView) -> DataArtifact:
    """The artifact of ``run``'s data set (see the module's docstring), its file written."""
    spec = run.recipe.data
    params = dict(spec.params or {})
    recorded = run.info.get("data")
    fingerprint = recorded if isinstance(recorded, dict) and recorded.get("digest") else None
    metadata: dict[str, Any] = {
        "dataset": spec.name,
        "params": params,  # as the recipe gives them (a data root: where the data was)
        "image_shape": list(run.image_shape),
        "images": run.dataset_size,
    }
    if fingerprint is not None:
        metadata["digest"] = fingerprint["digest"]
    if run.class_names is not None:
        metadata["classes"] = list(run.class_names)
    root = params.get("root")
    if not isinstance(root, str) or fingerprint is None:
        # Generated data (or data ganlab cannot fingerprint): known by name and params.
        return DataArtifact(f"{alias(spec.name)}-{params_hash(params)}", metadata)
    where = Path(root)
    stem = where.stem if where.suffix.lower() == ".zip" else where.name
    kind, folder = alias(spec.name), alias(stem) if stem else ""
    name = kind if folder in ("", kind) else f"{kind}-{folder}"
    content = json.dumps(
        {"images": fingerprint.get("images"), "digest": fingerprint["digest"]}, sort_keys=True
    )
    # Named by the digest: a resumed run on changed data writes another file, and a file
    # W&B will upload at `wandb sync` never changes.
    path = run.dir.absolute() / DATA / f"{str(fingerprint['digest'])[:16]}.json"
    if not path.is_file() or path.read_text(encoding="utf-8") != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return DataArtifact(name, metadata, path)


def use_data(wb: Any, run: ganlab.RunView) -> str | None:
    """Declare ``run``'s data artifact an input of the W&B run ``wb``; its name, or None when
    W&B could not record it (a warning says why: the run goes on)."""
    import wandb

    name = run.recipe.data.name
    try:
        data = data_artifact(run)  # writes fingerprint.json: a full disk fails here
        name = data.name
        artifact = wandb.Artifact(data.name, type=TYPE, metadata=data.metadata)
        if data.fingerprint is not None:
            artifact.add_file(str(data.fingerprint), name="fingerprint.json", policy="immutable")
        if not wb.offline:
            wb.use_artifact(artifact)
        else:
            # What use_artifact does with an artifact not yet logged, without its refusal
            # to run offline (see the module's docstring).
            wb._log_artifact(artifact, is_user_created=True, use_after_commit=True)
    except Exception as exc:  # lineage is a record of the run, never a reason to stop it
        click.echo(
            f"W&B: the data set's artifact {name} could not be recorded as this run's "
            f"input ({type(exc).__name__}: {exc}); the run is logged without it.",
            err=True,
        )
        return None
    return name
