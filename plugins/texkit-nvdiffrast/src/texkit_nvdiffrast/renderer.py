"""The ``nvdiffrast`` renderer: nvdiffrast's rasterize / interpolate / texture / antialias on CUDA.

Produces the same `texkit.types.RenderOutput` as the ``torch`` renderer: nvdiffrast's image
row 0 is the bottom (NDC y = -1), so outputs are flipped to put row 0 at the top; its texture
lookups measure v from the first row in memory, so UVs are converted from texkit's convention
(v upward, row 0 = v 1) with v' = 1 - v.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from texkit import Cameras, Mesh, RenderOutput, Texture
from texkit.batching import repeat_for_samples, stack_samples, unstack_samples
from texkit_nvdiffrast.build import make_context

__all__ = ["NvdiffrastRenderer"]


class NvdiffrastRenderer:
    """CUDA rasteriser (Laine et al., "Modular Primitives for High-Performance Differentiable Rendering", 2020).

    Args:
        near: clip planes.
        far: clip planes.
        device: CUDA device (default: the current one).
        filter_mode: ``"linear"`` (bilinear, matches the torch renderer) or ``"linear-mipmap-linear"``
            (trilinear with pixel derivatives of the UVs, for minified textures).

    Raises:
        DeviceError: on a machine without CUDA (use the ``torch`` renderer there).
    """

    name = "nvdiffrast"

    def __init__(
        self,
        near: float = 0.1,
        far: float = 100.0,
        device: Any = None,
        filter_mode: Literal["linear", "linear-mipmap-linear"] = "linear",
    ) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cuda")
        self.context = make_context(self.device)
        self.near, self.far = near, far
        self.filter_mode = filter_mode

    def render(
        self,
        mesh: Mesh,
        texture: Texture | torch.Tensor,
        cameras: Cameras,
        resolution: int,
        antialias: bool = True,
    ) -> RenderOutput:
        """Render ``texture`` on ``mesh`` from each camera (see `texkit.types.Renderer`).

        A batch of B textures ``(B, H, W, 3)`` is looked up in one ``dr.texture`` call (stacked
        along channels) and antialiased in one call; outputs are ``(B * N, ...)`` sample-major.
        """
        import nvdiffrast.torch as dr

        image = texture.image if isinstance(texture, Texture) else texture
        image, batch = stack_samples(image)
        mesh, cameras = mesh.to(self.device), cameras.to(self.device)
        image = image.to(self.device)
        verts = mesh.vertices.float()
        mvp = cameras.mvp(self.near, self.far).float()
        homo = torch.cat((verts, torch.ones_like(verts[:, :1])), dim=-1)
        clip = (homo.unsqueeze(0) @ mvp.transpose(1, 2)).contiguous()  # (N, V, 4)
        faces = mesh.faces.int().contiguous()
        uv_faces = mesh.uv_faces.int().contiguous()
        rast, rast_db = dr.rasterize(self.context, clip, faces, resolution=[resolution, resolution])
        mask = (rast[..., 3:4] > 0).float()
        uv_dr = torch.stack((mesh.uvs[:, 0], 1.0 - mesh.uvs[:, 1]), dim=-1).float().contiguous()
        mip = self.filter_mode != "linear"
        uv_img, uv_da = dr.interpolate(uv_dr, rast, uv_faces, rast_db=rast_db if mip else None, diff_attrs="all" if mip else None)
        tex = image.float().unsqueeze(0).contiguous()
        rgb = dr.texture(tex, uv_img, uv_da if mip else None, filter_mode=self.filter_mode, boundary_mode="clamp") * mask
        position, _ = dr.interpolate(verts.contiguous(), rast, faces)
        normal, _ = dr.interpolate(mesh.normals.float().contiguous(), rast, faces)
        normal = torch.nn.functional.normalize(normal, dim=-1, eps=1e-12) * mask
        depth, _ = dr.interpolate(clip[..., 3:4].contiguous(), rast, faces)
        eyes = cameras.positions().float()[:, None, None, :]
        view_dir = torch.nn.functional.normalize(eyes - position, dim=-1, eps=1e-12)
        view_cos = (normal * view_dir).sum(-1, keepdim=True).abs() * mask
        alpha = mask
        if antialias:
            blended = dr.antialias(torch.cat((rgb, alpha), dim=-1).contiguous(), rast, clip, faces)
            rgb, alpha = blended[..., :-1], blended[..., -1:]
        uv = torch.stack((uv_img[..., 0], 1.0 - uv_img[..., 1]), dim=-1) * mask

        def flip(x: torch.Tensor) -> torch.Tensor:
            return torch.flip(x, dims=[1])

        fields = {
            "rgb": flip(rgb),
            "alpha": flip(alpha),
            "depth": flip(depth * mask),
            "normal": flip(normal),
            "uv": flip(uv),
            "face_id": flip(rast[..., 3].long() - 1),
            "view_cos": flip(view_cos),
        }
        if batch > 1:
            fields = {k: unstack_samples(v, batch) if k == "rgb" else repeat_for_samples(v, batch) for k, v in fields.items()}
        return RenderOutput(**fields)
