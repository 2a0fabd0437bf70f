"""Symmetry reward: the texture agrees across mirror-image points of the mesh."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import torch

import texkit
from texkit import sample_texture
from texkit.geometry import mirror_pairs
from texkit_rewards_geometry.texture_ops import (
    COMPAT_DESCRIPTION,
    LOOKUP_DESCRIPTION,
    apply_reference_settings,
    ensure_prepared,
    erode,
    reference_lookup_uv,
    splat_points,
)

__all__ = ["Symmetry", "symmetry_value", "REFERENCE_SETTINGS"]

#: The reference code's settings (``compat = "reference"``): its UV lookup and patch offsets
#: (quirks Q1, Q2, Q11) and a plain mean over every pair.
REFERENCE_SETTINGS: dict[str, Any] = {"lookup": "reference", "average": "all"}


def _patch_points(uv: torch.Tensor, patch: int, height: int, width: int, lookup: str) -> torch.Tensor:
    """``(N, 2)`` UV points -> ``(N, patch^2, 2)`` lookup UVs of the texel patch around each.

    texkit: offsets k / W, k / H for k = -patch//2 .. patch//2 (whole texels), edges clamped by the
    lookup. reference: offsets linspace(-patch//2, patch//2, patch) / (W - 1) evaluated in float32,
    added in the reference's UV and clamped to [0, 1] there, then read where the reference reads
    (`reference_lookup_uv`).
    """
    half = patch // 2
    if lookup == "reference":
        k = torch.linspace(-half, half, patch, dtype=torch.float32)
        du, dv = (k / (width - 1)).to(uv.dtype), (k / (height - 1)).to(uv.dtype)
        offsets = torch.stack(torch.meshgrid(du, dv, indexing="ij"), -1).reshape(-1, 2).to(uv.device)
        return reference_lookup_uv((uv[:, None, :] + offsets).clamp(0, 1), height, width)
    steps = torch.arange(-half, half + 1, dtype=uv.dtype, device=uv.device)
    offsets = torch.stack(torch.meshgrid(steps / width, steps / height, indexing="ij"), -1).reshape(-1, 2)
    return uv[:, None, :] + offsets


def symmetry_value(texture: torch.Tensor, uv_a: torch.Tensor, uv_b: torch.Tensor, coverage: torch.Tensor, params: Any) -> torch.Tensor:
    """r = -sum_i w_i MSE(patch(U_i), patch(U_i')) / sum_i w_i over mirror pairs (METHOD.md 4.2).

    Args:
        texture: ``(H, W, 3)`` RGB in [0, 1].
        uv_a: ``(N, 2)`` UV points (as stored in the mesh).
        uv_b: ``(N, 2)`` their mirror points.
        coverage: ``(H, W, 1)`` painted coverage; w_i = 1 when every texel both patches read was
            painted (``average = "all"``: w_i = 1 for every pair, the reference's plain mean).
        params: `Symmetry.Params` (``patch``, ``lookup``, ``average``).

    Returns:
        Scalar tensor <= 0 (0 for a mirror-symmetric texture).
    """
    height, width = texture.shape[0], texture.shape[1]
    pa = sample_texture(texture, _patch_points(uv_a, params.patch, height, width, params.lookup))  # (N, k, 3)
    pb = sample_texture(texture, _patch_points(uv_b, params.patch, height, width, params.lookup))
    mse = ((pa - pb) ** 2).mean(dim=(1, 2))
    if params.average == "all":
        return -mse.mean()
    # a pair counts only when every texel its two patches read was painted (see texture_ops.erode)
    cov = erode(coverage.to(texture.dtype), params.patch // 2 + 1)
    if params.lookup == "reference":
        uv_a, uv_b = reference_lookup_uv(uv_a, height, width), reference_lookup_uv(uv_b, height, width)
    weight = (sample_texture(cov, uv_a) * sample_texture(cov, uv_b))[:, 0]
    return -(mse * weight).sum() / weight.sum().clamp_min(1e-12)


class Symmetry(texkit.Reward):
    """r = -mean over mirror pairs (U, U') of the MSE between the 3x3 texel patches around U and U'.

    Pairs come from the mesh's automatically found mirror plane (``texkit.geometry.symmetry``):
    every vertex is reflected, its closest surface point gives the mirror UV, and pairs failing the
    distance or reciprocity test are dropped. With ``method="intrinsic"`` they come from the
    bending-invariant symmetry instead (``texkit.geometry.intrinsic_symmetry``: a Laplace-Beltrami
    functional map that is an isometric involution), for meshes whose pose is not mirror-symmetric.
    A pair counts only where both of its patches lie on painted texels (``Texture.coverage`` eroded
    by the patch size), so unpainted texels count for nothing. The maximum, 0, is reached by a
    mirror-symmetric texture. The math is `symmetry_value`; ``compat = "reference"`` reads
    the points where the reference code does and averages over every pair.
    """

    name = "symmetry"
    description = "Texture agreement across mirror-image UV points (automatic mirror plane)."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        patch: int = pydantic.Field(3, ge=1, description="Patch width in texels (odd).")
        max_distance: float = pydantic.Field(0.02, gt=0, description="Pair filter: reflected vertex to surface distance (relative).")
        max_roundtrip: float = pydantic.Field(0.03, gt=0, description="Pair filter: reciprocity distance (relative).")
        method: Literal["plane", "intrinsic"] = pydantic.Field(
            "plane",
            description="plane: mirror plane (mesh symmetric as placed); intrinsic: bending-invariant symmetry (asymmetric pose).",
        )
        lookup: Literal["texkit", "reference"] = pydantic.Field("texkit", description=LOOKUP_DESCRIPTION)
        average: Literal["painted", "all"] = pydantic.Field(
            "painted", description="Pairs whose patches lie on painted texels, or every pair with weight 1 (reference: all)."
        )
        compat: Literal["texkit", "reference"] = pydantic.Field("texkit", description=COMPAT_DESCRIPTION)

        @pydantic.model_validator(mode="after")
        def _compat(self) -> "Symmetry.Params":
            return apply_reference_settings(self, REFERENCE_SETTINGS)

    def prepare(self, mesh: texkit.Mesh, cache: texkit.GeometryCache) -> None:
        """Find the mirror plane and the UV pairs (cached per mesh)."""
        self._pairs = mirror_pairs(cache, self.params.max_distance, self.params.max_roundtrip, self.params.method)
        self._prepared = (mesh, mesh.content_hash)

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture``."""
        ensure_prepared(self, ctx)
        texture = ctx.texture.image
        uv_a = self._pairs["uv_a"].to(texture.device, texture.dtype)
        uv_b = self._pairs["uv_b"].to(texture.device, texture.dtype)
        value = symmetry_value(texture, uv_a, uv_b, ctx.texture.coverage, self.params)
        return texkit.RewardOutput(value=value, metrics={"pairs": float(len(uv_a)), "plane_error": float(self._pairs["plane_error"][0])})

    def visualize(self, ctx: texkit.RewardContext) -> torch.Tensor:
        """The mirror pairs the reward compares: both points of a pair get one colour, so on the mesh each
        side shows the mirror image of the other's dots (white where no pair is).

        The colour is a symmetric function of the pair's two UV points (their mean u and v, and
        their distance), so it varies smoothly over the surface and does not depend on which point
        is listed first. Dots are squares of radius ``size // 64`` texels (5 texels wide at 128, one texel below 64).
        """
        ensure_prepared(self, ctx)
        height, width = ctx.texture.image.shape[-3], ctx.texture.image.shape[-2]
        uv_a = self._pairs["uv_a"].to(ctx.device, torch.float32)
        uv_b = self._pairs["uv_b"].to(ctx.device, torch.float32)
        mean = (uv_a + uv_b) / 2
        spread = (uv_a - uv_b).norm(dim=-1, keepdim=True)
        colors = torch.cat((0.15 + 0.8 * mean[:, 1:2], 0.15 + 0.7 * mean[:, :1], (0.2 + 2.0 * spread).clamp(0, 1)), dim=-1)
        radius = max(width // 64, 0)
        return splat_points(torch.cat((uv_a, uv_b)), torch.cat((colors, colors)), height, width, radius)


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``symmetry``."""
    register(Symmetry)
