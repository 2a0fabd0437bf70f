"""Curvature colouring: red where the surface is convex, blue where it is concave."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import torch

import texkit
from texkit.geometry import minmax_signed
from texkit_rewards_geometry.texture_ops import COMPAT_DESCRIPTION, apply_reference_settings, memoised_texel_maps

__all__ = ["CurvatureColor", "curvature_color_value", "normalized_curvature", "REFERENCE_SETTINGS"]

#: The reference code's settings (``compat = "reference"``): its K is the minimum principal curvature,
#: its means run over every texel (quirk Q9), its sharp denominators add 1e-8 (Q10) and its smooth
#: mode weights R - B by K itself, not by K minus its mean.
REFERENCE_SETTINGS: dict[str, Any] = {"curvature": "k_min", "average": "all", "denominator": "add", "centre": False}


def normalized_curvature(maps: dict[str, torch.Tensor], curvature: str, scale: str) -> torch.Tensor:
    """The curvature map K in [-1, 1] over the atlas texels (0 outside).

    Args:
        maps: `texkit.geometry.precompute.curvature_maps` of the texture size.
        curvature: ``"mean"`` (H = (k1 + k2) / 2, the paper) or ``"k_min"`` (the reference code).
        scale: ``"minmax"`` maps [min, max] to [-1, 1] (the method's K; its 0 is mid-range, not flat);
            ``"signed"`` divides by max |value| so that K keeps the sign of the curvature (0 = flat).

    Returns:
        ``(T, T)`` float tensor.
    """
    raw = maps["mean"] if curvature == "mean" else maps["k_min"]
    mask = maps["mask"]
    if scale == "minmax":
        return minmax_signed(raw, mask) * mask
    return raw / raw[mask].abs().max().clamp_min(1e-12) * mask


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor, style: str) -> torch.Tensor:
    """numerator / max(denominator, 1e-12) (``"clamp"``) or numerator / (denominator + 1e-8) (``"add"``)."""
    return numerator / (denominator.clamp_min(1e-12) if style == "clamp" else denominator + 1e-8)


def curvature_color_value(texture: torch.Tensor, k: torch.Tensor, weights: torch.Tensor, params: Any) -> torch.Tensor:
    """The curvature-colour reward of a texture, given the curvature map (METHOD.md 4.5).

    With d = R - B and w the texel weights:

    * sharp: m = sigmoid(s (K - tau)); r = 1/2 [ sum(w m d) / sum(w m) - sum(w (1 - m) d) / sum(w (1 - m)) ]
    * smooth: r = sum(w (K - K_bar) d) / sum(w), K_bar = sum(w K) / sum(w) the weighted mean of K
      (``params.centre``; without it K_bar = 0, the method's and the reference's mean(K d)). Centred,
      r is the weighted covariance of K and d: adding a constant to d (the texture's overall
      red-blue balance) leaves it unchanged, as in sharp mode.

    Args:
        texture: ``(H, W, 3)`` RGB in [0, 1].
        k: ``(H, W)`` curvature map in [-1, 1].
        weights: ``(H, W)`` texel weights (``params.average = "all"`` replaces them by 1 everywhere).
        params: `CurvatureColor.Params` (``mode``, ``tau``, ``sharpness``, ``average``, ``denominator``, ``centre``).

    Returns:
        Scalar tensor in [-1, 1].
    """
    w = torch.ones_like(k) if params.average == "all" else weights
    red_minus_blue = texture[..., 0] - texture[..., 2]
    if params.mode == "smooth":
        total = w.sum().clamp_min(1e-12)
        if params.centre:
            k = k - (w * k).sum() / total
        return (w * k * red_minus_blue).sum() / total
    m = torch.sigmoid(params.sharpness * (k - params.tau))
    high, low = w * m, w * (1 - m)
    style = params.denominator
    return 0.5 * (_ratio((high * red_minus_blue).sum(), high.sum(), style) - _ratio((low * red_minus_blue).sum(), low.sum(), style))


class CurvatureColor(texkit.Reward):
    """Red where curvature is high, blue where low (METHOD.md 4.5).

    K is the mean curvature H = (k1 + k2) / 2 rasterised into UV texels and scaled to [-1, 1] over
    the atlas (``scale``: min-max as in the method, or sign-preserving); ``curvature = "k_min"``
    uses the reference code's minimum principal curvature instead. With w the coverage of atlas
    texels (unpainted texels weigh 0; ``average = "all"``: every texel weighs 1, as the reference),
    `curvature_color_value` gives

    * sharp: m = sigmoid(s (K - tau)); r = 1/2 [ sum(w m (R - B)) / sum(w m) - sum(w (1 - m)(R - B)) / sum(w (1 - m)) ]
    * smooth: r = sum(w (K - K_bar) (R - B)) / sum(w), K_bar the weighted mean of K (``centre = false``:
      K_bar = 0, the reference's mean(K (R - B)), which ranks textures by their overall red-blue balance)

    Both lie in [-1, 1]; a texture's colour inverse (red <-> blue) scores exactly the negative, and
    both are blind to a constant added to R - B (smooth mode only when centred).
    """

    name = "curvature_color"
    description = "Red where mean curvature is high, blue where it is low (sharp or smooth threshold)."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        mode: Literal["sharp", "smooth"] = pydantic.Field("sharp", description="Sigmoid threshold (sharp) or K-weighted mean (smooth).")
        tau: float = pydantic.Field(-0.7, description="Threshold on the normalised curvature (sharp mode).")
        sharpness: float = pydantic.Field(100.0, gt=0, description="Sigmoid slope (sharp mode).")
        curvature: Literal["mean", "k_min"] = pydantic.Field("mean", description="'mean' (paper) or 'k_min' (reference: k_min).")
        scale: Literal["minmax", "signed"] = pydantic.Field("minmax", description="Normalisation of K to [-1, 1].")
        average: Literal["painted", "all"] = pydantic.Field(
            "painted", description="Texels averaged: 'painted' atlas texels weighted by coverage, or 'all' texels with weight 1 (reference: all)."
        )
        denominator: Literal["clamp", "add"] = pydantic.Field(
            "clamp", description="Sharp-mode sums in the denominators: clamped at 1e-12, or plus 1e-8 (reference: add)."
        )
        centre: bool = pydantic.Field(
            True,
            description="Smooth mode: weight R - B by K minus its weighted mean, so that the texture's overall red-blue balance "
            "does not count (reference: false).",
        )
        compat: Literal["texkit", "reference"] = pydantic.Field("texkit", description=COMPAT_DESCRIPTION)

        @pydantic.model_validator(mode="after")
        def _compat(self) -> "CurvatureColor.Params":
            return apply_reference_settings(self, REFERENCE_SETTINGS)

    def prepare(self, mesh: texkit.Mesh, cache: texkit.GeometryCache) -> None:
        """Compute the per-vertex curvature (the texel maps follow on first use, per texture size)."""
        from texkit.geometry import mesh_curvature

        mesh_curvature(cache)

    def _texel_maps(self, ctx: texkit.RewardContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Atlas mask and normalised curvature K at the texture's size (memoised)."""

        def build(maps: dict[str, torch.Tensor], tex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            k = normalized_curvature(maps, self.params.curvature, self.params.scale).to(tex.device, tex.dtype)
            return maps["mask"].to(tex.device, tex.dtype), k

        return memoised_texel_maps(self, ctx, build)

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture`` (square textures)."""
        tex = ctx.texture.image
        mask, k = self._texel_maps(ctx)
        w = ctx.texture.coverage[..., 0].to(tex.dtype) * mask
        value = curvature_color_value(tex, k, w, self.params)
        return texkit.RewardOutput(value=value, metrics={"covered_fraction": float((w > 0).float().mean())})

    def visualize(self, ctx: texkit.RewardContext) -> torch.Tensor:
        """The colours this reward asks for, on the atlas: red where it wants red (high curvature),
        blue where it wants blue, white where it is indifferent, grey off the atlas.

        The target t in [-1, 1] is 2 m - 1 with m = sigmoid(s (K - tau)) in sharp mode, K in smooth mode
        (K minus its mean over the painted atlas texels when ``centre`` is on).
        """
        mask, k = self._texel_maps(ctx)
        p = self.params
        if p.mode == "sharp":
            t = 2.0 * torch.sigmoid(p.sharpness * (k - p.tau)) - 1.0
        else:
            w = torch.ones_like(k) if p.average == "all" else ctx.texture.coverage[..., 0].to(k.dtype) * mask
            centre = (w * k).sum() / w.sum().clamp_min(1e-12) if p.centre else 0.0
            t = (k - centre).clamp(-1.0, 1.0)
        red, blue = t.clamp_min(0.0), (-t).clamp_min(0.0)
        image = torch.stack((1.0 - blue, 1.0 - red - blue, 1.0 - red), dim=-1)
        return image * mask[..., None] + 0.5 * (1.0 - mask[..., None])


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``curvature_color``."""
    register(CurvatureColor)
