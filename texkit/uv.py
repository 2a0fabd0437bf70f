"""The one place that fixes texkit's UV convention.

Texture coordinates follow OBJ/OpenGL: ``u`` grows to the right, ``v`` grows *upward*, both in
[0, 1]. Texture images are stored like every image: an ``(H, W, C)`` tensor whose row 0 is the
*top* of the picture. Texel ``(row, col)`` therefore has its centre at

    u = (col + 0.5) / W,    v = 1 - (row + 0.5) / H.

Every renderer, back-projection and texture-space reward converts through the functions below,
so that no component samples a vertically mirrored texel (a bug of the method's reference code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["uv_to_grid", "uv_to_pixel", "pixel_to_uv", "texel_centers_uv", "sample_texture"]


def uv_to_grid(uv: torch.Tensor) -> torch.Tensor:
    """Map UVs to the normalised coordinates of ``torch.nn.functional.grid_sample``.

    Args:
        uv: ``(..., 2)`` texture coordinates, v upward.

    Returns:
        ``(..., 2)`` coordinates in [-1, 1]: x = 2u - 1, y = 1 - 2v (y grows downward, with rows).
    """
    return torch.stack((uv[..., 0] * 2.0 - 1.0, 1.0 - uv[..., 1] * 2.0), dim=-1)


def uv_to_pixel(uv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Map UVs to continuous pixel coordinates (x = column, y = row), texel centres at k + 0.5.

    Args:
        uv: ``(..., 2)`` texture coordinates.
        height: texture size in texels.
        width: texture size in texels.

    Returns:
        ``(..., 2)`` as (x, y) with x in [0, W], y in [0, H] (y = 0 is the top edge).
    """
    return torch.stack((uv[..., 0] * width, (1.0 - uv[..., 1]) * height), dim=-1)


def pixel_to_uv(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of `uv_to_pixel`: ``(..., 2)`` pixel (x, y) -> ``(..., 2)`` UV."""
    return torch.stack((xy[..., 0] / width, 1.0 - xy[..., 1] / height), dim=-1)


def texel_centers_uv(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """UV of every texel centre.

    Returns:
        ``(H, W, 2)`` tensor; entry ``[row, col]`` is ((col + 0.5) / W, 1 - (row + 0.5) / H).
    """
    rows = torch.arange(height, device=device, dtype=torch.float32)
    cols = torch.arange(width, device=device, dtype=torch.float32)
    yy, xx = torch.meshgrid(rows, cols, indexing="ij")
    return pixel_to_uv(torch.stack((xx + 0.5, yy + 0.5), dim=-1), height, width)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Differentiable lookup of a texture at UV points (bilinear by default, edges clamped).

    Args:
        texture: ``(H, W, C)`` or batched ``(B, H, W, C)`` texture, row 0 at the top.
        uv: ``(..., 2)`` UVs for an unbatched texture, or ``(B, ..., 2)`` for a batched one.
        mode: ``"bilinear"`` or ``"nearest"``.

    Returns:
        ``(..., C)`` (or ``(B, ..., C)``) sampled values. Differentiable with respect to both
        the texture and the UVs.
    """
    batched = texture.dim() == 4
    tex = texture if batched else texture.unsqueeze(0)
    pts = uv if batched else uv.unsqueeze(0)
    batch = tex.shape[0]
    lead = pts.shape[1:-1]
    grid = uv_to_grid(pts.reshape(batch, 1, -1, 2)).to(tex.dtype)
    out = F.grid_sample(tex.permute(0, 3, 1, 2), grid, mode=mode, padding_mode="border", align_corners=False)
    out = out[:, :, 0, :].permute(0, 2, 1).reshape(batch, *lead, tex.shape[-1])
    return out if batched else out[0]
