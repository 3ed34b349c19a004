"""ganlab's built-in plugins.

Each module in these packages is an ordinary ganlab plugin: it uses only the public `ganlab`
API, exactly as a third-party plugin would. The packages group them by family (a model family,
data, losses, augmentations, callbacks, metrics, W&B). The core loads the modules listed in
`MODULES` first, in this order, before installed and user plugins.

`COMMAND_MODULES` are the modules that add commands (`ganlab_register_commands`), loaded
alone to list the commands: ``ganlab --help`` imports them and no model, so they import
neither torch nor wandb when imported.
"""

MODULES = (
    "data.datasets",
    "data.faces",
    "dcgan.models",
    "sngan.models",
    "stylegan2.models",
    "biggan.models",
    "biggan.ortho",
    "losses.classic",
    "losses.relativistic",
    "augment.diffaugment",
    "losses.penalties",
    "stylegan2.path_length",
    "losses.regularizers",
    "callbacks.console",
    "callbacks.samples",
    "callbacks.figures",
    "metrics.swd_metric",
    "metrics.fid",
    "wandb.logger",
    "wandb.sweep_command",
)

COMMAND_MODULES = ("wandb.sweep_command",)
