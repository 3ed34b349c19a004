"""The markdown table of ``benchmarks/gpu_check.sh``, from what it left in OUT_DIR:
``bench/NAME.json`` (``ganlab bench --json``), ``NAME.seconds`` and ``NAME/*/*/run.json`` (timed
quickstart runs), ``det_*`` (the deterministic resume) and ``failures.txt``.

    python benchmarks/gpu_table.py OUT_DIR

It works on the output of a CPU run as well (no peak fraction there), which is how it is tested.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: The bench measurements, in the table's order: file name, what was measured.
BENCH = (
    ("tutorial_fp32", "tutorial settings (DCGAN-64, batch 128)"),
    ("tutorial_bf16", "tutorial settings"),
    ("tutorial_fp32_graphs", "tutorial settings, train.cuda_graphs"),
    ("tutorial_bf16_graphs", "tutorial settings, train.cuda_graphs"),
    ("tutorial_bf16_deterministic", "tutorial settings, train.deterministic"),
    ("sweep_bf16", "batch-size sweep"),
    ("size128_bf16", "DCGAN-128 (--image-size 128)"),
)
#: The loops of a bench row: key prefix, name in the table.
LOOPS = (("ganlab", "ganlab"), ("minimal", "minimal loop"), ("reference", "tutorial's loop"))
#: The quickstart runs: file name, precision and options.
QUICKSTART = (
    ("quickstart_fp32", "fp32", ""),
    ("quickstart_bf16", "bf16", ""),
    ("quickstart_bf16_graphs", "bf16", "train.cuda_graphs"),
)
HEADER = (
    "| measurement | loop | precision | batch | image | img/s | TFLOP/s | of bf16 peak | notes |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---|"
)


def bench_json(path: Path) -> dict[str, Any] | None:
    """The JSON ``ganlab bench --json`` printed into ``path`` (None: missing or broken)."""
    if not path.exists():
        return None
    text = path.read_text()
    try:
        found: dict[str, Any] = json.JSONDecoder().raw_decode(text[text.index("{") :])[0]
    except ValueError:
        return None
    return found


def bench_rows(name: str, what: str, data: dict[str, Any]) -> list[str]:
    """One table line per loop and batch size of one bench call."""
    notes = [f"cuda_graphs {data.get('cuda_graphs', 'off')}"]
    if data.get("deterministic"):
        notes.append("deterministic")
    if data.get("peak_bf16_tflops") is None:
        notes.append(f"no peak known for {data.get('device_name', '?')}")
    lines = []
    for run in data["runs"]:
        for key, loop in LOOPS:
            if f"{key}_img_s" not in run:
                continue
            precision = "fp32" if key == "reference" else data["precision"]
            fraction = run.get(f"{key}_peak_fraction")
            extra = ""
            if key == "minimal":
                extra = f"; ganlab's overhead {100 * run['overhead']:+.1f}%"
            elif key == "reference":
                extra = f"; ganlab is {run['speedup_vs_reference']:.2f}x this"
            cells = [
                what,
                loop,
                precision,
                str(run["batch_size"]),
                str(data["image_size"]),
                f"{run[f'{key}_img_s']:,.0f}",
                f"{run[f'{key}_tflops']:.2f}",
                f"{100 * fraction:.1f}%" if fraction is not None else "",
                f"{name}: " + ", ".join(notes) + extra,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def quickstart_rows(out: Path) -> list[str]:
    """One line per timed quickstart run: the command's wall time against the 15 s target."""
    lines = []
    for name, precision, option in QUICKSTART:
        seconds = out / f"{name}.seconds"
        infos = sorted(out.glob(f"{name}/*/*/run.json"))
        if not seconds.exists() or not infos:
            lines.append(
                f"| quickstart, 2,500 steps | ganlab | {precision} | 64 | 32 | | | | FAILED |"
            )
            continue
        info = json.loads(infos[-1].read_text())
        wall = float(seconds.read_text())
        verdict = "under" if wall < 15 else "over"
        notes = (
            f"{name}: whole command {wall:.1f} s ({verdict} the 15 s target), training "
            f"{info['wall_seconds']:.1f} s, status {info['status']}"
            + (f", {option}" if option else "")
        )
        lines.append(
            f"| quickstart, 2,500 steps | ganlab | {precision} | 64 | 32 | "
            f"{info['images_per_second']:,.0f} | | | {notes} |"
        )
    return lines


def resume_line(out: Path) -> str:
    """Whether the deterministic CUDA run resumed half-way matched the straight one."""
    runs = [next((out / n).glob("*/*"), None) for n in ("det_straight", "det_resumed")]
    if any(r is None or not (r / "metrics.jsonl").exists() for r in runs):
        return "Deterministic resume on CUDA: not measured (see det.log)."
    rows = [(r / "metrics.jsonl").read_text().splitlines() for r in runs if r is not None]
    same = rows[0] == rows[1]
    return (
        f"Deterministic resume on CUDA (300 steps straight against 150 + 150 resumed): "
        f"{len(rows[0])} metrics rows, {'identical' if same else 'DIFFERENT'}."
    )


def table(out: Path) -> str:
    """The whole markdown table and the lines under it."""
    lines = [HEADER]
    for name, what in BENCH:
        data = bench_json(out / "bench" / f"{name}.json")
        if data is None:
            lines.append(f"| {what} | | | | | | | | {name}: FAILED or not run |")
        else:
            lines += bench_rows(name, what, data)
    lines += quickstart_rows(out)
    lines += ["", resume_line(out)]
    failures = out / "failures.txt"
    if failures.exists() and failures.read_text().strip():
        lines += ["", "Failures:", *(f"- {f}" for f in failures.read_text().splitlines())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
