"""3D reference reward: agreement with a reference texture, in UV space or through renders of a
reference textured mesh."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import pydantic
import torch
import torch.nn.functional as F

import texkit
from texkit_rewards_geometry.texture_ops import COMPAT_DESCRIPTION, apply_reference_settings

__all__ = ["Reference", "load_textured_mesh", "texture_mse", "REFERENCE_SETTINGS"]

#: The reference code's setting (``compat = "reference"``): its curvature_score_mse averages over every texel.
REFERENCE_SETTINGS: dict[str, Any] = {"average": "all"}


def texture_mse(texture: torch.Tensor, target: torch.Tensor, coverage: torch.Tensor, average: str = "painted") -> torch.Tensor:
    """r = -sum(w |T - T_ref|^2) / (3 sum w) (METHOD.md 4.6, the reference's ``curvature_score_mse``).

    Args:
        texture: ``(H, W, 3)`` in [0, 1].
        target: ``(H, W, 3)`` reference texture of the same size.
        coverage: ``(H, W, 1)`` painted coverage w.
        average: ``"painted"`` weights texels by the coverage, ``"all"`` counts every texel once.

    Returns:
        Scalar tensor <= 0.
    """
    w = torch.ones_like(coverage, dtype=texture.dtype) if average == "all" else coverage.to(texture.dtype)
    return -(((texture - target) ** 2) * w).sum() / (w.sum() * 3).clamp_min(1e-12)


def load_textured_mesh(path: str | Path, normalize: str = "unit_sphere") -> tuple[texkit.Mesh, torch.Tensor]:
    """Read a mesh file with its base-colour texture (OBJ + MTL, GLB/GLTF).

    Args:
        path: the mesh file.
        normalize: the normalisation of `texkit.Mesh.load` (use the one of the mesh being textured).

    Returns:
        The mesh and its ``(H, W, 3)`` texture in [0, 1].

    Raises:
        MeshError: unreadable mesh, or a mesh without a texture image.
    """
    import numpy as np
    import trimesh

    mesh = texkit.Mesh.load(path, normalize=normalize)  # type: ignore[arg-type]
    loaded = trimesh.load(str(path), process=False)
    geoms = list(loaded.geometry.values()) if isinstance(loaded, trimesh.Scene) else [loaded]
    image = None
    for geom in geoms:
        material = getattr(getattr(geom, "visual", None), "material", None)
        image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
        if image is not None:
            break
    if image is None:
        raise texkit.MeshError(f"reference mesh {path} has no texture image; export it with its texture or give 'texture'")
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return mesh, torch.from_numpy(pixels)


class Reference(texkit.Reward):
    """r = -MSE to a reference (METHOD.md 4.6).

    * ``mode = "texture"``: ``-sum(w |T - T_ref|^2) / (3 sum w)`` over painted texels (``w`` the
      coverage; ``average = "all"``: every texel, as the reference), the reference image resized to
      the texture's size (`texture_mse`).
    * ``mode = "renders"``: the renders of the current texture from the reward cameras against
      renders of the reference from the same cameras, over the union of both silhouettes. The
      reference is this mesh with the ``texture`` image, or, with ``mesh``, another textured mesh
      (rendered with the ``renderer`` named here).
    """

    name = "reference"
    description = "Agreement with a reference texture or textured mesh (UV space or through renders)."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        texture: Optional[str] = pydantic.Field(None, description="Reference texture image in this mesh's UV layout.")
        mesh: Optional[str] = pydantic.Field(None, description="Reference textured mesh file (OBJ+MTL, GLB); implies renders mode.")
        mode: Literal["texture", "renders"] = pydantic.Field("texture", description="Compare texels or renders.")
        renderer: str = pydantic.Field("torch", description="Renderer of the reference mesh (mesh given).")
        normalize: Literal["unit_sphere", "extent", "none"] = pydantic.Field(
            "unit_sphere", description="Normalisation of the reference mesh; use that of the textured mesh."
        )
        average: Literal["painted", "all"] = pydantic.Field(
            "painted", description="Texture mode: texels weighted by the painted coverage, or every texel once (reference: all)."
        )
        compat: Literal["texkit", "reference"] = pydantic.Field("texkit", description=COMPAT_DESCRIPTION)

        @pydantic.model_validator(mode="after")
        def _compat(self) -> "Reference.Params":
            return apply_reference_settings(self, REFERENCE_SETTINGS)

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        if self.params.texture is None and self.params.mesh is None:
            raise texkit.ConfigError("reward 'reference': give 'texture' (an image) or 'mesh' (a textured mesh file)")
        if self.params.mesh is not None and self.params.mode == "texture":
            self.params.mode = "renders"  # a different mesh can only be compared through renders
        self._mesh: texkit.Mesh | None = None
        try:
            if self.params.mesh is not None:
                self._mesh, self._reference = load_textured_mesh(self.params.mesh, self.params.normalize)
            if self.params.texture is not None:
                self._reference = texkit.Texture.load(self.params.texture).image
        except texkit.TexkitError as err:
            raise texkit.ConfigError(f"reward 'reference': {err}; point 'texture'/'mesh' at an existing file") from None
        if self.params.mode == "renders":
            self.needs_renders = True  # type: ignore[misc]
            self._renderer = texkit.get_registry().make_renderer(self.params.renderer) if self._mesh is not None else None

    def visualize(self, ctx: texkit.RewardContext) -> torch.Tensor | None:
        """The reference texture at the size of ``ctx.texture`` (what the reward asks the texture to be);
        None with a reference ``mesh`` (its texture belongs to another UV layout)."""
        if self._mesh is not None:
            return None
        size = ctx.texture.image.shape[-3:-1]
        ref = self._reference.to(ctx.device, torch.float32)
        if ref.shape[:2] != size:
            ref = F.interpolate(ref.permute(2, 0, 1)[None], size=size, mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
        return ref[..., :3]

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture`` against the reference."""
        tex = ctx.texture.image
        ref = self._reference.to(tex.device, tex.dtype)
        if self.params.mode == "texture":
            if ref.shape[:2] != tex.shape[:2]:
                ref = F.interpolate(ref.permute(2, 0, 1)[None], size=tex.shape[:2], mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
            return texkit.RewardOutput(value=texture_mse(tex, ref, ctx.texture.coverage, self.params.average))
        if ctx.cameras is None or (ctx.renders is None and ctx.render is None):
            raise texkit.RewardError("reward 'reference' in renders mode needs reward cameras and renders (or a renderer)")
        ours = ctx.renders if ctx.renders is not None else ctx.render(ctx.texture, ctx.cameras)
        # the reference renders move with the cameras too: keep their camera gradient (not the texture's)
        if self._mesh is None:
            if ctx.render is None:
                raise texkit.RewardError("reward 'reference' with a reference texture needs ctx.render to render it")
            theirs = ctx.render(texkit.Texture(ref), ctx.cameras)
        else:
            mesh = self._mesh.to(ours.rgb.device)
            mesh = texkit.Mesh(mesh.vertices.to(ours.rgb.dtype), mesh.faces, mesh.uvs.to(ours.rgb.dtype), mesh.uv_faces, mesh.normals.to(ours.rgb.dtype), mesh.name)
            theirs = self._renderer.render(mesh, ref, ctx.cameras, int(ours.rgb.shape[1]))
        union = torch.maximum(ours.alpha, theirs.alpha.to(ours.alpha.dtype))
        value = -(((ours.rgb - theirs.rgb.to(ours.rgb.dtype)) ** 2) * union).sum() / (union.sum() * 3).clamp_min(1e-12)
        return texkit.RewardOutput(value=value)


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``reference``."""
    register(Reference)
