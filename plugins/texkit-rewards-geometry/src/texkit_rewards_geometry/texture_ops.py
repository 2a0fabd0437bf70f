"""Image operations on UV textures shared by the texture-space rewards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["grey", "sobel_uv", "weighted_mean", "colourfulness", "minmax", "erode", "ensure_prepared"]


def grey(texture: torch.Tensor) -> torch.Tensor:
    """``(T, T, 3)`` -> ``(T, T)`` luma (ITU-R BT.601 weights)."""
    return texture[..., 0] * 0.299 + texture[..., 1] * 0.587 + texture[..., 2] * 0.114


def sobel_uv(image: torch.Tensor) -> torch.Tensor:
    """Sobel gradient (divided by 8) of a ``(T, T)`` image, expressed in UV axes.

    Returns:
        ``(T, T, 2)``: (d/du, d/dv) per texel, in units of value per texel. Rows grow downward
        while v grows upward, so the row derivative is negated (:mod:`texkit.uv`).
    """
    # separable Sobel by slicing (central difference, then 1-2-1 smoothing across it): much faster than
    # conv2d's backward on the CPU, same values as the kernels [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8
    padded = F.pad(image[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    d_col = padded[:, 2:] - padded[:, :-2]  # (T + 2, T)
    d_row = padded[2:, :] - padded[:-2, :]  # (T, T + 2)
    grad_col = (d_col[:-2] + 2.0 * d_col[1:-1] + d_col[2:]) / 8.0
    grad_row = (d_row[:, :-2] + 2.0 * d_row[:, 1:-1] + d_row[:, 2:]) / 8.0
    return torch.stack((grad_col, -grad_row), dim=-1)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` weighted by ``weights`` (same shape; all-zero weights give 0)."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def minmax(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Min-max normalise to [0, 1] over texels with positive weight."""
    ref = values[weights > 0]
    if ref.numel() == 0:
        return values * 0
    lo, hi = ref.min(), ref.max()
    return (values - lo) / (hi - lo).clamp_min(1e-8)


def colourfulness(texture: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness: std(rg) + std(yb) + 0.3 (|mean rg| + |mean yb|).

    (The method's variant: the mean term adds the absolute means rather than their norm.)
    """
    r, g, b = texture.unbind(-1)
    rg, yb = r - g, 0.5 * (r + g) - b
    mean_rg, mean_yb = weighted_mean(rg, weights), weighted_mean(yb, weights)
    std_rg = weighted_mean((rg - mean_rg) ** 2, weights).clamp_min(1e-12).sqrt()
    std_yb = weighted_mean((yb - mean_yb) ** 2, weights).clamp_min(1e-12).sqrt()
    return std_rg + std_yb + 0.3 * (mean_rg.abs() + mean_yb.abs())


def erode(coverage: torch.Tensor, radius: int) -> torch.Tensor:
    """Minimum of the coverage over the ``(2 radius + 1)^2`` texel box around each texel.

    A texture-space reward that reads texel neighbourhoods (Sobel stencils, patches, bilinear
    taps) weights its terms by the eroded coverage, so that a term counts only when every texel it
    reads was painted: unpainted texels can then neither dilute nor game the reward.

    Args:
        coverage: ``(H, W, 1)`` or ``(H, W)`` coverage in [0, 1] (gradients are not propagated).
        radius: box half-width in texels (0 returns the input).

    Returns:
        Eroded coverage of the same shape; the texture border is replicated, like the lookups.
    """
    if radius <= 0:
        return coverage.detach()
    squeeze = coverage.dim() == 3
    cov = (coverage[..., 0] if squeeze else coverage).detach()
    padded = F.pad(cov[None, None], (radius, radius, radius, radius), mode="replicate")
    out = -F.max_pool2d(-padded, kernel_size=2 * radius + 1, stride=1)[0, 0]
    return out[..., None] if squeeze else out


def ensure_prepared(reward: Any, ctx: Any) -> None:
    """Run ``reward.prepare`` unless it already ran for this mesh (same object or same content).

    ``prepare`` records ``reward._prepared = (mesh, mesh.content_hash)``; a reward instance reused on
    another mesh is prepared again instead of scoring with the first mesh's pairs or fields.
    """
    from texkit.geometry.cache import GeometryCache

    prepared = getattr(reward, "_prepared", None)
    if prepared is not None and (prepared[0] is ctx.mesh or prepared[1] == ctx.mesh.content_hash):
        reward._prepared = (ctx.mesh, prepared[1])
        return
    reward.prepare(ctx.mesh, ctx.geometry if ctx.geometry is not None else GeometryCache(ctx.mesh, root=False))


def memoised_texel_maps(reward: Any, ctx: Any, build: Callable[[dict[str, torch.Tensor], torch.Tensor], Any]) -> Any:
    """Texel maps derived from :func:`texkit.geometry.precompute.curvature_maps` at the texture's size,
    memoised on ``reward`` for the last (mesh, size, dtype, device) it saw.

    Args:
        reward: the reward instance (the memo lives in its ``_memo`` attribute).
        ctx: the reward context (mesh, texture, geometry cache).
        build: ``build(maps, texture_image)`` -> the reward's maps, on the texture's device and dtype.

    Returns:
        What ``build`` returned for this mesh and texture size.
    """
    from texkit.geometry.cache import GeometryCache
    from texkit.geometry.precompute import curvature_maps

    tex = ctx.texture.image
    cache = ctx.geometry or GeometryCache(ctx.mesh, root=False)
    key = (ctx.mesh.content_hash if ctx.geometry is None else id(cache), ctx.texture.height, tex.dtype, tex.device)
    memo = reward.__dict__.setdefault("_memo", {})
    if key not in memo:
        built = build(curvature_maps(cache, ctx.texture.height), tex)
        memo.clear()
        memo[key] = built
    return memo[key]
