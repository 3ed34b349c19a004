"""What `ganlab bench` prints: each loop's TFLOP/s added to a row, and the results as a
header and one table row per loop and batch size."""

from __future__ import annotations

from typing import Any

from ganlab.commands.texttable import format_table

#: The loops of a row, as (key prefix, what the table calls it).
LOOPS = ("ganlab", "minimal", "reference")


def add_arithmetic(row: dict[str, Any], flops_per_image: float, peak: float | None) -> None:
    """Each loop's achieved TFLOP/s in ``row`` and, given the GPU's ``peak``, its fraction."""
    for loop in LOOPS:
        if f"{loop}_img_s" in row:
            tflops = row[f"{loop}_img_s"] * flops_per_image / 1e12
            row[f"{loop}_tflops"] = tflops
            if peak is not None:
                row[f"{loop}_peak_fraction"] = tflops / peak


def report(r: dict[str, Any]) -> str:
    """The bench's results as a header and one table row per loop and batch size."""
    precision = r["precision"]
    labels = {
        "ganlab": f"ganlab ({precision}, full loop)",
        "minimal": f"minimal loop ({precision}, same step)",
        "reference": "reference (tutorial: fp32, 2 workers)",
    }
    where = (
        r["device"] if r["device_name"] == r["device"] else f"{r['device']} ({r['device_name']})"
    )
    lines = [
        f"{r['recipe']} on {where}, {r['image_size']}x{r['image_size']} images, "
        f"{r['steps']} timed steps after {r['warmup']} warm-up steps",
        f"deterministic: {'on' if r['deterministic'] else 'off'}; "
        f"train.cuda_graphs: {r.get('cuda_graphs', 'off')}",
        f"one step costs {r['flops_per_image'] / 1e9:.3g} GFLOP per real image (G and D, "
        "forward and backward, counted by torch's FlopCounterMode)",
        peak_line(r),
        "",
    ]
    peak = r["peak_bf16_tflops"] is not None
    header = ["batch", "loop", "img/s", "TFLOP/s", *(["of bf16 peak"] if peak else []), "ganlab"]
    rows = []
    for run in r["runs"]:
        for loop in LOOPS:
            if f"{loop}_img_s" not in run:
                continue
            cells = [str(run["batch_size"]), labels[loop], f"{run[f'{loop}_img_s']:.1f}"]
            cells.append(f"{run[f'{loop}_tflops']:.3g}")
            if peak:
                cells.append(f"{100 * run[f'{loop}_peak_fraction']:.1f}%")
            cells.append(versus(loop, run))
            rows.append(cells)
    right = {0, 2, 3, 4} if peak else {0, 2, 3}
    lines.append(format_table(header, rows, right))
    if r.get("reference_skipped"):
        lines.append(f"\nreference (tutorial) loop skipped: {r['reference_skipped']}")
    if r.get("data_prep_img_s"):
        lines.append(f"\ndata prep (decode once into the cache): {r['data_prep_img_s']:.1f} img/s")
    return "\n".join(lines)


def peak_line(r: dict[str, Any]) -> str:
    if r["peak_bf16_tflops"] is not None:
        return f"{r['device_name']}: bf16 peak {r['peak_bf16_tflops']:.0f} TFLOP/s (dense)"
    if r["device"].startswith("cuda"):
        return (
            f"{r['device_name']} is not in ganlab's table of bf16 peaks "
            "(ganlab.commands.bench.flops.PEAK_BF16_TFLOPS): achieved TFLOP/s only, no fraction "
            "of the peak"
        )
    return f"on {r['device_name']}: achieved TFLOP/s only (the peak fraction is for known GPUs)"


def versus(loop: str, run: dict[str, Any]) -> str:
    """What the ganlab column says of a loop: ganlab's overhead, or its speed-up."""
    if loop == "minimal":
        return f"overhead {100 * run['overhead']:+.1f}%"
    if loop == "reference":
        return f"{run['speedup_vs_reference']:.2f}x this"
    return ""
