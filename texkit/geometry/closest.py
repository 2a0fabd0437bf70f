"""Closest points on a triangle mesh (vectorised numpy + a k-d tree over face centroids)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["closest_point_on_triangles", "ClosestPointQuery"]


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest point to each ``p`` on triangle ``(a, b, c)`` (Ericson, Real-Time Collision Detection, 5.1.5).

    Args:
        p: ``(N, 3)`` arrays.
        a: ``(N, 3)`` arrays.
        b: ``(N, 3)`` arrays.
        c: ``(N, 3)`` arrays.

    Returns:
        ``(N, 3)`` closest points and ``(N, 3)`` their barycentric coordinates.
    """
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    denom = np.where(np.abs(denom) < 1e-30, 1e-30, denom)
    bary = np.stack((va / denom, vb / denom, vc / denom), -1)  # interior
    eps = 1e-30

    def set_(mask: np.ndarray, values: np.ndarray) -> None:
        bary[mask] = values[mask]

    n = len(p)
    zeros, ones = np.zeros(n), np.ones(n)
    # edge regions
    t_ab = d1 / np.where(np.abs(d1 - d3) < eps, eps, d1 - d3)
    set_((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack((1 - t_ab, t_ab, zeros), -1))
    t_ac = d2 / np.where(np.abs(d2 - d6) < eps, eps, d2 - d6)
    set_((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack((1 - t_ac, zeros, t_ac), -1))
    den_bc = (d4 - d3) + (d5 - d6)
    t_bc = (d4 - d3) / np.where(np.abs(den_bc) < eps, eps, den_bc)
    set_((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), np.stack((zeros, 1 - t_bc, t_bc), -1))
    # vertex regions (checked last so they win)
    set_((d1 <= 0) & (d2 <= 0), np.stack((ones, zeros, zeros), -1))
    set_((d3 >= 0) & (d4 <= d3), np.stack((zeros, ones, zeros), -1))
    set_((d6 >= 0) & (d5 <= d6), np.stack((zeros, zeros, ones), -1))
    point = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    return point, bary


class ClosestPointQuery:
    """Nearest surface points of a fixed mesh.

    A point whose closest surface point lies on an edge or a vertex is as close to every face
    there; such ties (distances equal within `TIE` of the bounding-box diagonal: float noise, such
    as a GLB round trip's, far below it) go to the face of the lowest index, so that the answer
    does not depend on rounding or noise (the faces on the two sides of a UV seam give different
    UVs for the same point).

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` indices.
        candidates: faces (nearest by centroid) examined per query point.
    """

    TIE = 1e-6

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, candidates: int = 16) -> None:
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.faces = np.asarray(faces, dtype=np.int64)
        self.tree = cKDTree(self.vertices[self.faces].mean(axis=1))
        self.candidates = min(candidates, len(self.faces))
        extent = self.vertices.max(axis=0) - self.vertices.min(axis=0) if len(self.vertices) else np.zeros(3)
        self.tie = self.TIE * float(np.linalg.norm(extent))

    def query(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Closest surface points.

        Returns:
            ``(P, 3)`` points, ``(P,)`` distances, ``(P,)`` face indices, ``(P, 3)`` barycentrics.
        """
        points = np.asarray(points, dtype=np.float64)
        _, cand = self.tree.query(points, k=self.candidates)
        cand = cand.reshape(len(points), -1)
        tri = self.vertices[self.faces[cand]]  # (P, k, 3, 3)
        rep = np.repeat(points[:, None, :], cand.shape[1], axis=1).reshape(-1, 3)
        closest, bary = closest_point_on_triangles(rep, tri[..., 0, :].reshape(-1, 3), tri[..., 1, :].reshape(-1, 3), tri[..., 2, :].reshape(-1, 3))
        dist = np.linalg.norm(closest - rep, axis=-1).reshape(len(points), -1)
        tied = dist <= dist.min(axis=1, keepdims=True) + self.tie
        best = np.where(tied, cand, np.iinfo(np.int64).max).argmin(axis=1)  # the lowest face among the closest
        rows = np.arange(len(points))
        closest = closest.reshape(len(points), -1, 3)[rows, best]
        bary = bary.reshape(len(points), -1, 3)[rows, best]
        return closest, dist[rows, best], cand[rows, best], bary
