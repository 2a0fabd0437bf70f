"""Stand-in UNet and ControlNet functions for the tests of the denoising call.

`texkit_diffusers.precompiled.denoise` calls the ControlNet, then the UNet, with diffusers' keyword
arguments; these plain functions take the same arguments, so the tests of `texkit_diffusers.compiled`
and `texkit_diffusers.precompiled` need no diffusers model and compile in seconds where they compile.
The ``linear`` pair is exact to compare by hand; the ``smooth`` pair has non-constant gradients.

The conftest puts this folder on ``sys.path`` for the test modules; a test that runs a script in a new
process gives it `env_with_standins`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def linear_controlnet(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
    """Residuals ``[x * scale + condition]`` and a mid residual ``mean(embeds) + t``."""
    return [x * conditioning_scale + controlnet_cond], encoder_hidden_states.mean() + t


def linear_unet(x, t, encoder_hidden_states, down_block_additional_residuals, mid_block_additional_residual, return_dict):
    """``(x + down residual + mid residual,)``."""
    return (x + down_block_additional_residuals[0] + mid_block_additional_residual,)


def smooth_controlnet(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
    """Residuals ``[tanh(x * scale + condition)]`` and a mid residual ``mean(embeds) + t``."""
    return [torch.tanh(x * conditioning_scale + controlnet_cond)], encoder_hidden_states.mean() + t


def smooth_unet(x, t, encoder_hidden_states, down_block_additional_residuals, mid_block_additional_residual, return_dict):
    """``(sigmoid(x + down residual) * mid residual,)``."""
    return (torch.sigmoid(x + down_block_additional_residuals[0]) * mid_block_additional_residual,)


def standin_inputs(batch: int = 2) -> tuple:
    """``(latents (B, 4, 8, 8), t, embeds (B, 5, 6), condition (B, 4, 8, 8), scale 0.5)``, seeded."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 4, 8, 8, generator=g), torch.tensor(3.0), torch.randn(batch, 5, 6, generator=g), torch.randn(batch, 4, 8, 8, generator=g), 0.5


def env_with_standins(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this folder first on ``PYTHONPATH``, for a script that imports this module in a new process."""
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)}
