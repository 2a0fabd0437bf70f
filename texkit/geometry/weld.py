"""The mesh welded by position: what the geometry analyses run on, so that vertex splits do not matter.

A file stores a vertex once per (position, UV, normal) it needs: a GLB splits every vertex on a
UV seam, an OBJ read without UVs keeps the vertices its normals split, a mesh built with
`Mesh.from_arrays` keeps whatever it was given. A split vertex is a boundary for a neighbourhood
(the quadric fits of `texkit.geometry.curvature` see half a ring), a separate point for the mirror
search and a separate row of the Laplacian, so curvature, directions and symmetry pairs would
change with the file's layout although the surface is the same.

`weld_by_position` merges the vertices lying within `WELD_TOLERANCE` of each other (relative
to the bounding-box diagonal: splits, and the float32 noise of a GLB round trip, are far below it;
distinct vertices of a real mesh far above) and the UVs equal within the same tolerance. The welded
vertices are ordered canonically (lexicographically by position, each at its first such member), so two
layouts of one surface give the same welded mesh whatever their vertex order; faces keep their
order and their UV corners, so every UV-space result (texel maps, UV direction fields, UV pairs)
is laid out as for the original mesh. Per-vertex results are mapped back with
`WeldedMesh.vertex` (every copy of a split vertex gets its position's value).

A mesh read by `Mesh.load` from a file with UVs is already welded exactly; its welded mesh is the
same mesh (vertices and UVs in the same order) unless some of its vertices lie within the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from texkit.geometry.mesh import Mesh, vertex_normals

__all__ = ["WeldedMesh", "weld_by_position", "WELD_TOLERANCE"]

WELD_TOLERANCE = 1e-6
"""Vertices (and UVs) closer than this, relative to the bounding-box diagonal (for UVs: absolute), are one."""


@dataclass
class WeldedMesh:
    """A mesh welded by position, and how its vertices map back.

    Attributes:
        mesh: the welded mesh: ``(W, 3)`` vertices in canonical order, the original faces (same
            order) indexing them, the UVs welded the same way, normals recomputed.
        vertex: ``(V,)`` long: the welded vertex of each vertex of the original mesh.
    """

    mesh: Mesh
    vertex: torch.Tensor

    def to_original(self, values: torch.Tensor) -> torch.Tensor:
        """Per-welded-vertex ``(W, ...)`` values as per-original-vertex ``(V, ...)`` values."""
        return values[self.vertex.to(values.device)]


def _clusters(points: np.ndarray, radius: float) -> np.ndarray:
    """``(N,)`` cluster label of each point: connected components of the pairs closer than ``radius``."""
    if radius <= 0.0 or len(points) < 2:
        return np.arange(len(points))
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
    if len(pairs) == 0:
        return np.arange(len(points))
    graph = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(points), len(points)))
    return connected_components(graph, directed=False)[1]


def _canonical(points: np.ndarray, labels: np.ndarray, sort: bool) -> tuple[np.ndarray, np.ndarray]:
    """Merge each cluster into its first member and number the clusters.

    Args:
        points: ``(N, D)`` coordinates.
        labels: ``(N,)`` cluster labels.
        sort: number the clusters lexicographically by position (by first occurrence when False).

    Returns:
        ``(index (N,) of each point's cluster, (C, D) the position of each cluster)``.
    """
    order = np.lexsort(points.T[::-1]) if sort else np.arange(len(points))  # lexsort: last key first
    seen = labels[order]
    _, first = np.unique(seen, return_index=True)  # first member (in ``order``) of each cluster
    members = order[np.sort(first)]  # in ``order``: ranks follow it
    rank = np.empty(labels.max() + 1, dtype=np.int64)
    rank[labels[members]] = np.arange(len(members))
    return rank[labels], points[members]


def weld_by_position(mesh: Mesh, tolerance: float = WELD_TOLERANCE) -> WeldedMesh:
    """Merge the vertices of ``mesh`` that share a position (within ``tolerance``), and equal UVs.

    Args:
        mesh: the mesh (any device; the result is on the CPU).
        tolerance: relative to the bounding-box diagonal for positions, absolute for UVs.

    Returns:
        `WeldedMesh`: the welded mesh (canonical vertex order, see the module docstring) and the
        map from the original vertices to it.
    """
    verts = mesh.vertices.detach().double().cpu().numpy()
    uvs = mesh.uvs.detach().double().cpu().numpy()
    diagonal = float(np.linalg.norm(verts.max(axis=0) - verts.min(axis=0))) if len(verts) else 0.0
    vertex, positions = _canonical(verts, _clusters(verts, tolerance * diagonal), sort=True)
    uv_index, uv_points = _canonical(uvs, _clusters(uvs, tolerance), sort=False)
    faces = torch.from_numpy(vertex[mesh.faces.cpu().numpy()])
    uv_faces = torch.from_numpy(uv_index[mesh.uv_faces.cpu().numpy()])
    v = torch.from_numpy(positions).to(mesh.vertices.dtype)
    welded = Mesh(
        vertices=v,
        faces=faces,
        uvs=torch.from_numpy(uv_points).to(mesh.uvs.dtype),
        uv_faces=uv_faces,
        normals=vertex_normals(v, faces),
        name=mesh.name,
        source_offset=mesh.source_offset,
        source_scale=mesh.source_scale,
    )
    return WeldedMesh(welded, torch.from_numpy(vertex))
