"""`ganlab sample`: images from a finished run's generator, as a grid, as files or as walks.

The generator is rebuilt the way the run built it: the recipe stored in the checkpoint names
its plugins and components, the registry builds it for the checkpoint's image shape, and the
saved weights go in (the moving average of G's weights, when the run kept one: ``train.ema``).
It samples in eval mode (batch-norm uses its running statistics), so an
image depends only on its own latent vector, not on the others in the batch.

Latent vectors come from their own seeded CPU generator (`ganlab.engine.sampling`): a seed
gives the same vectors on any device, and image ``i`` is the same whatever ``-n`` is.

A conditional run's generator (one that takes class labels) gives a grid with one row per
class instead: ``-n`` images of each class (8 by default), every class unless ``--class``
names some. Column ``j`` is the same latent vector in every row, so a column shows one ``z``
across the classes.

``--interpolate`` walks through latent space as in the DCGAN paper (Radford et al. 2015,
fig. 4): a series of random points ``z_0, z_1, ..., z_rows``, walk ``i`` going from ``z_i`` to
``z_(i+1)`` by spherical interpolation (slerp), which keeps the intermediate points at the
typical distance from the origin of a Gaussian latent (White 2016, "Sampling generative
networks").
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import click
import torch

from ganlab.commands.common import user_command
from ganlab.engine.device import pick_device
from ganlab.engine.memory import check_memory
from ganlab.engine.restore import restored_generator
from ganlab.engine.sampling import class_rows, images_of, latent_series, walk_latents
from ganlab.errors import GanlabError, did_you_mean
from ganlab.files.checkpoint import find_checkpoint, folder_of
from ganlab.files.images import grid, save_gif, save_grid, save_png, to_uint8
from ganlab.files.staging import staged

#: Display time of one frame of a walk's GIF.
SECONDS_PER_FRAME = 0.12


# --- classes ------------------------------------------------------------------------------


def class_number(spec: str, classes: tuple[str, ...]) -> int:
    """The class ``--class`` names: by its name first (a folder may be called ``3``), else
    by its number."""
    if spec in classes:
        return classes.index(spec)
    if spec.isdigit() and int(spec) < len(classes):
        return int(spec)
    shown = ", ".join(f"{k}={name}" for k, name in enumerate(classes[:20]))
    more = f", ... ({len(classes)} in all)" if len(classes) > 20 else ""
    raise click.BadParameter(
        f"{spec!r} is not a class of this run.{did_you_mean(spec, list(classes))} "
        f"Give a name or a number from 0 to {len(classes) - 1}: {shown}{more}.",
        param_hint="'--class'",
    )


def folder_name(number: int, name: str) -> str:
    """A class's folder for ``--separate``: its name when that is a plain file name, else
    its number."""
    plain = re.fullmatch(r"[\w.-]+", name) is not None and name not in (".", "..")
    return name if plain else f"class-{number}"


def frame_columns(count: int) -> int:
    """Columns for ``count`` tiles in a near-square grid: a divisor of ``count`` that leaves
    no hole when one keeps the grid at most twice as wide as tall, else ``ceil(sqrt)``."""
    side = math.isqrt(count - 1) + 1  # ceil(sqrt(count))
    for columns in range(side, math.isqrt(2 * count) + 1):
        if count % columns == 0:
            return columns
    return side


def walk_frames(images: torch.Tensor, columns: int) -> list[torch.Tensor]:
    """The GIF frames for walks ``(rows, frames, C, H, W)``: frame ``t`` is every walk at
    step ``t`` as one grid, going forward and back (``2 * frames - 2`` frames) so that the
    animation loops without a jump."""
    steps = images.shape[1]
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    return [grid(images[:, t], columns) for t in order]


def _refuse_existing(*paths: Path, empty_folder_ok: bool = False) -> None:
    for path in paths:
        if empty_folder_ok and path.is_dir() and not any(path.iterdir()):
            continue
        if path.exists():
            raise GanlabError(
                f"{path} already exists; `ganlab sample` never overwrites it. Choose another "
                "--out or a different --seed, or move the old one away."
            )


def _png(path: Path, option: str = "--out") -> Path:
    if path.suffix.lower() != ".png":
        raise GanlabError(f"{option} {path}: give a file name ending in .png.")
    return path


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source != click.core.ParameterSource.DEFAULT


def _check_options(ctx: click.Context, interpolate: bool, separate: bool) -> None:
    """Refuse options that do not apply to the chosen output, rather than ignore them
    (`_check_classes` does the same for a conditional run, once the checkpoint is read)."""
    conflicts = {
        "--interpolate": (interpolate, {"num": "-n/--num", "separate": "--separate"}),
        "--separate": (separate, {"nrow": "--nrow"}),
        "no --interpolate": (not interpolate, {"rows": "--rows", "frames": "--frames"}),
    }
    for mode, (active, options) in conflicts.items():
        for name, flag in options.items():
            if active and _given(ctx, name):
                what = "without --interpolate" if mode.startswith("no ") else f"with {mode}"
                raise click.UsageError(f"{flag} does not apply {what}.", ctx)


def _check_classes(
    ctx: click.Context, class_specs: tuple[str, ...], classes: tuple[str, ...] | None, where: Path
) -> list[int] | None:
    """The classes to sample (None: the generator takes no labels); ``--class`` on an
    unconditional run, and ``--nrow`` on a per-class grid, are usage errors."""
    if classes is None:
        if class_specs:
            raise click.UsageError(
                f"--class applies only to a conditional run (its generator takes class "
                f"labels); the generator of {where} takes none. Leave --class out.",
                ctx,
            )
        return None
    interpolate, separate = ctx.params["interpolate"], ctx.params["separate"]
    if not interpolate and not separate and _given(ctx, "nrow"):
        raise click.UsageError(
            "--nrow does not apply to a conditional run's grid: it has one row per class, "
            "of -n images each.",
            ctx,
        )
    chosen = [class_number(spec, classes) for spec in class_specs]
    return chosen or list(range(len(classes)))


@click.command("sample")
@click.argument("checkpoint_or_run", metavar="CHECKPOINT_OR_RUN", type=click.Path())
@click.option(
    "-n",
    "--num",
    type=click.IntRange(min=1),
    help="Images [default: 64]; for a conditional run, images of each class [default: 8].",
)
@click.option(
    "--class",
    "class_specs",
    multiple=True,
    metavar="K",
    help="For a conditional run: a class to sample, by name or number (repeatable), one row "
    "of the grid each [default: every class]. With --interpolate, walk i is in the i-th "
    "class given, in turn.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**63 - 1),
    default=0,
    show_default=True,
    help="Seed of the latent vectors: the same seed gives the same images, on any device.",
)
@click.option(
    "--nrow",
    type=click.IntRange(min=1),
    help="Images per row of the grid [default: 8]; with --interpolate, walks per row of each "
    "GIF frame [default: a near-square grid].",
)
@click.option("--separate", is_flag=True, help="Write one PNG per image into a folder.")
@click.option(
    "--interpolate",
    is_flag=True,
    help="Latent walks instead: a grid with one walk per row, and a GIF of all walks at once.",
)
@click.option("--rows", type=click.IntRange(min=1), default=8, show_default=True, help="Walks.")
@click.option(
    "--frames",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    help="Steps per walk, both ends included.",
)
@click.option(
    "--device",
    "device_name",
    default="auto",
    show_default=True,
    help="auto, cpu, cuda, cuda:N or mps.",
)
@click.option(
    "--out",
    type=click.Path(),
    help="Where to write: the grid's .png (with --interpolate the GIF goes next to it, as "
    ".gif), or the folder for --separate [default: in the run folder's samples/].",
)
@user_command
def sample(
    checkpoint_or_run: str,
    num: int | None,
    class_specs: tuple[str, ...],
    seed: int,
    nrow: int | None,
    separate: bool,
    interpolate: bool,
    rows: int,
    frames: int,
    device_name: str,
    out: str | None,
) -> None:
    """Generate images with the generator of a finished run.

    CHECKPOINT_OR_RUN is a run folder (its checkpoints/final.pt, else its newest .pt) or a
    checkpoint file. The generator runs in eval mode. By default the output goes to the run
    folder's samples/: sample-s<SEED>.png (a grid of -n images), sample-s<SEED>/ (with
    --separate: 0000.png, 0001.png, ...), or walk-s<SEED>.png and walk-s<SEED>.gif (with
    --interpolate: --rows walks through latent space between random points, --frames steps
    each; walk i goes from point i to point i+1). For a conditional run the grid has one row
    per class, of -n images each (--class K, repeatable, names the classes; the file is then
    sample-s<SEED>-class-K...png), and --separate writes a folder per class. An existing file
    is never overwritten: choose --out or another --seed.
    """
    ctx = click.get_current_context()
    _check_options(ctx, interpolate, separate)
    device = pick_device(device_name)
    checkpoint = find_checkpoint(Path(checkpoint_or_run))
    samples_dir = folder_of(checkpoint) / "samples"
    generator, state, _, classes = restored_generator(checkpoint, device)
    chosen = _check_classes(ctx, class_specs, classes, checkpoint)
    tag = "" if not class_specs or chosen is None else "-class-" + "-".join(map(str, chosen))

    if interpolate:
        png = _png(Path(out)) if out else samples_dir / f"walk-s{seed}{tag}.png"
        gif = png.with_suffix(".gif")
        _refuse_existing(png, gif)
    elif separate:
        folder = Path(out) if out else samples_dir / f"sample-s{seed}{tag}"
        _refuse_existing(folder, empty_folder_ok=True)
    else:
        png = _png(Path(out)) if out else samples_dir / f"sample-s{seed}{tag}.png"
        _refuse_existing(png)

    # Images per class for a conditional run (a row of the grid each), else in all.
    num = num or (64 if chosen is None else 8)
    # Every latent vector is held at once, and every image too unless written one by one.
    count = rows * frames if interpolate else num * (1 if chosen is None else len(chosen))
    held = math.prod(generator.latent_shape) + (0 if separate else math.prod(state["image_shape"]))
    check_memory(
        count * held * 4,
        torch.device("cpu"),
        f"Sampling {count} images",
        "Ask for fewer (-n, or --rows and --frames), or write them one by one with --separate.",
    )
    weights = "Moving average of the generator" if state.get("generator_ema") else "Generator"
    click.echo(f"{weights} of {checkpoint} (step {state.get('step', '?')}), on {device}")

    if interpolate:
        latents = walk_latents(generator, rows, frames, seed)
        labels = None
        if chosen is not None:  # walk i in the i-th class, in turn
            walk_classes = torch.tensor([chosen[i % len(chosen)] for i in range(rows)])
            labels = walk_classes.repeat_interleave(frames)
        images = torch.cat(list(images_of(generator, latents.flatten(0, 1), device, labels)))
        walks = images.reshape(rows, frames, *images.shape[1:])
        columns = nrow if nrow else frame_columns(rows)
        with staged(png, gif, refuse=_refuse_existing) as (png_at, gif_at):
            save_grid(images, png_at, nrow=frames)
            save_gif(walk_frames(walks, columns), gif_at, seconds_per_frame=SECONDS_PER_FRAME)
        click.echo(f"Wrote {png} ({rows} walks of {frames} steps, one per row)")
        click.echo(f"Wrote {gif} ({2 * frames - 2} frames, forward and back)")
    elif separate and chosen is not None:
        width = max(4, len(str(num - 1)))
        latents, labels = class_rows(generator, chosen, num, seed)
        flat = (image for batch in images_of(generator, latents, device, labels) for image in batch)
        assert classes is not None
        with staged(folder, refuse=_refuse_existing) as (folder_at,):
            for k in chosen:
                where = folder_at / folder_name(k, classes[k])
                for i in range(num):
                    save_png(to_uint8(next(flat)), where / f"{i:0{width}d}.png")
        shown = ", ".join(folder_name(k, classes[k]) for k in chosen)
        click.echo(f"Wrote {num} images of each class to {folder}/: {shown}")
    elif separate:
        width = max(4, len(str(num - 1)))
        index = 0
        with staged(folder, refuse=_refuse_existing) as (folder_at,):
            folder_at.mkdir()
            for batch in images_of(generator, latent_series(generator, num, seed), device):
                for image in batch:
                    save_png(to_uint8(image), folder_at / f"{index:0{width}d}.png")
                    index += 1
        click.echo(
            f"Wrote {num} images to {folder}/ ({0:0{width}d}.png to {num - 1:0{width}d}.png)"
        )
    elif chosen is not None:
        assert classes is not None
        latents, labels = class_rows(generator, chosen, num, seed)
        images = torch.cat(list(images_of(generator, latents, device, labels)))
        with staged(png, refuse=_refuse_existing) as (png_at,):
            save_grid(images, png_at, nrow=num)
        shown = ", ".join(classes[k] for k in chosen[:8]) + (", ..." if len(chosen) > 8 else "")
        click.echo(f"Wrote {png} (one row per class: {shown})")
    else:
        latents = latent_series(generator, num, seed)
        images = torch.cat(list(images_of(generator, latents, device)))
        with staged(png, refuse=_refuse_existing) as (png_at,):
            save_grid(images, png_at, nrow=nrow or 8)
        click.echo(f"Wrote {png}")
