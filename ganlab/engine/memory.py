"""Sizes the machine cannot hold are refused before anything is allocated, with the estimate.

A typo such as ``image_size: 1000000`` would otherwise die deep inside numpy or torch asking
for hundreds of terabytes, or fill the disk with a data cache that can never be finished.
"""

from __future__ import annotations

import os

import torch

from ganlab.errors import GanlabError
from ganlab.files.disk import human


def free_memory(device: torch.device) -> int | None:
    """Bytes of memory available on ``device`` now; None where it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:  # Linux: what can be allocated without swapping, page cache included
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes: int, device: torch.device, what: str, fix: str) -> None:
    """Refuse ``nbytes`` of tensors on ``device`` when it has less memory available."""
    free = free_memory(device)
    if free is not None and nbytes > free:
        raise GanlabError(
            f"{what} needs at least {human(nbytes)} of memory, but {device} has "
            f"{human(free)} available. {fix}"
        )
