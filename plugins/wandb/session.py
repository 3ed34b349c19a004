"""Starting W&B in this process: whether it is installed, the mode it runs in, its
process-wide settings, its credentials, and which process of a distributed run logs.

Nothing here imports wandb before a run needs it: W&B is an optional extra
(``pip install 'ganlab[wandb]'``), and importing it takes a second or more.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal

import ganlab

#: The modes the logger runs W&B in.
Mode = Literal["offline", "online", "disabled"]

#: WANDB_MODE values W&B accepts, as the mode the logger uses.
MODES: dict[str, Mode] = {
    "offline": "offline",
    "dryrun": "offline",
    "online": "online",
    "run": "online",
    "disabled": "disabled",
}

#: How to get W&B, for every message that needs it.
INSTALL = "pip install 'ganlab[wandb]'"


def installed() -> bool:
    """Whether wandb can be imported here (found without importing it)."""
    return importlib.util.find_spec("wandb") is not None


def effective_mode(param: Mode | None) -> Mode:
    """``WANDB_MODE`` if set, else the ``mode`` param, else ``offline``."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env:
        if env not in MODES:
            raise ganlab.GanlabError(
                f"WANDB_MODE={env!r} is not a W&B mode this logger knows. "
                "Set it to offline, online or disabled (or unset it)."
            )
        return MODES[env]
    return param or "offline"


def setup_wandb(mode: Mode) -> Any:
    """Import wandb with its process-wide settings in ``mode`` and silent; returns wandb.

    W&B's own usage telemetry follows these settings, not a run's: left at their default
    (online), an offline run would still try the network when the process exits. Silent
    also keeps ``wandb.login()`` from asking the server for the user's name.
    """
    import wandb

    wandb.setup(wandb.Settings(mode=mode, silent=True))
    return wandb


def has_credentials() -> bool:
    """Whether W&B has credentials for its server, found without a prompt or the network."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    wandb = setup_wandb("online")  # login() refuses to look while the process is offline
    try:
        # Reads the environment, the settings files and .netrc; no prompt, no network.
        return bool(wandb.login(prompt=False, verify=False))
    except Exception as exc:  # e.g. a malformed key in .netrc
        raise ganlab.GanlabError(
            f"wandb logger: W&B's credentials are not usable: {exc} Run `wandb login` again, "
            "or log offline (--wandb offline)."
        ) from exc


def is_rank_zero() -> bool:
    """False in every process of a distributed run but the first."""
    rank = os.environ.get("RANK", "").strip()
    if rank and rank != "0":
        return False
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)
