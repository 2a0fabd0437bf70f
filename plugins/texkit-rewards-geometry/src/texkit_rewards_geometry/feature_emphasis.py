"""Texture-feature emphasis: texture edges where the surface bends, plus colourfulness."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import torch

import texkit
from texkit.geometry.precompute import minmax_signed
from texkit_rewards_geometry.texture_ops import (
    colourfulness,
    erode,
    grey,
    memoised_texel_maps,
    minmax,
    sobel_uv,
    weighted_mean,
)


class FeatureEmphasis(texkit.Reward):
    """Mean-curvature texture alignment (METHOD.md 4.4).

    K: curvature map min-max scaled to [-1, 1]; g: grey texture; G = |Sobel(g)| / 8.
    L_mag = MSE(minmax(G), minmax(K)); L_dir = MSE(minmax(|grad g . dir| / G) * M, M) with M = [K > 0.6]
    and dir the UV direction of maximum curvature (``direction = "constant"`` uses the reference
    code's constant (0, 1)); C the Hasler-Suesstrunk colourfulness. r = -(L_mag + L_dir - c C).
    All means run over covered texels inside the atlas.
    """

    name = "feature_emphasis"
    description = "Texture gradients follow curvature magnitude and direction, with a colourfulness bonus."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        curvature: Literal["mean", "k_min"] = pydantic.Field("mean", description="'mean' (paper) or 'k_min' (reference code).")
        direction: Literal["max_curvature", "constant"] = pydantic.Field(
            "max_curvature",
            description="Edge direction on ridges: the UV direction of maximum curvature, or the reference code's constant (0, 1).",
        )
        ridge_threshold: float = pydantic.Field(0.6, description="Ridge mask M = [K > threshold], K the curvature map in [-1, 1].")
        colourfulness_weight: float = pydantic.Field(
            0.001, ge=0, description="c, weight of the Hasler-Suesstrunk colourfulness bonus."
        )

    def _texel_maps(self, ctx: texkit.RewardContext) -> tuple[torch.Tensor, ...]:
        """Atlas mask, K, curvature direction and ridge mask M at the texture's size (memoised)."""

        def build(maps: dict[str, torch.Tensor], tex: torch.Tensor) -> tuple[torch.Tensor, ...]:
            mask = maps["mask"].to(tex.device, tex.dtype)
            k_raw = maps["mean"] if self.params.curvature == "mean" else maps["k_min"]
            k = minmax_signed(k_raw, maps["mask"]).to(tex.device, tex.dtype) * mask
            if self.params.direction == "constant":
                direction = torch.tensor([0.0, 1.0], dtype=tex.dtype, device=tex.device).expand(*k.shape, 2)
            else:
                direction = maps["dir_max"].to(tex.device, tex.dtype)
            ridge = (k > self.params.ridge_threshold).to(tex.dtype)
            return mask, k, direction, ridge

        return memoised_texel_maps(self, ctx, build)

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture``."""
        tex = ctx.texture.image
        mask, k, direction, ridge = self._texel_maps(ctx)
        w = erode(ctx.texture.coverage[..., 0].to(tex.dtype), 1) * mask  # Sobel stencils on painted texels only
        grad = sobel_uv(grey(tex))
        magnitude = grad.norm(dim=-1).clamp_min(1e-8)
        l_mag = weighted_mean((minmax(magnitude, w) - minmax(k, w)) ** 2, w)
        along = (grad * direction).sum(-1).abs() / magnitude
        l_dir = weighted_mean((minmax(along, w) * ridge - ridge) ** 2, w)
        colour = colourfulness(tex, w)
        value = -(l_mag + l_dir - self.params.colourfulness_weight * colour)
        return texkit.RewardOutput(value=value, metrics={"l_mag": float(l_mag.detach()), "l_dir": float(l_dir.detach()), "colourfulness": float(colour.detach())})


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``feature_emphasis``."""
    register(FeatureEmphasis)
