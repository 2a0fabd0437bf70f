"""Curvature colouring: red where the surface is convex, blue where it is concave."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import torch

import texkit
from texkit.geometry.precompute import curvature_maps


class CurvatureColor(texkit.Reward):
    """Red where mean curvature is high, blue where low (METHOD.md 4.5).

    K is the mean curvature H = (k1 + k2) / 2 rasterised into UV texels and min-max scaled to
    [-1, 1] over the atlas (``curvature = "k_min"`` uses the reference code's minimum principal
    curvature instead). With coverage weights w:

    * sharp: m = sigmoid(s (K - tau)); r = 1/2 [ sum(w m (R - B)) / sum(w m) - sum(w (1 - m)(R - B)) / sum(w (1 - m)) ]
    * smooth: r = sum(w K (R - B)) / sum(w)
    """

    name = "curvature_color"
    description = "Red where mean curvature is high, blue where it is low (sharp or smooth threshold)."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        mode: Literal["sharp", "smooth"] = "sharp"
        tau: float = pydantic.Field(-0.7, description="Threshold on the normalised curvature (sharp mode).")
        sharpness: float = pydantic.Field(100.0, gt=0, description="Sigmoid slope (sharp mode).")
        curvature: Literal["mean", "k_min"] = "mean"

    def _maps(self, ctx: texkit.RewardContext) -> dict[str, torch.Tensor]:
        cache = ctx.geometry or texkit.GeometryCache(ctx.mesh, root=False)
        return curvature_maps(cache, ctx.texture.height)

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture``."""
        maps = self._maps(ctx)
        tex = ctx.texture.image
        mask = maps["mask"].to(tex.device)
        if self.params.curvature == "mean":
            k = maps["mean_normalized"].to(tex.device, tex.dtype)
        else:
            from texkit.geometry.precompute import minmax_signed

            k = minmax_signed(maps["k_min"], maps["mask"]).to(tex.device, tex.dtype)
        w = ctx.texture.coverage[..., 0] * mask
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
