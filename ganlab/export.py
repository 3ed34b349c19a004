"""Exporting a generator to a file that runs without ganlab (docs/python.md#export):
TorchScript, ``torch.export`` or ONNX (``ganlab export`` is the command over it).

The generator is captured in eval mode from example inputs (two latent vectors, and class
0 for a conditional generator), with a free batch size:

* ``export`` (the default): `torch.export.export`, saved with `torch.export.save` (a ``.pt2``
  file; load with ``torch.export.load(path).module()``).
* ``torchscript``: `torch.jit.trace`, saved with ``save`` (load with `torch.jit.load`).
  Tracing, not `torch.jit.script`: scripting fails on ganlab's generators (their
  ``tuple[int, ...]`` annotations) and on most modern modules; a trace records the
  operations one forward pass ran, so Python control flow that depends on the input is
  fixed at what the example took. torch deprecates TorchScript (it warns when tracing and
  loading), hence ``export`` first; TorchScript still loads in C++ (libtorch).
* ``onnx``: `torch.onnx.export` (needs the ``onnx`` and ``onnxscript`` packages).

Random numbers the generator draws itself (StyleGAN2's noise inputs) stay random draws in
the exported model, from torch's global generator, as in the original. The exported model is
run once on the example inputs and compared with the original before the file is published.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ganlab.api import CLASSES_ATTRIBUTE, user_errors
from ganlab.contracts import Generator
from ganlab.engine.sampling import seeded_latents, untouched
from ganlab.errors import GanlabError
from ganlab.files.staging import staged

#: The formats, and the file name ending each is usually given.
FORMATS = {"export": ".pt2", "torchscript": ".pt", "onnx": ".onnx"}


def example_inputs(generator: nn.Module) -> tuple[torch.Tensor, ...]:
    """Two latent vectors (and class 0 for a conditional generator) on its device."""
    device = next(generator.parameters(), torch.empty(0)).device
    latents = seeded_latents(cast(Generator, generator), 2, seed=0).to(device)
    if getattr(generator, CLASSES_ATTRIBUTE, None) is None:
        return (latents,)
    return latents, torch.zeros(2, dtype=torch.int64, device=device)


def _exported(generator: nn.Module, inputs: tuple[torch.Tensor, ...], format: str) -> Any:
    """The generator captured in ``format`` (in eval mode, batch size free)."""
    if format == "torchscript":
        # check_trace would run it again and compare: a generator that draws noise differs.
        return torch.jit.trace(generator, inputs, check_trace=False)
    batch = torch.export.Dim("batch", min=1)
    shapes = tuple({0: batch} for _ in inputs)
    return torch.export.export(generator, inputs, dynamic_shapes=shapes)


def _check_same(original: nn.Module, exported: Any, inputs: tuple[torch.Tensor, ...]) -> None:
    """The exported model gives the original's images for the example inputs (with the same
    random numbers): else the capture fixed something it should not have."""
    device = inputs[0].device
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        want = original(*inputs)
        torch.manual_seed(0)
        got = exported(*inputs)
    if not torch.allclose(want, got, atol=1e-5, rtol=1e-4):
        raise GanlabError(
            f"the exported generator ({type(original).__name__}) does not give the original's "
            f"images (largest difference {float((want - got).abs().max()):.3g}): its forward "
            "probably depends on Python control flow or state that a capture fixes. Try the "
            "other format (torchscript or export)."
        )


def refuse_existing(target: Path) -> None:
    """An export never overwrites a file."""
    if target.exists():
        raise GanlabError(
            f"{target} already exists; export never overwrites a file. Choose another "
            "path, or move the old one away."
        )


def _check_onnx(path: Path) -> None:
    """The ONNX checker's verdict on the written model (the ONNX file's own rules; the
    images are not compared: that would need an ONNX runtime, which ganlab does not use)."""
    # By name: an optional package, which the type checker may not find.
    checker = importlib.import_module("onnx.checker")
    try:
        checker.check_model(str(path), full_check=True)
    except Exception as exc:  # onnx's ValidationError and friends: not the user's mistake
        raise GanlabError(f"the ONNX model written is not valid ONNX: {exc}") from exc


def export_generator(
    generator: nn.Module, path: str | os.PathLike[str], format: str = "export"
) -> Path:
    """Write ``generator`` (from `ganlab.train` or `ganlab.load_generator`) to ``path`` in
    ``format`` (``torchscript``, ``export`` or ``onnx``) and return the path. The model is
    captured in eval mode (the generator is left as it was) and takes ``(latents)``, or
    ``(latents, labels)`` for a conditional generator, with any batch size; it returns images
    in [-1, 1]. An existing file is never overwritten.
    """
    with user_errors():
        target = Path(path)
        if format not in FORMATS:
            raise GanlabError(f"format={format!r}: give one of {', '.join(FORMATS)}.")
        if format == "export" and target.suffix != ".pt2":
            raise GanlabError(
                f"{target}: a torch.export file's name ends in .pt2 (torch.export.load "
                f"insists); give {target.with_suffix('.pt2').name}, say."
            )
        refuse_existing(target)
        if format == "onnx":
            missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
            if missing:
                raise GanlabError(
                    f"ONNX export needs the {' and '.join(missing)} package(s), which are not "
                    "installed: pip install 'ganlab[onnx]' (or export to torchscript or "
                    "export, which need nothing more)."
                )
        inputs = example_inputs(generator)
        with untouched(generator, train=False), staged(target, refuse=refuse_existing) as (at,):
            if format == "onnx":
                names = ["latents", "labels"][: len(inputs)]
                torch.onnx.export(
                    generator,
                    inputs,
                    str(at),
                    input_names=names,
                    output_names=["images"],
                    dynamic_shapes=tuple({0: "batch"} for _ in inputs),
                    external_data=False,  # one file, as the other formats (models < 2 GB)
                    verbose=False,
                )
                _check_onnx(at)
            else:
                exported = _exported(generator, inputs, format)
                runnable = exported.module() if format == "export" else exported
                _check_same(generator, runnable, inputs)
                if format == "export":
                    with warnings.catch_warnings():
                        # torch's note on saving weights that share storage: not a problem
                        warnings.filterwarnings("ignore", "No complete tensor found")
                        torch.export.save(exported, at)
                else:
                    exported.save(str(at))
        return target
