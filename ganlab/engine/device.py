"""The device a run trains on, and the settings that go with it."""

from __future__ import annotations

import os

import torch

from ganlab.errors import GanlabError
from ganlab.recipe.train import TrainSpec


def pick_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else mps, else cpu; anything else must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:  # not a device name at all
        raise GanlabError(
            f"device {name!r}: not a device. Use auto, cpu, cuda, cuda:N or mps."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanlabError(
            f"device {name!r}: this machine has no CUDA GPU that torch can use. "
            "Use --device cpu (or auto, which takes a GPU when there is one)."
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise GanlabError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GanlabError(f"device {name!r}: MPS is not available here. Use --device cpu.")
    return device


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """CPU runs are always repeatable; on CUDA, `deterministic` trades speed for it."""
    if deterministic:
        # cuBLAS needs this before its first use to pick reproducible kernels.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic


def memory_format(train: TrainSpec) -> torch.memory_format:
    """channels_last (NHWC) runs convolutions faster on current CPUs and GPUs."""
    return torch.channels_last if train.channels_last else torch.contiguous_format
