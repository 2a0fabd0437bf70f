"""Samples that share a mesh travel together: textures stacked along channels, renders sample-major.

A batch of B textures of one mesh seen from the same cameras shares every geometric quantity of
a render (UVs, depth, normals, coverage); only the colours differ. So a renderer samples the B
textures in one lookup by stacking them along the channel axis, ``(H, W, 3B)``, and the view
loop back-projects B painted views in one splat the same way. These helpers convert between the
stacked form and the batch form that crosses the plugin contract.

Layout of a batched `RenderOutput` of B samples and N cameras: ``B * N``
entries, sample-major (entry ``b * N + n`` is sample b seen by camera n).
"""

from __future__ import annotations

import torch

__all__ = ["stack_samples", "unstack_samples", "repeat_for_samples", "sample_slice"]


def stack_samples(images: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(B, H, W, C)`` (or ``(H, W, C)``, B = 1) -> ``(H, W, B * C)`` and B."""
    if images.dim() == 3:
        return images, 1
    batch, height, width, channels = images.shape
    return images.permute(1, 2, 0, 3).reshape(height, width, batch * channels), batch


def unstack_samples(stacked: torch.Tensor, batch: int) -> torch.Tensor:
    """``(N, H, W, B * C)`` -> ``(B * N, H, W, C)`` sample-major (the inverse of stacking along channels)."""
    n, height, width, channels = stacked.shape
    per = channels // batch
    return stacked.view(n, height, width, batch, per).permute(3, 0, 1, 2, 4).reshape(batch * n, height, width, per)


def repeat_for_samples(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``(N, ...)`` per-camera data -> ``(B * N, ...)`` sample-major (the same for every sample)."""
    if batch == 1:
        return x
    return x.unsqueeze(0).expand(batch, *x.shape).reshape(batch * x.shape[0], *x.shape[1:])


def sample_slice(sample: int, cameras: int) -> slice:
    """The entries of sample ``sample`` in a sample-major batch of ``cameras`` cameras per sample."""
    return slice(sample * cameras, (sample + 1) * cameras)
