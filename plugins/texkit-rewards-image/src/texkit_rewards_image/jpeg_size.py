"""JPEG-encoded size of images, the quantity behind DDPO's compressibility rewards.

Black et al., "Training Diffusion Models with Reinforcement Learning" (DDPO, 2023), score an image
by the size of its JPEG encoding (quality 95, in kilobytes): smaller files mean simpler, flatter
images. The encoding is not differentiable, so these rewards are for ``texkit score`` only; the
trainer refuses rewards whose ``differentiable`` is False with a `texkit.RewardError`.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
import pydantic
import torch
from pydantic import Field

import texkit

__all__ = ["jpeg_size_kb", "JpegParams", "JpegSizeReward"]


def jpeg_size_kb(images: torch.Tensor, quality: int = 95) -> torch.Tensor:
    """Size in kilobytes (1 kB = 1000 bytes) of each image encoded as JPEG with Pillow.

    Args:
        images: ``(H, W, 3)`` or ``(N, H, W, 3)`` in [0, 1]; quantised to 8 bits by rounding.
        quality: JPEG quality, 1-95.

    Returns:
        ``(N,)`` float32 sizes on the images' device (N = 1 for a single image); no gradient.
    """
    from PIL import Image

    batch = images.detach()
    if batch.dim() == 3:
        batch = batch.unsqueeze(0)
    arrays = (batch.clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    sizes = []
    for array in arrays:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array[..., :3])).save(buffer, format="JPEG", quality=quality)
        sizes.append(buffer.tell() / 1000.0)
    return torch.tensor(sizes, dtype=torch.float32, device=images.device)


class JpegParams(pydantic.BaseModel):
    """Parameters of the JPEG rewards."""

    model_config = pydantic.ConfigDict(extra="forbid")
    source: Literal["texture", "renders"] = Field(
        "texture", description="Encode the UV texture, or each reward view (mean size over views)."
    )
    quality: int = Field(95, ge=1, le=95, description="JPEG quality (DDPO uses 95).")
    background: tuple[float, float, float] = Field(
        (1.0, 1.0, 1.0), description="RGB in [0,1] behind the object when source='renders'."
    )


class JpegSizeReward(texkit.Reward):
    """Shared body of the two JPEG rewards: ``value = sign * mean JPEG size in kB``.

    Subclasses set ``name``, ``description`` and `sign` (-1 rewards small files, +1 large ones).
    """

    differentiable = False
    Params = JpegParams
    #: +1 rewards large files (incompressibility), -1 small ones (compressibility).
    sign: float = 1.0

    def __init__(self, params: "pydantic.BaseModel | dict | None" = None, **overrides: object) -> None:
        """Validate parameters; renders are needed only when ``source='renders'``."""
        super().__init__(params, **overrides)
        self.needs_renders = self.params.source == "renders"

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Encode the texture (or the renders) and return the signed mean size in kB.

        Raises:
            RewardError: ``source='renders'`` but ``ctx.renders`` is missing.
        """
        if self.params.source == "texture":
            images = ctx.texture.image[..., :3]
        else:
            if ctx.renders is None:
                raise texkit.RewardError(f"reward '{self.name}' with source='renders' needs ctx.renders; render first")
            bg = torch.tensor(self.params.background, dtype=ctx.renders.rgb.dtype, device=ctx.renders.rgb.device)
            images = ctx.renders.rgb + bg * (1.0 - ctx.renders.alpha)
        sizes = jpeg_size_kb(images, self.params.quality)
        size = sizes.mean()
        return texkit.RewardOutput(value=self.sign * size, metrics={"jpeg_kb": float(size)})
