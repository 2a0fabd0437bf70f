"""Differentiable back-projection of painted views into a UV texture.

A painted view is scattered into the texture through the per-pixel UVs of its render: every
covered pixel seen more frontally than ``cos_thresh`` adds ``colour * w`` and ``w`` (w = view
cosine) to the four texels around its UV by bilinear splatting; the texture is the ratio of the
accumulated sums (METHOD.md sec. 2, after InTeX, Tang et al. 2024). Small gaps between splatted
pixels are filled mip-map style from coarser levels. Everything is differentiable with respect to
the painted colours, the view cosines and the UVs (hence the camera parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from texkit.types import RenderOutput, Texture
from texkit.uv import uv_to_pixel

__all__ = ["splat_bilinear", "BackProjection", "back_project", "fill_holes", "TextureState"]


def splat_bilinear(uv: torch.Tensor, values: torch.Tensor, weights: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter weighted values at UV points into a ``size x size`` grid with bilinear weights.

    The transpose of bilinear texture sampling: a point at a texel centre lands entirely in that
    texel, a point between centres is shared by the four nearest texels.

    Args:
        uv: ``(P, 2)`` UV positions (v upward, see :mod:`texkit.uv`).
        values: ``(P, C)`` values to scatter.
        weights: ``(P,)`` non-negative weights.
        size: texture size T.

    Returns:
        ``(T, T, C)`` sum of ``value * weight * bilinear`` and ``(T, T, 1)`` sum of ``weight * bilinear``.
    """
    xy = uv_to_pixel(uv, size, size) - 0.5  # texel centres at integer coordinates
    base = torch.floor(xy.detach())
    frac = xy - base
    base = base.long()
    value_sum = values.new_zeros(size * size, values.shape[1])
    weight_sum = values.new_zeros(size * size, 1)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        wx = frac[:, 0] if dx else 1.0 - frac[:, 0]
        wy = frac[:, 1] if dy else 1.0 - frac[:, 1]
        col = base[:, 0] + dx
        row = base[:, 1] + dy
        ok = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        w = (weights * wx * wy)[ok].unsqueeze(-1)
        idx = (row * size + col)[ok]
        value_sum = value_sum.index_add(0, idx, values[ok] * w)
        weight_sum = weight_sum.index_add(0, idx, w)
    return value_sum.view(size, size, -1), weight_sum.view(size, size, 1)


@dataclass
class BackProjection:
    """Sums contributed by painted views.

    Attributes:
        color_sum: ``(T, T, 3)`` sum of colour * weight.
        weight_sum: ``(T, T, 1)`` sum of weights.
        viewcos_max: ``(T, T, 1)`` largest view cosine that reached each texel (no gradient).
    """

    color_sum: torch.Tensor
    weight_sum: torch.Tensor
    viewcos_max: torch.Tensor


def back_project(render: RenderOutput, image: torch.Tensor, texture_size: int, cos_thresh: float = 0.0) -> BackProjection:
    """Back-project painted views into UV space.

    Args:
        render: the renders the views were painted over (uv, view_cos and face_id are used).
        image: ``(N, H, W, 3)`` painted views in [0, 1], aligned with ``render``.
        texture_size: T.
        cos_thresh: only pixels with view cosine above this contribute.

    Returns:
        The splatted sums (differentiable in ``image``, ``render.uv`` and ``render.view_cos``).
    """
    keep = (render.face_id >= 0) & (render.view_cos[..., 0] > cos_thresh)
    uv = render.uv[keep]
    weight = render.view_cos[..., 0][keep]
    color_sum, weight_sum = splat_bilinear(uv, image[keep], weight, texture_size)
    viewcos_max = torch.zeros(texture_size * texture_size, dtype=image.dtype, device=image.device)
    with torch.no_grad():
        nearest = uv_to_pixel(uv, texture_size, texture_size).floor().long()
        nearest = nearest.clamp(0, texture_size - 1)
        viewcos_max.scatter_reduce_(0, nearest[:, 1] * texture_size + nearest[:, 0], weight.detach(), reduce="amax")
    return BackProjection(color_sum, weight_sum, viewcos_max.view(texture_size, texture_size, 1))


def fill_holes(color_sum: torch.Tensor, weight_sum: torch.Tensor, min_level: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise accumulated sums and fill empty texels from coarser mip levels.

    The sums are 2x2 sum-pooled down to ``min_level`` texels; from the coarsest level up, a texel
    with no weight takes the (bilinearly upsampled) colour of the level above. Texels empty even at
    ``min_level`` stay empty (coverage 0).

    Args:
        color_sum: ``(T, T, C)`` weighted colour sums.
        weight_sum: ``(T, T, 1)`` weight sums.
        min_level: size of the coarsest level used (>= 1).

    Returns:
        ``(T, T, C)`` colours in the range of the inputs and ``(T, T, 1)`` coverage in {0, 1}.
    """
    levels = [(color_sum.permute(2, 0, 1)[None], weight_sum.permute(2, 0, 1)[None])]
    while levels[-1][0].shape[-1] // 2 >= max(min_level, 1) and levels[-1][0].shape[-1] % 2 == 0:
        c, w = levels[-1]
        levels.append((F.avg_pool2d(c, 2) * 4, F.avg_pool2d(w, 2) * 4))
    color = None
    covered = None
    for c, w in reversed(levels):
        has = w > 1e-8
        own = c / w.clamp_min(1e-8)
        if color is None:
            color, covered = own * has, has.to(c.dtype)
        else:
            up = F.interpolate(color, size=c.shape[-2:], mode="bilinear", align_corners=False)
            up_cov = F.interpolate(covered, size=c.shape[-2:], mode="nearest")
            color = torch.where(has, own, up)
            covered = torch.where(has, torch.ones_like(up_cov), up_cov)
    return color[0].permute(1, 2, 0), covered[0].permute(1, 2, 0)


@dataclass
class TextureState:
    """The texture being painted by the view loop (immutable: :meth:`add` returns a new state).

    Attributes:
        color_sum: ``(T, T, 3)`` accumulated colour * weight.
        weight_sum: ``(T, T, 1)`` accumulated weight.
        viewcos_cache: ``(T, T, 1)`` best view cosine seen so far per texel (no gradient).
    """

    color_sum: torch.Tensor
    weight_sum: torch.Tensor
    viewcos_cache: torch.Tensor

    @classmethod
    def empty(cls, size: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> "TextureState":
        """A texture nobody painted yet."""
        zeros = torch.zeros(size, size, 1, device=device, dtype=dtype)
        return cls(zeros.expand(size, size, 3).clone(), zeros.clone(), zeros.clone())

    @property
    def size(self) -> int:
        """T."""
        return int(self.color_sum.shape[0])

    def add(self, projection: BackProjection) -> "TextureState":
        """The state after adding one back-projection."""
        return TextureState(
            self.color_sum + projection.color_sum,
            self.weight_sum + projection.weight_sum,
            torch.maximum(self.viewcos_cache, projection.viewcos_max),
        )

    def texture(self, min_level: int = 128, background: float = 0.5) -> Texture:
        """The current texture: normalised, holes filled, unpainted texels set to ``background``."""
        color, coverage = fill_holes(self.color_sum, self.weight_sum, min_level)
        image = color * coverage + background * (1.0 - coverage)
        return Texture(image, coverage)
