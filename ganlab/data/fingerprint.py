"""A run knows its data: each image's name and pixel hash, recorded in the run folder, and
compared when the run is resumed.

``run.json`` keeps the summary under ``data`` (how many images, one digest of them all);
``data.json`` beside it keeps every image's name and hash, so that a resume on other data
can say which images were added, removed or changed. A data set decoded into ganlab's cache
gets its hashes from the cache (hashed once as it was built); one held in memory (generated
in code) is hashed as it is; one decoded on demand (``train.data_cache: false``) is hashed
by its cache key (its files' sizes and modification times) instead of its pixels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganlab.data.cache import CacheableImages
from ganlab.data.types import Fingerprint, TensorImages, hash_images, image_names
from ganlab.errors import GanlabError
from ganlab.files.atomic import write_json_atomic

DATA_FILE = "data.json"
#: How many names of each kind of change a message lists.
SHOWN = 5


def fingerprint_of(dataset: object) -> Fingerprint | None:
    """The fingerprint of a run's data set as built (None: a data set ganlab cannot hash)."""
    if isinstance(dataset, TensorImages):
        return dataset.fingerprint or Fingerprint(image_names(dataset), hash_images(dataset.images))
    if isinstance(dataset, CacheableImages):
        # Not decoded ahead: every image stands for the cache key, which covers its files'
        # sizes and modification times.
        key = hashlib.blake2b(dataset.cache_key().encode(), digest_size=8).hexdigest()
        names = image_names(dataset)
        return Fingerprint(names, (key,) * len(names))
    return None


def record(run_dir: Path, fingerprint: Fingerprint, info: dict[str, Any]) -> None:
    """Write ``data.json`` into ``run_dir`` and put the summary into ``info`` (run.json's
    contents; the caller writes it)."""
    write_json_atomic(
        run_dir / DATA_FILE, {"names": list(fingerprint.names), "hashes": list(fingerprint.hashes)}
    )
    info["data"] = {"images": len(fingerprint.names), "digest": fingerprint.digest()}


def recorded(run_dir: Path) -> Fingerprint | None:
    """The fingerprint a run folder recorded (None: a run from before they were kept)."""
    try:
        saved = json.loads((run_dir / DATA_FILE).read_text(encoding="utf-8"))
        return Fingerprint(tuple(saved["names"]), tuple(saved["hashes"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GanlabError(
            f"{run_dir / DATA_FILE}: cannot read the run's data fingerprint ({exc}). Put back "
            "the run's own data.json, or start a new run."
        ) from None


@dataclass(frozen=True)
class DataChanges:
    """Which images differ between a run's recorded data and its data now, by name."""

    added: list[str]
    removed: list[str]
    changed: list[str]

    @classmethod
    def between(cls, before: Fingerprint, now: Fingerprint) -> DataChanges:
        old = dict(zip(before.names, before.hashes, strict=True))
        new = dict(zip(now.names, now.hashes, strict=True))
        return cls(
            added=[name for name in now.names if name not in old],
            removed=[name for name in before.names if name not in new],
            changed=[name for name in now.names if name in old and old[name] != new[name]],
        )

    def counts(self) -> dict[str, int]:
        """How many images were added, removed and changed (what run.json records)."""
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
        }

    def describe(self) -> str:
        """``2 added (a.png, b.png), 1 changed (c.png)``; the order, when only that changed."""
        parts = []
        for kind, names in (("added", self.added), ("removed", self.removed)):
            if names:
                shown = ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")
                parts.append(f"{len(names)} image(s) {kind} ({shown})")
        if self.changed:
            shown = ", ".join(self.changed[:SHOWN]) + (", ..." if len(self.changed) > SHOWN else "")
            parts.append(f"{len(self.changed)} image(s) changed content ({shown})")
        return "; ".join(parts) or "the same images in another order"
