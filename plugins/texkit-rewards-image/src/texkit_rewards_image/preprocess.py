"""Differentiable image preparation for CLIP: alpha compositing, resizing and normalisation.

Everything here is plain torch arithmetic, so gradients flow from the CLIP input back to the
renders (and through them to the texture and the cameras).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CLIP_MEAN", "CLIP_STD", "composite_over_background", "clip_pixel_values"]

#: Per-channel mean of the OpenAI CLIP image preprocessing (RGB, values in [0, 1]).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
#: Per-channel standard deviation of the OpenAI CLIP image preprocessing.
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def composite_over_background(
    rgb: torch.Tensor, alpha: torch.Tensor | None, background: tuple[float, float, float]
) -> torch.Tensor:
    """Put premultiplied renders over a flat background colour.

    Renderers return colours premultiplied by coverage (background pixels are 0 and silhouette
    pixels are blended with 0), so the composite is ``rgb + background * (1 - alpha)``.

    Args:
        rgb: ``(N, H, W, 3)`` premultiplied colours in [0, 1].
        alpha: ``(N, H, W, 1)`` coverage in [0, 1], or None for opaque images.
        background: RGB colour in [0, 1] behind the object.

    Returns:
        ``(N, H, W, 3)`` opaque images in [0, 1].
    """
    if alpha is None:
        return rgb
    bg = torch.tensor(background, dtype=rgb.dtype, device=rgb.device)
    return rgb + bg * (1.0 - alpha)


def clip_pixel_values(images: torch.Tensor, size: int = 224) -> torch.Tensor:
    """Turn channels-last images into CLIP ``pixel_values``.

    Square images are resized to ``size x size`` with antialiased bicubic interpolation (CLIP's
    processor resizes the short side with bicubic filtering and centre-crops; for square renders
    the crop is the identity), clamped to [0, 1] like the processor's 8-bit image, then normalised
    with `CLIP_MEAN` and `CLIP_STD`. Non-square images are centre-cropped to a square
    first.

    Args:
        images: ``(N, H, W, 3)`` in [0, 1].
        size: CLIP input resolution (224 for ViT-L/14).

    Returns:
        ``(N, 3, size, size)`` normalised pixel values (roughly in [-1.8, 2.2]).
    """
    x = images.permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        x = x[..., top : top + side, left : left + side]
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = x.clamp(0.0, 1.0)
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
