"""Does a change leave training as it was? Every shipped recipe's first rows, before and after.

Trains each recipe of ``recipes/`` for ``--steps`` steps with the working tree and with
another commit (a temporary ``git worktree``), one torch thread each, and compares the first
``--steps`` lines of their ``metrics.jsonl`` byte for byte. A recipe that only one side has
is skipped; W&B is off. The CelebA recipe needs the data (``--celeba``), else it is skipped.

    python benchmarks/same_rows.py --against HEAD~3 --steps 200 [--celeba /data/celeba]
        [--only quickstart --only sngan_cartoon]

Exit status 0 when every compared recipe gives the same bytes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rows(tree: Path, recipe: str, steps: int, out: Path, sets: list[str]) -> list[str] | None:
    """The first ``steps`` lines of the metrics of ``recipe`` trained with ``tree``'s code."""
    env = dict(
        os.environ,
        PYTHONPATH=f"{tree}{os.pathsep}{tree / 'typecheck'}",
        OMP_NUM_THREADS="1",
        WANDB_MODE="disabled",
        GANLAB_CACHE=str(out / "cache"),
    )
    command = [sys.executable, "-m", "ganlab", "run", f"recipes/{recipe}.yaml", "--out", str(out)]
    for override in [f"train.steps={steps}", *sets]:
        command += ["--set", override]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{recipe}: failed in {tree}:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    [metrics] = out.glob("*/*/metrics.jsonl")
    return metrics.read_text().splitlines()[:steps]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the commit to compare with")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--celeba", help="the CelebA folder, for recipes/dcgan_celeba.yaml")
    parser.add_argument(
        "--only", action="append", metavar="RECIPE", help="compare only these (repeatable)"
    )
    args = parser.parse_args()
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.against], check=True)
        try:
            names = sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))
            names = [name for name in names if not args.only or name in args.only]
            for name in names:
                if not (old / "recipes" / f"{name}.yaml").exists():
                    print(f"{name}: new, skipped")
                    continue
                sets = [f"data.params.root={args.celeba}"] if name == "dcgan_celeba" else []
                if name == "dcgan_celeba" and not args.celeba:
                    print(f"{name}: skipped (no --celeba)")
                    continue
                before = rows(old, name, args.steps, Path(tmp) / "runs" / "old" / name, sets)
                after = rows(ROOT, name, args.steps, Path(tmp) / "runs" / "new" / name, sets)
                equal = before is not None and before == after
                same &= equal
                print(f"{name}: {'identical' if equal else 'DIFFERENT'} ({len(after or [])} rows)")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], check=False)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
