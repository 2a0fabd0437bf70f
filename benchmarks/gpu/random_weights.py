"""Random adapter and ControlNet weights for the gradient checks on the GPU (check_aot_compile.py, check_graphed_view.py)."""

from __future__ import annotations

from typing import Any

import torch


@torch.no_grad()
def randomise_adapter_and_controlnet(gen: Any, seed: int) -> None:
    """Give ``gen``'s adapter random weights (std 0.05) and its ControlNet's all-zero tensors random ones (std 0.02).

    A fresh adapter has B = 0 and a ControlNet built from its config has zero convolutions, so without
    this the adapter gradients would be degenerate and the condition would get no gradient at all.
    """
    g = torch.Generator().manual_seed(seed)
    for p in gen.trainable_parameters():
        p.copy_(0.05 * torch.randn(p.shape, generator=g).to(p.device))
    for p in gen.controlnet.parameters():
        if not p.any():
            p.copy_(0.02 * torch.randn(p.shape, generator=g).to(p.device, p.dtype))
