"""The ``torch`` renderer: rasterise, interpolate, texture, antialias, all in PyTorch."""

from __future__ import annotations

from typing import Any

import torch

from texkit import Cameras, Mesh, RenderOutput, Texture, sample_texture
from texkit.batching import repeat_for_samples, stack_samples, unstack_samples
from texkit_torch_render.rasterize import antialias, barycentrics, edge_neighbors, interpolate, rasterize

__all__ = ["TorchRenderer"]


class TorchRenderer:
    """Differentiable rasteriser on CPU or CUDA (follows the device of the mesh).

    Args:
        near: clip planes of the perspective projection.
        far: clip planes of the perspective projection.
        device: optional device to move meshes, textures and cameras to before rendering.
        aa_walk_steps: triangles the antialiasing may walk across to find the silhouette edge
            between a covered and an uncovered pixel (1 = the covered pixel's triangle only).

    Gradients reach the texture (through bilinear sampling) and the camera parameters (through
    the perspective-correct barycentrics of every covered pixel and, with ``antialias``, through
    the silhouette edges).
    """

    name = "torch"

    def __init__(self, near: float = 0.1, far: float = 100.0, device: Any = None, aa_walk_steps: int = 4) -> None:
        self.near = near
        self.far = far
        self.aa_walk_steps = aa_walk_steps
        self.device = torch.device(device) if device is not None else None

    def render(
        self,
        mesh: Mesh,
        texture: Texture | torch.Tensor,
        cameras: Cameras,
        resolution: int,
        antialias: bool = True,
    ) -> RenderOutput:
        """Render ``texture`` on ``mesh`` from each camera; see `texkit.types.RenderOutput`.

        A batch of B textures is sampled in one lookup (stacked along channels): the geometry is
        rasterised once per camera whatever B is.

        Args:
            mesh: the mesh.
            texture: `Texture` or ``(Ht, Wt, 3)`` / ``(B, Ht, Wt, 3)`` tensor in [0, 1].
            cameras: N cameras.
            resolution: square output size R.
            antialias: blend silhouette pixels analytically (adds silhouette gradients).

        Returns:
            RenderOutput with ``(N, R, R, C)`` tensors, or ``(B * N, R, R, C)`` sample-major for a batch.
        """
        image = texture.image if isinstance(texture, Texture) else texture
        image, batch = stack_samples(image)
        if self.device is not None:
            mesh, image, cameras = mesh.to(self.device), image.to(self.device), cameras.to(self.device)
        device = mesh.device
        cameras = cameras.to(device) if cameras.device != device else cameras
        image = image.to(device)
        mvp = cameras.mvp(self.near, self.far).to(mesh.vertices.dtype)
        eyes = cameras.positions().to(mesh.vertices.dtype)
        homo = torch.cat((mesh.vertices, torch.ones_like(mesh.vertices[:, :1])), dim=-1)
        neighbors = edge_neighbors(mesh.faces) if antialias else None
        clip = homo @ mvp.transpose(1, 2)  # (N, V, 4)
        face_ids = rasterize(clip.detach(), mesh.faces, resolution, resolution)
        outputs = [
            self._render_view(mesh, image, clip[i], face_ids[i], eyes[i], neighbors) for i in range(len(cameras))
        ]
        fields = {k: torch.stack([o[k] for o in outputs]) for k in outputs[0]}
        if batch > 1:
            fields = {k: unstack_samples(v, batch) if k == "rgb" else repeat_for_samples(v, batch) for k, v in fields.items()}
        return RenderOutput(**fields)

    def _render_view(
        self,
        mesh: Mesh,
        image: torch.Tensor,
        clip: torch.Tensor,
        face_id: torch.Tensor,
        eye: torch.Tensor,
        neighbors: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        mask = (face_id >= 0).unsqueeze(-1)
        bary = barycentrics(clip, mesh.faces, face_id)
        uv = interpolate(mesh.uvs.to(clip.dtype), mesh.uv_faces, face_id, bary)
        position = interpolate(mesh.vertices, mesh.faces, face_id, bary)
        normal = torch.nn.functional.normalize(interpolate(mesh.normals, mesh.faces, face_id, bary), dim=-1, eps=1e-12)
        depth = interpolate(clip[:, 3:4], mesh.faces, face_id, bary)
        view_dir = torch.nn.functional.normalize(eye - position, dim=-1, eps=1e-12)
        view_cos = (normal * view_dir).sum(-1, keepdim=True).abs() * mask
        rgb = sample_texture(image, uv) * mask
        alpha = mask.to(rgb.dtype)
        if neighbors is not None:
            blended = antialias(torch.cat((rgb, alpha), dim=-1), face_id, clip, mesh.faces, neighbors, self.aa_walk_steps)
            rgb, alpha = blended[..., :-1], blended[..., -1:]  # rgb holds 3 x B channels for a batch
        return {
            "rgb": rgb,
            "alpha": alpha,
            "depth": depth,
            "normal": normal * mask,
            "uv": uv,
            "face_id": face_id,
            "view_cos": view_cos,
        }
