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

__all__ = ["SymmetryPlane", "find_symmetry_plane", "SymmetryPairs", "symmetry_pairs", "vertex_uvs"]


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


def _refine(
    pts: np.ndarray, verts: np.ndarray, tree: cKDTree, normal: np.ndarray, offset: float, scale: float, iterations: int, trim: float
) -> tuple[np.ndarray, float]:
    """Trimmed ICP on the plane: reflect, match to the nearest vertices, keep the best ``trim``
    fraction of matches, re-fit the bisecting plane of the kept pairs."""
    for _ in range(iterations):
        mirrored = SymmetryPlane(normal, offset, 0.0).reflect(pts)
        dist, match = tree.query(mirrored)
        partner = verts[match]
        kept = dist <= np.quantile(dist, trim)
        diff = pts[kept] - partner[kept]  # for a perfect pair, parallel to the normal
        mid = 0.5 * (pts[kept] + partner[kept])
        long = np.linalg.norm(diff, axis=1) > 1e-6 * scale
        if long.sum() < 3:
            break
        signs = np.sign(diff[long] @ normal)[:, None]
        _, _, vt = np.linalg.svd(diff[long] * signs, full_matrices=False)
        new_normal = vt[0] * np.sign(vt[0] @ normal)
        new_normal /= np.linalg.norm(new_normal)
        new_offset = float(new_normal @ mid.mean(axis=0))
        done = np.abs(new_normal - normal).max() < 1e-7 and abs(new_offset - offset) < 1e-7 * scale
        normal, offset = new_normal, new_offset
        if done:
            break
    return normal, offset


def find_symmetry_plane(
    mesh: Mesh,
    iterations: int = 20,
    sample: int = 2000,
    directions: int = 300,
    refine: int = 4,
    trim: float = 0.8,
) -> SymmetryPlane:
    """Find the mesh's best reflective symmetry plane automatically (no plane given by hand).

    1. Candidate normals: the three principal axes (PCA), the coordinate axes and ``directions``
       normals spread evenly over the hemisphere; each is tried through the vertex centroid and
       through the bounding-box centre, scored by the mean distance from the reflected sample
       vertices to the nearest vertex (fast).
    2. The ``refine`` best distinct candidates are refined by trimmed ICP (reflect, match to the
       closest surface points, drop the worst ``1 - trim`` matches as asymmetric parts, re-fit the
       bisecting plane) and scored by the mean distance from the reflected vertices to the surface.
    3. The best-scoring plane wins (a refinement that scores worse than its start is discarded).

    Args:
        mesh: the mesh.
        iterations: ICP refinement steps per candidate.
        sample: vertices used for fitting and scoring (an even subset on large meshes).
        directions: candidate normals spread over the hemisphere, besides PCA and coordinate axes.
        refine: how many of the best coarse candidates are refined.
        trim: fraction of matches (the closest) that the ICP fit uses, in (0, 1].

    Returns:
        The `SymmetryPlane`; its ``error`` (relative to the bounding radius) is about 0 for
        an exactly mirror-symmetric mesh and grows with asymmetry.
    """
    verts = mesh.vertices.detach().double().cpu().numpy()
    query = ClosestPointQuery(verts, mesh.faces.cpu().numpy())
    pts = verts[np.linspace(0, len(verts) - 1, min(sample, len(verts))).astype(int)]
    centroid = verts.mean(axis=0)
    box_centre = 0.5 * (verts.min(axis=0) + verts.max(axis=0))
    scale = float(np.linalg.norm(verts - centroid, axis=1).max())
    _, _, axes = np.linalg.svd(verts - centroid, full_matrices=False)
    normals = np.concatenate([axes, np.eye(3), _fibonacci_hemisphere(directions)])
    normals *= np.where(normals[:, 2:] < 0, -1.0, 1.0)  # n and -n are the same plane
    tree = cKDTree(verts)
    coarse = pts[:: max(1, len(pts) // 600)]
    candidates = []
    for normal in normals:
        for centre in (centroid, box_centre):
            offset = float(normal @ centre)
            coarse_score = float(tree.query(SymmetryPlane(normal, offset, 0.0).reflect(coarse))[0].mean())
            candidates.append((coarse_score, normal, offset))
    candidates.sort(key=lambda c: c[0])
    chosen: list[tuple[np.ndarray, float]] = []
    for _, normal, offset in candidates:  # the best candidates at least 10 degrees apart
        if all(abs(normal @ other) < np.cos(np.radians(10.0)) for other, _ in chosen):
            chosen.append((normal, offset))
        if len(chosen) == refine:
            break
    best = None
    for normal, offset in chosen:
        start = _score(pts, query, normal, offset, scale)
        ref_normal, ref_offset = _refine(pts, verts, tree, normal, offset, scale, iterations, trim)
        refined = _score(pts, query, ref_normal, ref_offset, scale)
        option = (refined, ref_normal, ref_offset) if refined <= start else (start, normal, offset)
        if best is None or option[0] < best[0]:
            best = option
    error, normal, offset = best
    return SymmetryPlane(normal, offset, float(error))


def vertex_uvs(mesh: Mesh) -> np.ndarray:
    """One UV per vertex: that of the vertex's first face corner (a seam vertex has several).

    Returns:
        ``(V, 2)`` float64 UVs.
    """
    faces, uv_faces = mesh.faces.cpu().numpy(), mesh.uv_faces.cpu().numpy()
    out = np.zeros((mesh.num_vertices, 2))
    # reversed, so that the first corner of each vertex is the last write and wins
    out[faces.reshape(-1)[::-1]] = mesh.uvs.detach().double().cpu().numpy()[uv_faces.reshape(-1)[::-1]]
    return out


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
        plane: the mirror plane (found with `find_symmetry_plane` when None).
        max_distance: keep pairs whose reflected vertex lies within this distance of the surface
            (relative to the bounding radius).
        max_roundtrip: keep pairs whose match, reflected back, lands within this distance of the
            vertex (reciprocity).

    Returns:
        `SymmetryPairs`: one pair per kept vertex, its own UV (of one face corner) and the
        UV of its mirror image (interpolated in the UV triangle of the closest surface point).
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
    corner_uv = vertex_uvs(mesh)
    idx = np.nonzero(keep)[0]
    return SymmetryPairs(
        torch.from_numpy(corner_uv[idx]).float(),
        torch.from_numpy(uv_b[idx]).float(),
        torch.from_numpy(idx),
        torch.from_numpy(rel[idx]).float(),
    )
