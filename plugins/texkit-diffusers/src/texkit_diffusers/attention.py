"""Attention backend chosen at run time: xformers when its kernels really run here, else PyTorch SDPA.

xformers wheels are built against one torch version; on another, ``import xformers`` can succeed
while its CUDA operators are missing ("No operator found for memory_efficient_attention_forward").
So the check runs one tiny attention call on the target device, and any failure falls back to
SDPA. The choice is logged and returned so runs can record which backend actually ran.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

__all__ = ["xformers_available", "select_attention_backend", "last_attention_reason"]

_LAST_REASON = ""


def last_attention_reason() -> str:
    """Why the last `select_attention_backend` call chose what it chose (for run records)."""
    return _LAST_REASON


log = logging.getLogger("texkit.diffusers")


def xformers_available(device: torch.device) -> tuple[bool, str]:
    """Whether xformers memory-efficient attention runs on ``device``; with the reason if not."""
    if device.type != "cuda":
        return False, "xformers kernels need a CUDA device"
    try:
        import xformers.ops as xops
    except Exception as err:  # not installed, or built for another torch
        return False, f"xformers unavailable ({type(err).__name__}: {err})"
    try:
        with torch.enable_grad():  # training needs the backward kernel too
            q = torch.randn(1, 8, 1, 8, device=device, dtype=torch.float16, requires_grad=True)
            xops.memory_efficient_attention(q, q, q).float().sum().backward()
    except Exception as err:
        return False, f"xformers kernels do not run here ({type(err).__name__}: {str(err).splitlines()[0]})"
    return True, "ok"


def select_attention_backend(models: list[Any], device: torch.device, prefer: str = "auto") -> str:
    """Set the attention processors of diffusers ``models`` and return ``"xformers"`` or ``"sdpa"``.

    Args:
        models: UNet / ControlNet modules (anything with ``enable_xformers_memory_efficient_attention``).
        device: where they run.
        prefer: ``"auto"`` (xformers if it works), ``"xformers"`` (same, but warns on fallback) or ``"sdpa"``.

    Returns:
        The backend that will run; `last_attention_reason` says why.

    Raises:
        ConfigError: ``prefer`` is not one of the three names.
    """
    global _LAST_REASON
    if prefer not in ("auto", "xformers", "sdpa"):
        from texkit import ConfigError

        raise ConfigError(f"generator attention '{prefer}' is not one of auto, xformers, sdpa")
    if prefer != "sdpa":
        ok, reason = xformers_available(device)
        if ok:
            try:
                for model in models:
                    model.enable_xformers_memory_efficient_attention()
                log.info("attention backend: xformers")
                _LAST_REASON = "xformers kernels ran a test call on this device"
                return "xformers"
            except Exception as err:
                reason = f"enabling xformers failed ({type(err).__name__}: {err})"
        level = logging.WARNING if prefer == "xformers" else logging.INFO
        log.log(level, "attention backend: sdpa (%s)", reason)
        _LAST_REASON = reason
    else:
        log.info("attention backend: sdpa (requested)")
        _LAST_REASON = "sdpa requested"
    from diffusers.models.attention_processor import AttnProcessor2_0

    for model in models:
        model.set_attn_processor(AttnProcessor2_0())
    return "sdpa"
