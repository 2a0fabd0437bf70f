"""Symmetry reward: the texture agrees across mirror-image points of the mesh."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import torch

import texkit
from texkit.geometry.precompute import mirror_pairs
from texkit.uv import sample_texture
from texkit_rewards_geometry.texture_ops import ensure_prepared, erode


class Symmetry(texkit.Reward):
    """r = -mean over mirror pairs (U, U') of the MSE between the 3x3 texel patches around U and U'.

    Pairs come from the mesh's automatically found mirror plane (``texkit.geometry.symmetry``):
    every vertex is reflected, its closest surface point gives the mirror UV, and pairs failing the
    distance or reciprocity test are dropped. With ``method="intrinsic"`` they come from the
    bending-invariant symmetry instead (``texkit.geometry.intrinsic_symmetry``: a Laplace-Beltrami
    functional map that is an isometric involution), for meshes whose pose is not mirror-symmetric. A pair counts only where both of its patches lie on
    painted texels (``Texture.coverage`` eroded by the patch size), so unpainted texels count for nothing. The maximum, 0, is reached by a mirror-symmetric texture.
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

    def prepare(self, mesh: texkit.Mesh, cache: texkit.GeometryCache) -> None:
        """Find the mirror plane and the UV pairs (cached per mesh)."""
        self._pairs = mirror_pairs(cache, self.params.max_distance, self.params.max_roundtrip, self.params.method)
        self._prepared = (mesh, mesh.content_hash)

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture``."""
        ensure_prepared(self, ctx)
        texture = ctx.texture.image
        size = texture.shape[0]
        half = self.params.patch // 2
        steps = torch.arange(-half, half + 1, dtype=texture.dtype, device=texture.device) / size
        offsets = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)
        uv_a = self._pairs["uv_a"].to(texture.device, texture.dtype)
        uv_b = self._pairs["uv_b"].to(texture.device, texture.dtype)
        pa = sample_texture(texture, uv_a[:, None, :] + offsets)  # (P, k, 3)
        pb = sample_texture(texture, uv_b[:, None, :] + offsets)
        # a pair counts only when every texel its two patches read was painted (see texture_ops.erode)
        cov = erode(ctx.texture.coverage.to(texture.dtype), half + 1)
        weight = (sample_texture(cov, uv_a) * sample_texture(cov, uv_b))[:, 0]
        mse = ((pa - pb) ** 2).mean(dim=(1, 2))
        value = -(mse * weight).sum() / weight.sum().clamp_min(1e-12)
        return texkit.RewardOutput(value=value, metrics={"pairs": float(len(uv_a)), "plane_error": float(self._pairs["plane_error"][0])})


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``symmetry``."""
    register(Symmetry)
