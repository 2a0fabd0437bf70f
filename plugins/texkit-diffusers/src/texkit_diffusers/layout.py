"""Memory layout of the convolution networks and cuDNN's algorithm search.

cuDNN runs half-precision convolutions in NHWC (channels-last). With PyTorch's default NCHW
tensors each convolution converts its input to NHWC and its output back. Inductor avoids that only
where its layout rule applies, and the rule leaves a network in NCHW when any convolution has at most
half as many output as input channels, as SD's UNet up blocks (960 -> 320) and ``conv_out`` do. So
the compiled denoising call transposes too: in a compiled batch-1 training step on an H100 the
transposes took 1.48 s of 4.36 s of kernel time (benchmarks/results/throughput_h100.json,
``compiled_b1_profile``); in an eager profile, 170 ms beside 231 ms of convolution kernels
(benchmarks/results/training_profile_h100.json).

``"channels_last"`` keeps the UNet, ControlNet and VAE weights in ``torch.channels_last`` (their
convolutions' outputs are then channels-last too, so consecutive convolutions skip the transposes;
normalisation layers that want NCHW still convert in eager mode), has the compiled denoising call
force Inductor's channels-last layout on CUDA (`texkit_diffusers.compiled.inductor_options`), and
switches ``torch.backends.cudnn.benchmark`` on: cuDNN's algorithms are timed once per convolution
shape and the fastest kept; a run's shapes are fixed, so the search is paid in the first step only.

Timed on an H100 (docs/performance.md, calls 10 and 11): the compiled batch-8 training step is 8 %
faster channels-last, the eager batch-1 step unchanged. The default stays ``"contiguous"`` until the
gradients of the forced channels-last compiled graph are checked on CUDA (``FULL_SIZE=1
MEMORY_FORMAT=channels_last bash benchmarks/gpu/run_throughput.sh grads``): on the CPU that Inductor
layout gave wrong gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["MEMORY_FORMATS", "apply_memory_format", "resolve_memory_format"]

MEMORY_FORMATS: tuple[str, ...] = ("auto", "channels_last", "contiguous")
_CUDNN_BENCHMARK_BEFORE: dict[str, bool] = {}  # the user's setting, while channels-last has the search on


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
    if device.type != "cuda":
        return layout
    if layout == "channels_last":
        _CUDNN_BENCHMARK_BEFORE.setdefault("value", torch.backends.cudnn.benchmark)
        torch.backends.cudnn.benchmark = True
        return f"{layout} (cuDNN algorithm search on)"
    if "value" in _CUDNN_BENCHMARK_BEFORE:  # back to contiguous: the search as it was before channels-last
        torch.backends.cudnn.benchmark = _CUDNN_BENCHMARK_BEFORE.pop("value")
    return layout
