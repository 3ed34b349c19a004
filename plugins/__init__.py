"""ganlab's built-in plugins.

Each module here is an ordinary ganlab plugin: it uses only the public `ganlab` API, exactly
as a third-party plugin would. The core loads the modules listed in `MODULES` first, before
installed and user plugins.
"""

MODULES = (
    "datasets",
    "faces",
    "dcgan",
    "sngan",
    "stylegan2",
    "biggan",
    "biggan_ortho",
    "losses",
    "relativistic",
    "augment",
    "penalties",
    "path_length",
    "regularizers",
    "console",
    "samples",
    "figures",
    "metrics",
    "fid",
    "wandb_logger",
    "sweeps",
)
