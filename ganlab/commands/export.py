"""`ganlab export`: a run's generator as a file that runs without ganlab, over
`ganlab.export_generator`."""

from __future__ import annotations

from pathlib import Path

import click

from ganlab.api import CLASSES_ATTRIBUTE, load_generator
from ganlab.commands.common import user_command
from ganlab.export import FORMATS, export_generator, refuse_existing


@click.command("export")
@click.argument("run_or_checkpoint", metavar="RUN_OR_CHECKPOINT", type=click.Path())
@click.option(
    "--format",
    "format_name",
    type=click.Choice(list(FORMATS)),
    default="export",
    show_default=True,
    help="export (torch.export.load; a .pt2 file), torchscript (torch.jit.load) or onnx.",
)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The file to write.")
@click.option(
    "--no-ema",
    is_flag=True,
    help="Export G's own weights, not their moving average (when the run kept one).",
)
@user_command
def export(run_or_checkpoint: str, format_name: str, out: str, no_ema: bool) -> None:
    """Export the generator of a run folder or checkpoint to a file that runs without
    ganlab: it takes latent vectors (and class labels, for a conditional run), any number
    at once, and returns images in [-1, 1]. An existing file is never overwritten.
    """
    refuse_existing(Path(out))  # before the generator is loaded
    generator = load_generator(run_or_checkpoint, ema=not no_ema)
    export_generator(generator, out, format_name)
    shape = "x".join(map(str, generator.latent_shape))  # type: ignore[arg-type]
    inputs = "latents" if getattr(generator, CLASSES_ATTRIBUTE) is None else "latents, labels"
    click.echo(f"Wrote {out} ({format_name}; inputs: {inputs} of shape N x {shape})")
