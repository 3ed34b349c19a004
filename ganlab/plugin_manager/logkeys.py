"""What a logged key is: its namespace and which way is better.

Every value a run logs (a training statistic, a metric's result, a plugin's own value through
`ganlab.RunView.log`) is a column of ``metrics.jsonl``. Its `KeyInfo` says where it belongs
(``train``, ``eval``, or a plugin's own namespace: W&B files it as ``<namespace>/<key>``) and
whether lower or higher is better, or neither (``ganlab compare`` reports a best value, and
W&B a min or max summary, only for keys that have a direction). ``run.json`` keeps them under
``keys``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

#: Which way a key's values are better; None: neither (a diagnostic, a count).
Better = Literal["lower", "higher"] | None
BETTER: tuple[Better, ...] = ("lower", "higher", None)

#: The namespaces ganlab itself logs into: the step statistics (and penalties), the
#: metrics' results, and what augmentations report (ADA's probability ``p``).
TRAIN, EVAL, AUG = "train", "eval", "aug"
#: A namespace is one W&B section name: letters, digits, '_', '-'.
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class KeyInfo:
    """Where a logged key belongs, and which way its values are better."""

    namespace: str
    better: Better = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def check_key_info(namespace: str, better: Any) -> KeyInfo:
    """A `KeyInfo`, or ValueError naming what is wrong (a plugin's mistake)."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"namespace {namespace!r}: give 1 to 64 letters, digits, '_' or '-' (such as "
            "'diagnostics')"
        )
    if better not in BETTER:
        raise ValueError(f"better={better!r}: give 'lower', 'higher' or None")
    return KeyInfo(namespace, better)


def key_infos(info: dict[str, Any]) -> dict[str, KeyInfo]:
    """The keys a run folder's run.json describes (older runs describe none)."""
    found = {}
    for key, value in (info.get("keys") or {}).items():
        if isinstance(value, dict) and value.get("better") in BETTER:
            found[key] = KeyInfo(str(value.get("namespace", EVAL)), value.get("better"))
    return found
