"""The `ganlab` command line: the group, its table of built-in commands, and `main`.

Each command lives in its own module, imported only when the command is used
(`ganlab.commands.group`): ``ganlab --help`` and ``ganlab --version`` import none of them,
and so no torch.
"""

from __future__ import annotations

import click

from ganlab.commands.group import GanlabGroup, LazyCommand

#: Every built-in command: the module that holds it, its name there, and its one-line help
#: (the first sentence of its docstring, which ``ganlab --help`` shows; a test keeps them
#: equal).
COMMANDS = {
    "bench": LazyCommand(
        "ganlab.commands.bench.bench",
        "bench",
        "Measure images per second of ganlab's loop on RECIPE beside its training step alone "
        "(a minimal loop, in the same precision) and the DCGAN tutorial's loop (fp32, 2 "
        "loader workers), with the TFLOP/s each reaches.",
    ),
    "compare": LazyCommand(
        "ganlab.commands.compare",
        "compare",
        "Compare runs: a table, and a plot with one panel per metric and loss.",
    ),
    "data": LazyCommand("ganlab.commands.data", "data", "Prepare data sets ahead of training."),
    "eval": LazyCommand(
        "ganlab.commands.eval",
        "eval_command",
        "Score RUN_OR_CHECKPOINT (a run folder, whose checkpoints/final.pt is used, or a .pt "
        "file such as checkpoints/best.pt) with the recipe's metrics or those of --metric.",
    ),
    "export": LazyCommand(
        "ganlab.commands.export",
        "export",
        "Export the generator of a run folder or checkpoint to a file that runs without "
        "ganlab: it takes latent vectors (and class labels, for a conditional run), any "
        "number at once, and returns images in [-1, 1].",
    ),
    "plugins": LazyCommand(
        "ganlab.commands.plugins",
        "plugins",
        "List every component, the plugin that gave it, and its params.",
    ),
    "recipe": LazyCommand(
        "ganlab.commands.recipe", "recipe", "Inspect recipes without running them."
    ),
    "run": LazyCommand(
        "ganlab.commands.run",
        "run",
        "Train the recipe RECIPE (a .yaml file) and write a run folder.",
    ),
    "runs": LazyCommand(
        "ganlab.commands.runs",
        "runs",
        "List the runs under FOLDER (default: runs), newest first: one line per run folder, "
        "at any depth, with its status, recipe, seed, steps done of the total, the best "
        "value of its ranking metric (the `best` callback's, else its first evaluation), "
        "wall time, and the columns plugins add (ganlab_run_columns).",
    ),
    "sample": LazyCommand(
        "ganlab.commands.sample",
        "sample",
        "Generate images with the generator of a finished run.",
    ),
}


@click.group(
    "ganlab",
    cls=GanlabGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="ganlab")
def cli() -> None:
    """ganlab: GAN experiments from seeded YAML recipes, extended by plugins.

    Start with `ganlab run recipes/quickstart.yaml`.
    """


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
