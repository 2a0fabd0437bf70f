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

from texkit.errors import TexkitError
from texkit.types import RenderOutput, Texture
from texkit.uv import uv_to_pixel

__all__ = ["TexturingError", "splat_bilinear", "BackProjection", "back_project", "fill_holes", "TextureState"]


class TexturingError(TexkitError):
    """A painted image or texture state that does not fit the render or texture it is combined with."""


def splat_bilinear(uv: torch.Tensor, values: torch.Tensor, weights: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter weighted values at UV points into a ``size x size`` grid with bilinear weights.

    The transpose of bilinear texture sampling: a point at a texel centre lands entirely in that
    texel, a point between centres is shared by the four nearest texels.

    Args:
        uv: ``(P, 2)`` UV positions (v upward, see `texkit.uv`).
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


def back_project(
    render: RenderOutput,
    image: torch.Tensor,
    texture_size: int,
    cos_thresh: float = 0.0,
    cos_power: float = 1.0,
) -> BackProjection:
    """Back-project painted views into UV space.

    Args:
        render: the renders the views were painted over (uv, view_cos and face_id are used).
        image: ``(N, H, W, 3)`` painted views in [0, 1], aligned with ``render``.
        texture_size: T.
        cos_thresh: only pixels with view cosine above this contribute (METHOD.md ref: 0).
        cos_power: the splatting weight is ``view_cos ** cos_power`` (1 = the view cosine itself;
            larger values favour frontal views more strongly).

    Returns:
        The splatted sums (differentiable in ``image``, ``render.uv`` and ``render.view_cos``).

    Raises:
        TexturingError: when ``image`` does not match the render's ``(N, H, W)``.
    """
    if image.shape[:3] != render.face_id.shape or image.dim() != 4:
        raise TexturingError(
            f"painted image of shape {tuple(image.shape)} does not match the render {tuple(render.face_id.shape)}; "
            "pass one (N, H, W, C) image per rendered view at the render's resolution"
        )
    keep = (render.face_id >= 0) & (render.view_cos[..., 0] > cos_thresh)
    uv = render.uv[keep]
    cos = render.view_cos[..., 0][keep]
    weight = cos if cos_power == 1.0 else cos.clamp_min(1e-12) ** cos_power
    color_sum, weight_sum = splat_bilinear(uv, image[keep], weight, texture_size)
    viewcos_max = torch.zeros(texture_size * texture_size, dtype=image.dtype, device=image.device)
    with torch.no_grad():
        nearest = uv_to_pixel(uv, texture_size, texture_size).floor().long()
        nearest = nearest.clamp(0, texture_size - 1)
        viewcos_max.scatter_reduce_(0, nearest[:, 1] * texture_size + nearest[:, 0], cos.detach(), reduce="amax")
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
    """The texture being painted by the view loop (immutable: `accumulate` returns a new state).

    Typical loop (the trimap of METHOD.md sec. 2 reads `paint_count` and
    `viewcos_map` through the render's per-pixel UVs, e.g. with
    `texkit.uv.sample_texture`)::

        state = TextureState.empty(1024)
        for view in views:
            render = renderer.render(mesh, state.texture(), view_cameras, 1024)
            painted = generate(render, ...)  # (1, H, W, 3)
            state = state.accumulate(back_project(render, painted, state.size))

    A batch of B samples painted on one mesh from the same cameras shares the weights and the
    view-cosine cache (they depend on geometry only); their colours are stacked along channels.

    Attributes:
        color_sum: ``(T, T, 3B)`` accumulated colour * weight (sample b in channels 3b..3b+2).
        weight_sum: ``(T, T, 1)`` accumulated weight (the raw paint count, >= 0).
        viewcos_cache: ``(T, T, 1)`` best view cosine seen so far per texel, in [0, 1] (no gradient);
            a value above 1 locks a texel: no view cosine exceeds it, so the trimap keeps it in every
            view (an initial texture in ``"inpaint"`` mode, `texkit.initial_texture`).
    """

    color_sum: torch.Tensor
    weight_sum: torch.Tensor
    viewcos_cache: torch.Tensor

    @classmethod
    def empty(cls, size: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32, batch: int = 1) -> "TextureState":
        """A ``size x size`` texture (``batch`` of them) nobody painted yet."""
        zeros = torch.zeros(size, size, 1, device=device, dtype=dtype)
        return cls(zeros.expand(size, size, 3 * batch).clone(), zeros.clone(), zeros.clone())

    @classmethod
    def from_texture(cls, image: torch.Tensor, weight: torch.Tensor, viewcos_cache: torch.Tensor, batch: int = 1) -> "TextureState":
        """A state that already holds a texture (the same for each of ``batch`` samples).

        Args:
            image: ``(T, T, 3)`` colours in [0, 1].
            weight: ``(T, T, 1)`` splatting weight the texture counts for (0: unpainted texel).
            viewcos_cache: ``(T, T, 1)`` view cosine the texture counts as seen from (above 1: locked).
            batch: B.

        Returns:
            The state with ``color_sum = image * weight`` repeated over B, ``(T, T, 3B)``; where the
            weight is positive, `texture` returns ``image``.
        """
        if image.shape[:2] != weight.shape[:2] or image.shape[:2] != viewcos_cache.shape[:2] or image.shape[-1] != 3:
            raise TexturingError(
                f"texture {tuple(image.shape)}, weight {tuple(weight.shape)} and cache {tuple(viewcos_cache.shape)} do not "
                "fit one state; pass (T, T, 3), (T, T, 1) and (T, T, 1) tensors"
            )
        return cls((image * weight).repeat(1, 1, batch), weight.clone(), viewcos_cache.clone())

    @property
    def size(self) -> int:
        """T."""
        return int(self.color_sum.shape[0])

    @property
    def batch(self) -> int:
        """B, the number of samples painted together."""
        return int(self.color_sum.shape[-1]) // 3

    def accumulate(self, projection: BackProjection) -> "TextureState":
        """The state after adding one back-projection (differentiable in its sums).

        Raises:
            TexturingError: when the projection was made for another texture size.
        """
        if projection.color_sum.shape[:2] != self.color_sum.shape[:2]:
            raise TexturingError(
                f"back-projection of size {projection.color_sum.shape[0]} added to a texture of size {self.size}; "
                "call back_project with texture_size=state.size"
            )
        return TextureState(
            self.color_sum + projection.color_sum,
            self.weight_sum + projection.weight_sum,
            torch.maximum(self.viewcos_cache, projection.viewcos_max),
        )

    def texture(self, min_level: int = 128, background: float = 0.5) -> Texture:
        """The current texture: normalised, holes filled, never-painted texels set to ``background``.

        Args:
            min_level: coarsest mip level used by `fill_holes`.
            background: grey level of never-painted texels.

        Returns:
            `Texture` with ``(T, T, 3)`` image and ``(T, T, 1)`` coverage in
            {0, 1}; for a batch, ``(B, T, T, 3)`` and ``(B, T, T, 1)``.
        """
        color, coverage = fill_holes(self.color_sum, self.weight_sum, min_level)
        image = color * coverage + background * (1.0 - coverage)
        if self.batch == 1:
            return Texture(image, coverage)
        size = self.size
        images = image.view(size, size, self.batch, 3).permute(2, 0, 1, 3)
        return Texture(images, coverage.unsqueeze(0).expand(self.batch, size, size, 1))

    def paint_count(self, min_level: int = 128) -> torch.Tensor:
        """``(T, T, 1)`` accumulated splatting weight per texel, holes filled from coarser levels.

        0 where no view painted, about 1 per frontal view elsewhere; differentiable in the weights.
        The trimap's "generate" region is ``1 - sigmoid(k (count - 0.1))`` of this map rendered.
        """
        painted = (self.weight_sum > 0).to(self.weight_sum.dtype)
        count, _ = fill_holes(self.weight_sum, painted, min_level)
        return count

    def viewcos_map(self, min_level: int = 128) -> torch.Tensor:
        """``(T, T, 1)`` best view cosine seen so far, holes filled from coarser levels, in [0, 1]."""
        painted = (self.viewcos_cache > 0).to(self.viewcos_cache.dtype)
        cache, _ = fill_holes(self.viewcos_cache, painted, min_level)
        return cache
