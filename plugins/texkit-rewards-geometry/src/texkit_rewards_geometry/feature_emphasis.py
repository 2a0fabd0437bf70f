"""Texture-feature emphasis: texture edges where the surface bends, plus colourfulness."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import torch

import texkit
from texkit.geometry import minmax_signed
from texkit_rewards_geometry.texture_ops import (
    COMPAT_DESCRIPTION,
    apply_reference_settings,
    colourfulness,
    erode,
    gradient_magnitude,
    grey,
    memoised_texel_maps,
    minmax,
    sobel_uv,
    weighted_mean,
)

__all__ = ["FeatureEmphasis", "feature_emphasis_terms", "REFERENCE_SETTINGS"]

#: The reference code's settings (``compat = "reference"``), quirks Q3, Q5, Q6, Q7, Q9 of the
#: conformance fixture: k_min curvature, constant direction (0, 1), every texel, zero padding,
#: torchvision grey weights, sqrt(|grad|^2 + 1e-6), signed projection over (G + 1e-6), "+ 1e-8"
#: min-max normalisation that also normalises the ridge mask.
REFERENCE_SETTINGS: dict[str, Any] = {
    "curvature": "k_min",
    "direction": "constant",
    "average": "all",
    "padding": "zeros",
    "grey_weights": "reference",
    "gradient_epsilon": 1e-3,
    "projection": "signed",
    "projection_epsilon": 1e-6,
    "minmax": "reference",
}


def _ridge_mask(k: torch.Tensor, threshold: float, style: str) -> torch.Tensor:
    """M = [K > threshold] as ``(H, W)`` 0/1; ``style = "reference"`` min-max normalises it in float32.

    The reference code's (M - min M) / (max M - min M + 1e-8) in float32 is exactly M when M holds
    both values (1 / (1 + 1e-8) rounds to 1) and 0 when every texel or none is a ridge (quirk Q6).
    """
    ridge = (k > threshold).to(k.dtype)
    if style != "reference":
        return ridge
    m32 = ridge.float()
    return ((m32 - m32.amin()) / (m32.amax() - m32.amin() + 1e-8)).to(k.dtype)


def feature_emphasis_terms(texture: torch.Tensor, k: torch.Tensor, direction: torch.Tensor, weights: torch.Tensor, params: Any) -> dict[str, torch.Tensor]:
    """Mean-curvature texture alignment (METHOD.md 4.4) of a texture, given the curvature map.

    g = grey(texture), grad g its Sobel gradient / 8 in UV axes, G = sqrt(|grad g|^2 + eps^2),
    N a min-max normalisation, M = [K > ridge_threshold]:

        L_mag = mean_w (N(G) - N(K))^2
        L_dir = mean_w (N(P) M - M)^2,   P = |grad g . dir| / (G + eps_p)   (signed without the abs)
        C = Hasler-Suesstrunk (2003) colourfulness (method's variant)
        r = -(L_mag + L_dir - c C)

    Args:
        texture: ``(H, W, 3)`` RGB in [0, 1].
        k: ``(H, W)`` curvature map in [-1, 1].
        direction: ``(H, W, 2)`` unit UV direction per texel (v up).
        weights: ``(H, W)`` texel weights of the means and the min/max (``average = "all"``: 1 everywhere).
        params: `FeatureEmphasis.Params`.

    Returns:
        ``{"value", "l_mag", "l_dir", "colourfulness"}`` scalar tensors.
    """
    w = torch.ones_like(k) if params.average == "all" else weights
    style = "add" if params.minmax == "reference" else "clamp"
    grad = sobel_uv(grey(texture, params.grey_weights), params.padding)
    magnitude = gradient_magnitude(grad, params.gradient_epsilon)
    l_mag = weighted_mean((minmax(magnitude, w, style) - minmax(k, w, style)) ** 2, w)
    projection = (grad * direction).sum(-1)
    if params.projection == "abs":
        projection = projection.abs()
    along = projection / (magnitude + params.projection_epsilon)
    ridge = _ridge_mask(k, params.ridge_threshold, params.minmax)
    l_dir = weighted_mean((minmax(along, w, style) * ridge - ridge) ** 2, w)
    colour = colourfulness(texture, w)
    value = -(l_mag + l_dir - params.colourfulness_weight * colour)
    return {"value": value, "l_mag": l_mag, "l_dir": l_dir, "colourfulness": colour}


class FeatureEmphasis(texkit.Reward):
    """Mean-curvature texture alignment (METHOD.md 4.4), computed by `feature_emphasis_terms`.

    K: curvature map min-max scaled to [-1, 1]; g: grey texture; G = |Sobel(g)| / 8.
    L_mag = MSE(minmax(G), minmax(K)); L_dir = MSE(minmax(|grad g . dir| / G) * M, M) with M = [K > 0.6]
    and dir the UV direction of maximum curvature (``direction = "constant"`` uses the reference
    code's constant (0, 1)); C the Hasler-Suesstrunk colourfulness. r = -(L_mag + L_dir - c C).
    All means run over covered texels inside the atlas (``average = "all"``: over every texel).
    ``compat = "reference"`` reproduces the reference code's math (`REFERENCE_SETTINGS`).
    """

    name = "feature_emphasis"
    description = "Texture gradients follow curvature magnitude and direction, with a colourfulness bonus."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        curvature: Literal["mean", "k_min"] = pydantic.Field("mean", description="'mean' (paper) or 'k_min' (reference: k_min).")
        direction: Literal["max_curvature", "constant"] = pydantic.Field(
            "max_curvature",
            description="Edge direction on ridges: the UV direction of maximum curvature, or the constant (0, 1) (reference: constant).",
        )
        ridge_threshold: float = pydantic.Field(0.6, description="Ridge mask M = [K > threshold], K the curvature map in [-1, 1].")
        colourfulness_weight: float = pydantic.Field(
            0.001, ge=0, description="c, weight of the Hasler-Suesstrunk colourfulness bonus."
        )
        average: Literal["painted", "all"] = pydantic.Field(
            "painted",
            description="Texels of the means and the min/max: painted atlas texels (coverage eroded by the Sobel stencil), or 'all' (reference: all).",
        )
        padding: Literal["replicate", "zeros"] = pydantic.Field(
            "replicate", description="Sobel border: replicate the border texel, or zeros, an edge to black at the texture border (reference: zeros)."
        )
        grey_weights: Literal["bt601", "reference"] = pydantic.Field(
            "bt601", description="Grey level: BT.601 (0.299, 0.587, 0.114) or (0.2989, 0.587, 0.114) (reference: reference)."
        )
        gradient_epsilon: float = pydantic.Field(
            1e-8, ge=0, description="G = sqrt(|grad g|^2 + epsilon^2), grad g the Sobel/8 gradient (reference: 0.001)."
        )
        projection: Literal["abs", "signed"] = pydantic.Field(
            "abs", description="|grad g . dir| (a curvature direction has no sign) or the signed projection (reference: signed)."
        )
        projection_epsilon: float = pydantic.Field(
            0.0, ge=0, description="Added to G in the denominator of the projection (reference: 1e-06)."
        )
        minmax: Literal["clamp", "reference"] = pydantic.Field(
            "clamp",
            description="Min-max normalisation: range clamped at 1e-8, or range + 1e-8 with the ridge mask normalised too (reference: reference).",
        )
        compat: Literal["texkit", "reference"] = pydantic.Field("texkit", description=COMPAT_DESCRIPTION)

        @pydantic.model_validator(mode="after")
        def _compat(self) -> "FeatureEmphasis.Params":
            return apply_reference_settings(self, REFERENCE_SETTINGS)

    def _texel_maps(self, ctx: texkit.RewardContext) -> tuple[torch.Tensor, ...]:
        """Atlas mask, K and curvature direction at the texture's size (memoised)."""

        def build(maps: dict[str, torch.Tensor], tex: torch.Tensor) -> tuple[torch.Tensor, ...]:
            mask = maps["mask"].to(tex.device, tex.dtype)
            k_raw = maps["mean"] if self.params.curvature == "mean" else maps["k_min"]
            k = minmax_signed(k_raw, maps["mask"]).to(tex.device, tex.dtype) * mask
            if self.params.direction == "constant":
                direction = torch.tensor([0.0, 1.0], dtype=tex.dtype, device=tex.device).expand(*k.shape, 2)
            else:
                direction = maps["dir_max"].to(tex.device, tex.dtype)
            return mask, k, direction

        return memoised_texel_maps(self, ctx, build)

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture``."""
        tex = ctx.texture.image
        mask, k, direction = self._texel_maps(ctx)
        w = erode(ctx.texture.coverage[..., 0].to(tex.dtype), 1) * mask  # Sobel stencils on painted texels only
        terms = feature_emphasis_terms(tex, k, direction, w, self.params)
        metrics = {key: float(terms[key].detach()) for key in ("l_mag", "l_dir", "colourfulness")}
        return texkit.RewardOutput(value=terms["value"], metrics=metrics)

    def visualize(self, ctx: texkit.RewardContext) -> torch.Tensor:
        """Where the reward asks for texture edges: the gradient strength it wants, N(K), as a grey level
        (white: strong edges, black: flat), with the ridge texels M (where the gradient must also run
        along the direction field) tinted orange; grey 0.5 off the atlas. ``(H, W, 3)`` in [0, 1].
        """
        tex = ctx.texture.image
        mask, k, _ = self._texel_maps(ctx)
        wanted = minmax(k, mask, "add" if self.params.minmax == "reference" else "clamp").clamp(0, 1)
        ridge = _ridge_mask(k, self.params.ridge_threshold, "texkit")[..., None]
        orange = torch.tensor([1.0, 0.55, 0.1], dtype=tex.dtype, device=tex.device)
        image = wanted[..., None].expand(*wanted.shape, 3) * (1 - 0.6 * ridge) + 0.6 * ridge * orange
        return image * mask[..., None] + 0.5 * (1 - mask[..., None])


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``feature_emphasis``."""
    register(FeatureEmphasis)
