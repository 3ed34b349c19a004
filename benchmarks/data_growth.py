"""How the decode-once cache's cost grows with the data set: docs/performance.md's table.

For each size N it makes a folder of N CelebA-sized JPEGs (178x218, smooth random images that
compress like photos; hard links to one shared set, so 200,000 cost the disk once) and runs,
as a user would, with its own cache folder:

1. ``ganlab data prepare`` on the tutorial recipe (64x64): decode every JPEG once;
2. a 1-step ``ganlab run`` of the tutorial recipe on the prepared data (no JPEG decoded), and
3. a 20-step run, to see whether memory grows while training pages through the cache.

Each is timed from process start to exit, and its memory sampled every 0.1 s over the whole
process tree (loader workers included): anonymous memory (what the process itself holds) and
file-backed memory (pages of the memory-mapped cache, which the kernel may drop at any time).

    python benchmarks/data_growth.py --sizes 10000,50000,200000 --folder /tmp/growth
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "dcgan_celeba.yaml"


def write_jpeg(path: Path) -> None:
    """A smooth random 178x218 JPEG: 16x16 noise upscaled, about the size of a CelebA file."""
    rng = np.random.default_rng(int(path.stem))
    small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(small).resize((178, 218), Image.BICUBIC).save(path, quality=90)


def make_images(folder: Path, count: int) -> Path:
    """``folder/all`` holding at least ``count`` JPEGs, named like CelebA's."""
    shared = folder / "all"
    shared.mkdir(parents=True, exist_ok=True)
    missing = [shared / f"{i:06d}.jpg" for i in range(1, count + 1)]
    missing = [p for p in missing if not p.exists()]
    with Pool(os.cpu_count()) as pool:
        pool.map(write_jpeg, missing, chunksize=256)
    return shared


def data_root(folder: Path, shared: Path, count: int) -> Path:
    """``folder/<count>/img_align_celeba``: hard links to the first ``count`` shared JPEGs."""
    root = folder / str(count)
    images = root / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        link = images / f"{i:06d}.jpg"
        if not link.exists():
            os.link(shared / link.name, link)
    return root


def tree_memory(pid: int) -> tuple[int, int]:
    """Anonymous and file-backed resident memory (bytes) of ``pid`` and its descendants."""
    anon = file = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # the process ended between two reads
        for line in status.splitlines():
            if line.startswith("RssAnon:"):
                anon += int(line.split()[1]) * 1024
            elif line.startswith(("RssFile:", "RssShmem:")):
                file += int(line.split()[1]) * 1024
        pending += [int(c) for c in children]
    return anon, file


def measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``command``; its wall time and the peaks of its process tree's memory."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_anon = peak_file = 0
    while process.poll() is None:
        anon, file = tree_memory(process.pid)
        peak_anon, peak_file = max(peak_anon, anon), max(peak_file, file)
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")  # type: ignore[union-attr]
    return {"seconds": seconds, "anon_mb": peak_anon / 2**20, "file_mb": peak_file / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/growth"))
    parser.add_argument("--workers", type=int, default=2, help="decoding processes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    shared = make_images(args.folder, max(sizes))
    ganlab = [sys.executable, "-m", "ganlab"]
    print(
        "| JPEGs | cache | prepare | its memory (anon / file) | 1-step run "
        "| 20-step run's memory (anon / file) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for count in sizes:
        root = data_root(args.folder, shared, count)
        env = dict(
            os.environ, GANLAB_CACHE=str(args.folder / f"cache-{count}"), WANDB_MODE="disabled"
        )
        data = ["--set", f"data.params.root={root}"]
        prepare = measure(
            [*ganlab, "data", "prepare", str(RECIPE), *data, "--workers", str(args.workers)], env
        )
        run = [
            *ganlab,
            "run",
            str(RECIPE),
            *data,
            "--set",
            "train.epochs=null",
            "--set",
            "callbacks=[]",
            "--set",
            "loggers=[]",
            "--out",
            str(args.folder / "runs"),
        ]
        first = measure([*run, "--set", "train.steps=1"], env)
        longer = measure([*run, "--set", "train.steps=20"], env)
        cache_mb = (
            sum(p.stat().st_size for p in (args.folder / f"cache-{count}").glob("*.u8")) / 2**20
        )
        print(
            f"| {count:,} | {cache_mb:,.0f} MB | {prepare['seconds']:.0f} s | "
            f"{prepare['anon_mb']:,.0f} / {prepare['file_mb']:,.0f} MB | "
            f"{first['seconds']:.1f} s | "
            f"{longer['anon_mb']:,.0f} / {longer['file_mb']:,.0f} MB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
