"""Automatic reflective symmetry: the mirror plane of a mesh and mirror-image UV pairs.

Plane search: candidate planes through the centroid with the principal axes (PCA) and the
coordinate axes as normals are scored by the mean distance from the reflected vertices to the
surface; the best is refined ICP-style (reflect, match each vertex to its nearest reflected
counterpart, re-fit the bisecting plane). Pairs: every vertex is reflected, its closest surface
point is found, and the UV there (interpolated in the face's UV triangle) is its mirror UV. Pairs
are kept when the reflected point lies close to the surface *and* reflecting the match back lands
near the vertex again (reciprocity) — the confidence filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from texkit.geometry.closest import ClosestPointQuery
from texkit.geometry.mesh import Mesh

__all__ = ["SymmetryPlane", "find_symmetry_plane", "SymmetryPairs", "symmetry_pairs"]


@dataclass
class SymmetryPlane:
    """The plane n . x = d (|n| = 1) and how well the mesh matches its reflection.

    Attributes:
        normal: ``(3,)`` unit normal.
        offset: d.
        error: mean distance from reflected vertices to the surface, relative to the mesh's bounding radius.
    """

    normal: np.ndarray
    offset: float
    error: float

    def reflect(self, points: np.ndarray) -> np.ndarray:
        """Mirror ``(N, 3)`` points across the plane."""
        dist = points @ self.normal - self.offset
        return points - 2.0 * dist[:, None] * self.normal[None, :]


def _score(verts: np.ndarray, query: ClosestPointQuery, normal: np.ndarray, offset: float, scale: float) -> float:
    plane = SymmetryPlane(normal, offset, 0.0)
    _, dist, _, _ = query.query(plane.reflect(verts))
    return float(dist.mean() / scale)


def _fibonacci_hemisphere(n: int) -> np.ndarray:
    """``(n, 3)`` nearly uniform unit directions on the upper hemisphere (a plane normal and its negative are the same plane)."""
    i = np.arange(n) + 0.5
    z = 1.0 - i / n
    phi = np.pi * (1.0 + 5.0**0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack((r * np.cos(phi), r * np.sin(phi), z), axis=1)


def find_symmetry_plane(mesh: Mesh, iterations: int = 30, sample: int = 4000, directions: int = 300) -> SymmetryPlane:
    """Find the mesh's best reflective symmetry plane automatically.

    Args:
        mesh: the mesh.
        iterations: ICP refinement steps.
        directions: extra candidate normals spread over the hemisphere (besides PCA and coordinate axes).
        sample: vertices used for scoring (a deterministic subset on large meshes).
    """
    verts = mesh.vertices.detach().double().cpu().numpy()
    query = ClosestPointQuery(verts, mesh.faces.cpu().numpy())
    pts = verts[np.linspace(0, len(verts) - 1, min(sample, len(verts))).astype(int)]
    centroid = verts.mean(axis=0)
    scale = float(np.linalg.norm(verts - centroid, axis=1).max())
    _, _, axes = np.linalg.svd(verts - centroid, full_matrices=False)
    candidates = [axes[i] for i in range(3)] + [np.eye(3)[i] for i in range(3)] + list(_fibonacci_hemisphere(directions))
    tree = cKDTree(verts)
    coarse = pts[:: max(1, len(pts) // 800)]
    # coarse score (nearest vertex) for every candidate, then the surface score for the best few
    coarse_scores = [float(tree.query(SymmetryPlane(n, float(n @ centroid), 0.0).reflect(coarse))[0].mean()) for n in candidates]
    best = np.argsort(coarse_scores)[:6]
    scored = [(_score(pts, query, candidates[i], float(candidates[i] @ centroid), scale), candidates[i]) for i in best]
    _, normal = min(scored, key=lambda s: s[0])
    offset = float(normal @ centroid)
    for _ in range(iterations):
        mirrored = SymmetryPlane(normal, offset, 0.0).reflect(pts)
        _, match = tree.query(mirrored)
        partner = verts[match]
        diff = pts - partner  # for a perfect pair, parallel to the normal
        diff = diff[np.linalg.norm(diff, axis=1) > 1e-9 * scale]
        if len(diff) < 3:
            break
        signs = np.sign(diff @ normal)[:, None]
        _, _, vt = np.linalg.svd(diff * signs, full_matrices=False)
        new_normal = vt[0] * np.sign(vt[0] @ normal)
        new_offset = float(new_normal @ ((pts + partner) / 2.0).mean(axis=0))
        if np.allclose(new_normal, normal, atol=1e-7) and abs(new_offset - offset) < 1e-7 * scale:
            break
        normal, offset = new_normal / np.linalg.norm(new_normal), new_offset
    return SymmetryPlane(normal, offset, _score(pts, query, normal, offset, scale))


@dataclass
class SymmetryPairs:
    """Mirror-image UV pairs.

    Attributes:
        uv_a: ``(P, 2)`` UV of a vertex (of one of its face corners).
        uv_b: ``(P, 2)`` UV of the mirror image of that vertex on the surface.
        vertex: ``(P,)`` the vertex index of each pair.
        distance: ``(P,)`` distance of the reflected vertex to the surface (relative to the bounding radius).
    """

    uv_a: torch.Tensor
    uv_b: torch.Tensor
    vertex: torch.Tensor
    distance: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Tensors by name (for the geometry cache)."""
        return {"uv_a": self.uv_a, "uv_b": self.uv_b, "vertex": self.vertex, "distance": self.distance}


def symmetry_pairs(mesh: Mesh, plane: SymmetryPlane | None = None, max_distance: float = 0.02, max_roundtrip: float = 0.03) -> SymmetryPairs:
    """Pairs of mirror-image UV points of a mesh, filtered by confidence.

    Args:
        mesh: the mesh.
        plane: the mirror plane (found with :func:`find_symmetry_plane` when None).
        max_distance: keep pairs whose reflected vertex lies within this distance of the surface
            (relative to the bounding radius).
        max_roundtrip: keep pairs whose match, reflected back, lands within this distance of the
            vertex (reciprocity).
    """
    plane = plane or find_symmetry_plane(mesh)
    verts = mesh.vertices.detach().double().cpu().numpy()
    faces = mesh.faces.cpu().numpy()
    uvs = mesh.uvs.detach().double().cpu().numpy()
    uv_faces = mesh.uv_faces.cpu().numpy()
    scale = float(np.linalg.norm(verts - verts.mean(0), axis=1).max())
    query = ClosestPointQuery(verts, faces)
    mirrored = plane.reflect(verts)
    hit, dist, face, bary = query.query(mirrored)
    back, _, _, _ = query.query(plane.reflect(hit))
    roundtrip = np.linalg.norm(back - verts, axis=1) / scale
    rel = dist / scale
    keep = (rel < max_distance) & (roundtrip < max_roundtrip)
    uv_b = (uvs[uv_faces[face]] * bary[..., None]).sum(axis=1)
    # a vertex's own UV: that of its first face corner
    corner_uv = np.zeros((len(verts), 2))
    flat_v, flat_t = faces.reshape(-1)[::-1], uv_faces.reshape(-1)[::-1]
    corner_uv[flat_v] = uvs[flat_t]
    idx = np.nonzero(keep)[0]
    return SymmetryPairs(
        torch.from_numpy(corner_uv[idx]).float(),
        torch.from_numpy(uv_b[idx]).float(),
        torch.from_numpy(idx),
        torch.from_numpy(rel[idx]).float(),
    )
