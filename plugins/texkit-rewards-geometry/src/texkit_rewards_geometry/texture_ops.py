"""Image operations on UV textures shared by the texture-space rewards."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F

__all__ = [
    "grey",
    "sobel_uv",
    "gradient_magnitude",
    "weighted_mean",
    "colourfulness",
    "minmax",
    "extremes_held_constant",
    "erode",
    "ensure_prepared",
    "reference_lookup_uv",
    "splat_points",
]

#: Grey-level weights (R, G, B): ITU-R BT.601 luma, and the reference code's (torchvision's
#: ``rgb_to_grayscale``: 0.2989, 0.587, 0.114, which sum to 0.9999).
GREY_WEIGHTS = {"bt601": (0.299, 0.587, 0.114), "reference": (0.2989, 0.587, 0.114)}


def grey(texture: torch.Tensor, weights: Literal["bt601", "reference"] = "bt601") -> torch.Tensor:
    """``(T, T, 3)`` -> ``(T, T)`` grey level, ``weights`` a key of `GREY_WEIGHTS`."""
    wr, wg, wb = GREY_WEIGHTS[weights]
    return texture[..., 0] * wr + texture[..., 1] * wg + texture[..., 2] * wb


def sobel_uv(image: torch.Tensor, padding: Literal["replicate", "zeros"] = "replicate") -> torch.Tensor:
    """Sobel gradient (divided by 8) of a ``(T, T)`` image, expressed in UV axes.

    Args:
        image: ``(H, W)`` image, row 0 at the top.
        padding: the value of the texels outside the image: ``"replicate"`` the nearest border
            texel (no edge at the border), ``"zeros"`` 0 (the reference code's ``conv2d(padding=1)``:
            the border reads as an edge to black).

    Returns:
        ``(H, W, 2)``: (d/du, d/dv) per texel, in units of value per texel. Rows grow downward
        while v grows upward, so the row derivative is negated (`texkit.uv`).
    """
    # separable Sobel by slicing (central difference, then 1-2-1 smoothing across it): much faster than
    # conv2d's backward on the CPU, same values as the kernels [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8
    mode = "replicate" if padding == "replicate" else "constant"
    padded = F.pad(image[None, None], (1, 1, 1, 1), mode=mode)[0, 0]
    d_col = padded[:, 2:] - padded[:, :-2]  # (T + 2, T)
    d_row = padded[2:, :] - padded[:-2, :]  # (T, T + 2)
    grad_col = (d_col[:-2] + 2.0 * d_col[1:-1] + d_col[2:]) / 8.0
    grad_row = (d_row[:, :-2] + 2.0 * d_row[:, 1:-1] + d_row[:, 2:]) / 8.0
    return torch.stack((grad_col, -grad_row), dim=-1)


def gradient_magnitude(grad: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Smoothed length sqrt(|grad|^2 + epsilon^2) of ``(..., 2)`` vectors -> ``(...)``.

    Differentiable everywhere for epsilon > 0 (at grad = 0 the gradient is 0). The reference code's
    sqrt(gx^2 + gy^2 + 1e-6) on Sobel/8 gradients is epsilon = 1e-3.
    """
    return ((grad**2).sum(-1) + epsilon * epsilon).sqrt()


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` weighted by ``weights`` (same shape; all-zero weights give 0)."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


_HELD_EXTREMES = [False]


@contextlib.contextmanager
def extremes_held_constant() -> Iterator[None]:
    """Within this block `minmax` treats its min and max as constants (no gradient).

    A diagnostic of where the gradient of a min-max normalised reward flows: with the extremes
    held constant only the dense, per-texel part remains (the reference's feature-emphasis
    gradient sends > 99 % of its norm through the four extreme texels; ``docs/rewards``).
    """
    _HELD_EXTREMES[0] = True
    try:
        yield
    finally:
        _HELD_EXTREMES[0] = False


def minmax(values: torch.Tensor, weights: torch.Tensor, style: Literal["clamp", "add"] = "clamp") -> torch.Tensor:
    """Min-max normalise to [0, 1] over texels with positive weight.

    Args:
        values: ``(H, W)`` values.
        weights: ``(H, W)``; the min and max run over the texels with positive weight.
        style: ``"clamp"``: (x - min) / max(max - min, 1e-8); ``"add"``: (x - min) / (max - min + 1e-8)
            (the reference code's).

    Returns:
        ``(H, W)`` normalised values (0 everywhere when no weight is positive). The gradient reaching
        the min (max) is split equally among tied texels (``amin``/``amax``).
    """
    ref = values[weights > 0]
    if ref.numel() == 0:
        return values * 0
    lo, hi = ref.amin(), ref.amax()
    if _HELD_EXTREMES[0]:
        lo, hi = lo.detach(), hi.detach()
    span = (hi - lo).clamp_min(1e-8) if style == "clamp" else hi - lo + 1e-8
    return (values - lo) / span


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


def reference_lookup_uv(uv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Where the reference code reads a UV point, in texkit's UV convention (quirks Q1 and Q2).

    The reference reads (u, v) at column u (W - 1), row v (H - 1) (texel centres at the ends of
    [0, 1], and v growing with the row: the vertically mirrored texel for OBJ UVs). In texkit's
    convention (`texkit.uv`) that is u' = (u (W - 1) + 0.5) / W, v' = 1 - (v (H - 1) + 0.5) / H.

    Args:
        uv: ``(..., 2)`` UVs as stored in the mesh (OBJ ``vt``, v up).
        height: texture height in texels.
        width: texture width in texels.

    Returns:
        ``(..., 2)`` UVs that `texkit.uv.sample_texture` reads at the reference's texel.
    """
    u = (uv[..., 0] * (width - 1) + 0.5) / width
    v = 1.0 - (uv[..., 1] * (height - 1) + 0.5) / height
    return torch.stack((u, v), dim=-1)


def splat_points(
    uv: torch.Tensor, colors: torch.Tensor, height: int, width: int, radius: int = 0, background: float = 1.0
) -> torch.Tensor:
    """Paint UV points into a texture: each point sets the texels within ``radius`` of its texel to its colour.

    For the rewards' ``visualize`` pictures (points of a direction field, mirror pairs). Texel
    convention of `texkit.types.Texture`: column ``floor(u W)``, row ``floor((1 - v) H)`` (row 0 is
    v = 1), clamped to the image (a point on the border paints the texels within ``radius`` of the border
    texel); where points' squares overlap, the later point (larger index) wins.

    Args:
        uv: ``(N, 2)`` UV points in [0, 1].
        colors: ``(N, 3)`` colours in [0, 1].
        height: texture rows.
        width: texture columns.
        radius: half-width in texels of the square each point paints (0: one texel).
        background: grey level of the texels no point paints.

    Returns:
        ``(height, width, 3)`` image.
    """
    image = torch.full((height * width, 3), float(background), dtype=colors.dtype, device=colors.device)
    col = (uv[:, 0] * width).floor().long().clamp(0, width - 1)
    row = ((1.0 - uv[:, 1]) * height).floor().long().clamp(0, height - 1)
    offsets = torch.arange(-radius, radius + 1, device=colors.device)
    rows = (row[:, None, None] + offsets[None, :, None]).clamp(0, height - 1)  # (N, K, 1)
    cols = (col[:, None, None] + offsets[None, None, :]).clamp(0, width - 1)  # (N, 1, K)
    texels = (rows * width + cols).reshape(-1)
    point = torch.arange(len(uv), device=colors.device).repeat_interleave(len(offsets) ** 2)
    # the last point (largest index) painting a texel wins it
    winner = torch.full((height * width,), -1, dtype=torch.long, device=colors.device).scatter_reduce(0, texels, point, "amax")
    painted = winner >= 0
    image[painted] = colors[winner[painted]]
    return image.reshape(height, width, 3)


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
    from texkit import GeometryCache

    prepared = getattr(reward, "_prepared", None)
    if prepared is not None and (prepared[0] is ctx.mesh or prepared[1] == ctx.mesh.content_hash):
        reward._prepared = (ctx.mesh, prepared[1])
        return
    reward.prepare(ctx.mesh, ctx.geometry if ctx.geometry is not None else GeometryCache(ctx.mesh, root=False))


def memoised_texel_maps(reward: Any, ctx: Any, build: Callable[[dict[str, torch.Tensor], torch.Tensor], Any]) -> Any:
    """Texel maps derived from `texkit.geometry.precompute.curvature_maps` at the texture's size,
    memoised on ``reward`` for the last (mesh, size, dtype, device) it saw.

    Args:
        reward: the reward instance (the memo lives in its ``_memo`` attribute).
        ctx: the reward context (mesh, texture, geometry cache).
        build: ``build(maps, texture_image)`` -> the reward's maps, on the texture's device and dtype.

    Returns:
        What ``build`` returned for this mesh and texture size.
    """
    from texkit import GeometryCache
    from texkit.geometry import curvature_maps

    tex = ctx.texture.image
    cache = ctx.geometry or GeometryCache(ctx.mesh, root=False)
    key = (ctx.mesh.content_hash if ctx.geometry is None else id(cache), ctx.texture.height, tex.dtype, tex.device)
    memo = reward.__dict__.setdefault("_memo", {})
    if key not in memo:
        built = build(curvature_maps(cache, ctx.texture.height), tex)
        memo.clear()
        memo[key] = built
    return memo[key]


#: ``compat`` parameter shared by the rewards that exist in the reference code.
COMPAT_DESCRIPTION = (
    "'texkit' (default) or 'reference': every setting marked '(reference: ...)' that is not given explicitly takes the "
    "reference code's value, reproducing its math (docs/rewards, 'Differences from the reference')."
)

LOOKUP_DESCRIPTION = (
    "Where a UV point is read: texkit's convention, or the reference's (align-corners texel grid, vertically "
    "mirrored texel; quirks Q1, Q2) (reference: reference)."
)


def apply_reference_settings(params: Any, settings: dict[str, Any]) -> Any:
    """With ``params.compat == "reference"``, give every field of ``settings`` not set explicitly its value.

    Args:
        params: a reward's validated ``Params`` (a pydantic model with a ``compat`` field).
        settings: ``{field: the reference code's value}``.

    Returns:
        ``params`` (changed in place): a field the user gave keeps its value, so one quirk can be
        toggled on top of ``compat = "reference"``.
    """
    if getattr(params, "compat", "texkit") == "reference":
        for key, value in settings.items():
            if key not in params.model_fields_set:
                params.__dict__[key] = value
    return params
