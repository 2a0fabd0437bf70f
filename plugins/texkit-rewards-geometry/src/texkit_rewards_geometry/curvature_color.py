"""Curvature colouring: red where the surface is convex, blue where it is concave."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import torch

import texkit
from texkit.geometry.precompute import minmax_signed
from texkit_rewards_geometry.texture_ops import memoised_texel_maps


def normalized_curvature(maps: dict[str, torch.Tensor], curvature: str, scale: str) -> torch.Tensor:
    """The curvature map K in [-1, 1] over the atlas texels (0 outside).

    Args:
        maps: :func:`texkit.geometry.precompute.curvature_maps` of the texture size.
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


class CurvatureColor(texkit.Reward):
    """Red where curvature is high, blue where low (METHOD.md 4.5).

    K is the mean curvature H = (k1 + k2) / 2 rasterised into UV texels and scaled to [-1, 1] over
    the atlas (``scale``: min-max as in the method, or sign-preserving); ``curvature = "k_min"``
    uses the reference code's minimum principal curvature instead. With w the coverage of atlas
    texels (unpainted texels weigh 0):

    * sharp: m = sigmoid(s (K - tau)); r = 1/2 [ sum(w m (R - B)) / sum(w m) - sum(w (1 - m)(R - B)) / sum(w (1 - m)) ]
    * smooth: r = sum(w K (R - B)) / sum(w)

    Both lie in [-1, 1]; a texture's colour inverse (red <-> blue) scores exactly the negative.
    """

    name = "curvature_color"
    description = "Red where mean curvature is high, blue where it is low (sharp or smooth threshold)."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        mode: Literal["sharp", "smooth"] = pydantic.Field("sharp", description="Sigmoid threshold (sharp) or K-weighted mean (smooth).")
        tau: float = pydantic.Field(-0.7, description="Threshold on the normalised curvature (sharp mode).")
        sharpness: float = pydantic.Field(100.0, gt=0, description="Sigmoid slope (sharp mode).")
        curvature: Literal["mean", "k_min"] = pydantic.Field("mean", description="'mean' (paper) or 'k_min' (reference code).")
        scale: Literal["minmax", "signed"] = pydantic.Field("minmax", description="Normalisation of K to [-1, 1].")

    def prepare(self, mesh: texkit.Mesh, cache: texkit.GeometryCache) -> None:
        """Compute the per-vertex curvature (the texel maps follow on first use, per texture size)."""
        from texkit.geometry.precompute import curvature

        curvature(cache)

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
        red_minus_blue = tex[..., 0] - tex[..., 2]
        if self.params.mode == "smooth":
            value = (w * k * red_minus_blue).sum() / w.sum().clamp_min(1e-12)
        else:
            m = torch.sigmoid(self.params.sharpness * (k - self.params.tau))
            high = (w * m * red_minus_blue).sum() / (w * m).sum().clamp_min(1e-12)
            low = (w * (1 - m) * red_minus_blue).sum() / (w * (1 - m)).sum().clamp_min(1e-12)
            value = 0.5 * (high - low)
        return texkit.RewardOutput(value=value, metrics={"covered_fraction": float((w > 0).float().mean())})


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``curvature_color``."""
    register(CurvatureColor)
