"""Memory layout of the convolution networks and cuDNN's algorithm search.

cuDNN runs half-precision convolutions in NHWC (channels-last). With PyTorch's default NCHW
tensors each eager convolution converts its input to NHWC and its output back: in an eager H100
profile of the training step (benchmarks/results/training_profile_h100.json) the transposes took
170 ms beside 231 ms of convolution kernels. Keeping the UNet, ControlNet and VAE weights in
``torch.channels_last`` makes the convolutions' outputs channels-last too, so consecutive
convolutions skip the transposes (normalisation layers that want NCHW still convert). Inside a
compiled call Inductor chooses layouts itself, so this mainly concerns the eager parts (the VAE,
and every model when ``compile`` is off).

``torch.backends.cudnn.benchmark`` times cuDNN's algorithms for each new convolution shape once
and keeps the fastest; the shapes of a run are fixed (one resolution, one batch size), so the
search is paid in the first step only. It is switched on with the channels-last layout on CUDA.

The default stays ``"contiguous"`` until the layouts are timed against each other on a GPU
(``bash benchmarks/gpu/run_throughput.sh layout``; docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch

__all__ = ["MEMORY_FORMATS", "apply_memory_format", "resolve_memory_format"]

MemoryFormat = Literal["auto", "channels_last", "contiguous"]
MEMORY_FORMATS: tuple[str, ...] = ("auto", "channels_last", "contiguous")


def resolve_memory_format(choice: str, device: torch.device) -> str:
    """``"channels_last"`` or ``"contiguous"`` for the option ``memory_format`` on ``device``.

    ``"auto"`` is channels-last on CUDA (cuDNN's fp16 convolutions are NHWC) and contiguous on the
    CPU (where the tiny model's convolutions are too small to gain); ``"contiguous"`` (the
    generator's default) is PyTorch's NCHW.

    Raises:
        ValueError: ``choice`` is not one of `MEMORY_FORMATS`.
    """
    if choice not in MEMORY_FORMATS:
        raise ValueError(f"memory_format {choice!r} is not one of {', '.join(MEMORY_FORMATS)}")
    if choice == "auto":
        return "channels_last" if device.type == "cuda" else "contiguous"
    return choice


def apply_memory_format(models: Iterable[torch.nn.Module], choice: str, device: torch.device) -> str:
    """Put the 4-D weights of ``models`` in the resolved layout; channels-last on CUDA also switches cuDNN's search on.

    Only 4-D parameters and buffers change (convolution kernels ``(C_out, C_in, kh, kw)``); linear
    layers, norms and the LoRA matrices keep their layout. Values are unchanged.

    Args:
        models: the networks to convert (UNet, ControlNet, VAE).
        choice: the option ``memory_format`` (`MEMORY_FORMATS`).
        device: where the models run.

    Returns:
        One line for the run record, e.g. ``"channels_last (cuDNN algorithm search on)"``.

    Raises:
        ValueError: ``choice`` is unknown.
    """
    layout = resolve_memory_format(choice, device)
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    for model in models:
        model.to(memory_format=memory_format)
    if device.type != "cuda" or layout != "channels_last":
        return layout
    torch.backends.cudnn.benchmark = True
    return f"{layout} (cuDNN algorithm search on)"
