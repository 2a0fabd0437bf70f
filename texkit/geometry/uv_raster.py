"""Rasterising mesh quantities into UV texel maps.

Each texel centre (see `texkit.uv`) is located in the UV triangle that covers it (the lowest
face index where several do); per-vertex values are interpolated there with the triangle's
barycentrics. Texels outside every UV triangle are marked uncovered.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from texkit.geometry.mesh import Mesh
from texkit.uv import uv_to_pixel

__all__ = ["UVRaster", "rasterize_uv"]


@dataclass
class UVRaster:
    """Which face covers each texel, and where.

    Attributes:
        face: ``(T, T)`` long face index per texel, -1 where no UV triangle covers it.
        bary: ``(T, T, 3)`` barycentric coordinates of the texel centre in that face (0 where uncovered).
    """

    face: torch.Tensor
    bary: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(T, T)`` bool: texels inside the UV atlas."""
        return self.face >= 0

    def interpolate_vertex(self, mesh: Mesh, values: torch.Tensor) -> torch.Tensor:
        """Interpolate per-vertex ``(V, C)`` (or ``(V,)``) values at texels: ``(T, T, C)`` (or ``(T, T)``)."""
        squeeze = values.dim() == 1
        vals = values[:, None] if squeeze else values
        face = self.face.clamp_min(0)
        out = (vals[mesh.faces[face]] * self.bary[..., None]).sum(-2) * self.mask[..., None]
        return out[..., 0] if squeeze else out


def rasterize_uv(mesh: Mesh, size: int) -> UVRaster:
    """Locate every texel centre of a ``size x size`` texture in the mesh's UV triangles."""
    uv_tri = uv_to_pixel(mesh.uvs[mesh.uv_faces].double(), size, size)  # (F, 3, 2) pixel coordinates
    lo = torch.floor(uv_tri.amin(dim=1) - 0.5).clamp_min(0).long()
    hi = torch.ceil(uv_tri.amax(dim=1) - 0.5).clamp_max(size - 1).long()
    extent = (hi - lo + 1).clamp_min(0)
    counts = extent[:, 0] * extent[:, 1]
    owner = torch.repeat_interleave(torch.arange(len(counts)), counts)
    offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    col = lo[owner, 0] + offsets % extent[owner, 0]
    row = lo[owner, 1] + offsets // extent[owner, 0]
    px, py = col.double() + 0.5, row.double() + 0.5
    t = uv_tri[owner]
    x0, x1, x2 = t[:, 0, 0], t[:, 1, 0], t[:, 2, 0]
    y0, y1, y2 = t[:, 0, 1], t[:, 1, 1], t[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    ok_area = area.abs() > 1e-18
    area = torch.where(ok_area, area, torch.ones_like(area))
    b0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) / area
    b1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) / area
    b2 = 1.0 - b0 - b1
    bary = torch.stack((b0, b1, b2), -1)
    inside = ok_area & (bary >= -1e-9).all(-1)
    flat, faces, bary = (row * size + col)[inside], owner[inside], bary[inside]
    # a texel covered by several faces (its centre on a shared edge, overlapping islands) takes the
    # lowest face index, its face and barycentrics from the same face (a scatter of duplicates
    # would pick any of them, and not the same one for both)
    order = torch.argsort(flat * max(len(counts), 1) + faces)
    first = torch.ones(len(order), dtype=torch.bool)
    first[1:] = flat[order][1:] != flat[order][:-1]
    chosen = order[first]
    face = torch.full((size * size,), -1, dtype=torch.long)
    face[flat[chosen]] = faces[chosen]
    bary_map = torch.zeros(size * size, 3, dtype=torch.float32)
    bary_map[flat[chosen]] = bary[chosen].float()
    return UVRaster(face.view(size, size), bary_map.view(size, size, 3))
