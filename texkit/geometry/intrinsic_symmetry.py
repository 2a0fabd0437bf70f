"""Intrinsic (bending-invariant) reflective symmetry: a self-map of the mesh's vertices.

A mirror plane (`texkit.geometry.symmetry`) only pairs points of a mesh that is symmetric *as
placed in space*. A rabbit that turns its head, a cow with one leg forward, are symmetric only
*intrinsically*: some map T of the surface onto itself preserves geodesic distances and swaps the
two sides. This module finds that map with the Laplace-Beltrami spectrum:

1. The cotangent Laplacian L and the lumped mass matrix M (Pinkall & Polthier 1993; Meyer et al.
   2003) give the first K eigenpairs L phi = lambda M phi. An isometry T maps each eigenfunction of a
   simple eigenvalue to plus or minus itself (Ovsjanikov, Sun & Guibas 2008, "Global intrinsic
   symmetries of shapes"), so in the spectral basis T is a near-diagonal functional map C with
   C_ij = <phi_i, phi_j o T>_M (Ovsjanikov et al. 2012, "Functional maps").
2. Start: the map of the automatically found mirror plane (reflect each vertex, take the nearest
   vertex): rough on a bent shape, but on the correct side of each antisymmetric eigenfunction.
3. Refine by spectral upsampling (ZoomOut, Melzi et al. 2019): with k basis functions, C from the
   current map, then the new map T(p) = the vertex q whose spectral coordinates phi_1..k(q) are
   nearest to phi_1..k(p) C; k grows to K.
4. Confidence: a reflection is an involution, so a pair is kept when T(T(p)) lands back near p
   (reciprocity) and p's spectral coordinates are well matched.

Cost: the eigenfunctions are always those of the full mesh, but on a large mesh the refinement
(one nearest-neighbour search in k dimensions per pass, quadratic in the number of points) runs on
a few thousand farthest-point samples (Eldar, Lindenbaum, Porat & Zeevi 1997, "The farthest point
strategy for progressive image sampling"), with the inner products weighted by the area of each
sample's Voronoi cell; the final functional map is then applied once at full resolution, which
carries the map to every vertex (ZoomOut itself refines on a subsample and upsamples the
final map, Melzi et al. 2019, section 4). A mesh of up to ``samples`` vertices is refined on all of
them, exactly as without sampling. Such a mesh prints its stages on stderr (`notice`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh
from scipy.spatial import cKDTree

from texkit.geometry.disk_cache import notice
from texkit.geometry.mesh import Mesh
from texkit.geometry.symmetry import SymmetryPairs, SymmetryPlane, find_symmetry_plane, vertex_uvs

__all__ = [
    "cotangent_laplacian",
    "laplace_beltrami_basis",
    "IntrinsicSymmetry",
    "farthest_point_samples",
    "find_intrinsic_symmetry",
    "intrinsic_symmetry_pairs",
]


def cotangent_laplacian(vertices: np.ndarray, faces: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Cotangent stiffness matrix and lumped (barycentric) mass matrix of a triangle mesh.

    ``L_ij = -(cot a_ij + cot b_ij) / 2`` for an edge ij with opposite angles a_ij, b_ij, and
    ``L_ii = -sum_j L_ij``, so L is symmetric positive semi-definite with L 1 = 0;
    ``M_ii`` = one third of the area of the faces around vertex i.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices.

    Returns:
        ``(L, M)``: ``(V, V)`` sparse matrices.
    """
    n = len(vertices)
    corners = vertices[faces]  # (F, 3, 3)
    cots = np.empty((len(faces), 3))
    for k in range(3):  # angle at corner k, opposite the edge (k+1, k+2)
        a = corners[:, (k + 1) % 3] - corners[:, k]
        b = corners[:, (k + 2) % 3] - corners[:, k]
        cross = np.linalg.norm(np.cross(a, b), axis=1)
        cots[:, k] = (a * b).sum(1) / np.maximum(cross, 1e-12)
    rows = np.concatenate([faces[:, (k + 1) % 3] for k in range(3)])
    cols = np.concatenate([faces[:, (k + 2) % 3] for k in range(3)])
    weights = 0.5 * cots.T.reshape(-1)
    off = sp.coo_matrix((-weights, (rows, cols)), shape=(n, n))
    off = off + off.T
    stiffness = off - sp.diags(np.asarray(off.sum(axis=1)).ravel())
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    mass = np.bincount(faces.reshape(-1), weights=np.repeat(area / 3.0, 3), minlength=n)
    return stiffness.tocsr(), sp.diags(np.maximum(mass, 1e-12)).tocsr()


def laplace_beltrami_basis(
    vertices: np.ndarray, faces: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """The ``count`` smallest eigenpairs of the generalised problem L phi = lambda M phi.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices.
        count: number of eigenpairs (the constant function included).

    Returns:
        ``(lambdas (count,), phi (V, count), M)``, eigenvalues ascending, eigenvectors M-orthonormal.
    """
    stiffness, mass = cotangent_laplacian(vertices, faces)
    count = min(count, len(vertices) - 2)
    values, vectors = eigsh(stiffness, k=count, M=mass, sigma=-1e-6, which="LM")
    order = np.argsort(values)
    return values[order], vectors[:, order], mass


def _nearest_reflection(fmap: np.ndarray) -> np.ndarray:
    """The symmetric orthogonal involution (C = C^T, C^2 = I) nearest to ``fmap`` (k, k).

    An intrinsic reflection T is an isometry (so C is orthogonal) and an involution (T o T = id, so
    C^2 = I); both together make C symmetric with eigenvalues +-1. The projection symmetrises C and
    replaces each eigenvalue by its sign.
    """
    values, vectors = np.linalg.eigh(0.5 * (fmap + fmap.T))
    return (vectors * np.where(values >= 0, 1.0, -1.0)) @ vectors.T


@dataclass
class IntrinsicSymmetry:
    """An intrinsic reflective symmetry as a vertex-to-vertex map.

    Attributes:
        target: ``(V,)`` T(p), the vertex index each vertex maps to.
        roundtrip: ``(V,)`` distance from p to T(T(p)), relative to the bounding radius (0 for a perfect involution).
        spectral_error: ``(V,)`` distance between phi(p) C and phi(T(p)) in the final basis, relative to its median.
        plane: the mirror plane the map started from.
    """

    target: np.ndarray
    roundtrip: np.ndarray
    spectral_error: np.ndarray
    plane: SymmetryPlane


def _nearest_rows(
    queries: np.ndarray, points: np.ndarray, block_entries: int = 1 << 22
) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest neighbours by brute force, in blocks of queries.

    In the tens of dimensions of a spectral embedding a k-d tree visits nearly every point, so one
    matrix product per block (``|q - p|^2 = |q|^2 - 2 q.p + |p|^2``) is several times faster.

    Args:
        queries: ``(Q, k)`` points to look up.
        points: ``(P, k)`` candidates.
        block_entries: at most this many distances are held at once (``Q_block * P``).

    Returns:
        ``(distance (Q,), index (Q,))``: the Euclidean distance to, and the row of, the nearest point.
    """
    sq_points = np.einsum("ij,ij->i", points, points)
    index = np.empty(len(queries), dtype=np.int64)
    dist = np.empty(len(queries))
    rows = max(1, block_entries // max(1, len(points)))
    for lo in range(0, len(queries), rows):
        block = queries[lo : lo + rows]
        scores = block @ points.T
        scores *= -2.0
        scores += sq_points  # |q - p|^2 - |q|^2
        best = scores.argmin(axis=1)
        index[lo : lo + rows] = best
        sq = scores[np.arange(len(block)), best] + np.einsum("ij,ij->i", block, block)
        dist[lo : lo + rows] = np.sqrt(np.maximum(sq, 0.0))
    return dist, index


def farthest_point_samples(points: np.ndarray, count: int) -> np.ndarray:
    """Farthest-point sampling (Eldar et al. 1997): each new sample is the point farthest from the chosen ones.

    Deterministic: the first sample is the point farthest from the centroid.

    Args:
        points: ``(N, 3)`` positions.
        count: number of samples.

    Returns:
        ``(min(count, N),)`` row indices, all of ``range(N)`` in order when ``count >= N``.
    """
    if count >= len(points):
        return np.arange(len(points))
    columns = [np.ascontiguousarray(points[:, axis]) for axis in range(3)]  # contiguous: 8x faster than (N, 3) rows

    def squared_distance_to(point: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        np.subtract(columns[0], point[0], out=out)
        np.multiply(out, out, out=out)
        for axis in (1, 2):
            np.subtract(columns[axis], point[axis], out=scratch)
            np.multiply(scratch, scratch, out=scratch)
            np.add(out, scratch, out=out)
        return out

    chosen = np.empty(count, dtype=np.int64)
    dist, scratch = np.empty(len(points)), np.empty(len(points))
    chosen[0] = int(np.argmax(squared_distance_to(points.mean(axis=0), dist, scratch)))
    dist.fill(np.inf)
    step = np.empty(len(points))
    for i in range(count):
        if i:
            chosen[i] = int(np.argmax(dist))
        np.minimum(dist, squared_distance_to(points[chosen[i]], step, scratch), out=dist)
    return chosen


def _zoomout(
    phi: np.ndarray, weights: np.ndarray, target: np.ndarray, sizes: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Involution-projected ZoomOut on a point set (all vertices, or samples).

    Args:
        phi: ``(S, K)`` eigenfunctions at the points.
        weights: ``(S,)`` area of each point (the lumped mass, or a sample's Voronoi cell).
        target: ``(S,)`` the initial map, an index into the points.
        sizes: basis sizes of the passes, increasing, the last K.

    Returns:
        ``(fmap (K, K), target (S,), spectral_error (S,))`` of the last pass.
    """
    spectral_error = np.zeros(len(phi))
    fmap = np.eye(phi.shape[1])
    for k in sizes:
        basis_k = phi[:, :k]
        fmap = _nearest_reflection(basis_k.T @ (weights[:, None] * basis_k[target]))  # C_ij = <phi_i, phi_j o T>_M
        spectral_error, target = _nearest_rows(basis_k @ fmap, basis_k)
    return fmap, target, spectral_error


def _voronoi_weights(verts: np.ndarray, samples: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """``(S,)`` area of the vertices nearest to each sample (their lumped masses summed)."""
    owner = cKDTree(verts[samples]).query(verts)[1]
    return np.bincount(owner, weights=mass, minlength=len(samples))


def _basis_sizes(start: int, count: int, step: int) -> list[int]:
    """The ZoomOut basis sizes ``start, start + step, ...``, ending with ``count``."""
    sizes = list(range(min(start, count), count + 1, step))
    if sizes[-1] != count:
        sizes.append(count)
    return sizes


def find_intrinsic_symmetry(
    mesh: Mesh,
    basis: int = 60,
    start: int = 6,
    step: int = 2,
    plane: SymmetryPlane | None = None,
    samples: int = 4000,
    verbose: bool | None = None,
) -> IntrinsicSymmetry:
    """Find the mesh's intrinsic reflective symmetry (see the module docstring for the method).

    Args:
        mesh: the mesh.
        basis: K, the largest number of Laplace-Beltrami eigenfunctions used (constant excluded).
        start: the number the ZoomOut refinement starts with.
        step: how many are added per refinement pass.
        plane: the mirror plane of the initial map (found with `find_symmetry_plane` when None).
        samples: the refinement runs on this many farthest-point samples when the mesh has more
            vertices, then the final map is applied to every vertex.
        verbose: print each stage on stderr; None: when the mesh has more than ``samples`` vertices.

    Returns:
        `IntrinsicSymmetry`.
    """
    verts = mesh.vertices.detach().double().cpu().numpy()
    faces = mesh.faces.cpu().numpy()
    say = _stage_printer(len(verts), verbose if verbose is not None else len(verts) > samples)
    say(f"mirror plane and Laplace-Beltrami basis ({basis + 1} eigenfunctions)")
    plane = plane or find_symmetry_plane(mesh)
    scale = float(np.linalg.norm(verts - verts.mean(0), axis=1).max())
    _, phi, mass = laplace_beltrami_basis(verts, faces, basis + 1)
    phi = phi[:, 1:]  # the constant function maps to itself under any map
    chosen = farthest_point_samples(verts, samples)
    sizes = _basis_sizes(start, phi.shape[1], step)
    say(f"ZoomOut refinement on {len(chosen):,} samples ({len(sizes)} passes)")
    weights = mass.diagonal() if len(chosen) == len(verts) else _voronoi_weights(verts, chosen, mass.diagonal())
    start_map = cKDTree(verts[chosen]).query(plane.reflect(verts[chosen]))[1]
    fmap, target, spectral_error = _zoomout(phi[chosen], weights, start_map, sizes)
    if len(chosen) < len(verts):
        say(f"map of all {len(verts):,} vertices")
        spectral_error, target = _nearest_rows(phi @ fmap, phi)
    roundtrip = np.linalg.norm(verts[target[target]] - verts, axis=1) / scale
    spectral_error = spectral_error / max(float(np.median(spectral_error)), 1e-12)
    say("done")
    return IntrinsicSymmetry(target, roundtrip, spectral_error, plane)


def _stage_printer(vertices: int, enabled: bool) -> Callable[[str], None]:
    """``say(stage)``: one stderr line per stage with the seconds since the first (no-op when not enabled)."""
    begin = time.perf_counter()

    def say(stage: str) -> None:
        if enabled:
            notice(f"intrinsic symmetry of {vertices:,} vertices: {stage} ({time.perf_counter() - begin:.0f} s) ...")

    return say


def intrinsic_symmetry_pairs(
    mesh: Mesh,
    symmetry: IntrinsicSymmetry | None = None,
    max_roundtrip: float = 0.03,
    max_spectral_error: float = 3.0,
) -> SymmetryPairs:
    """Mirror-image UV pairs from the intrinsic symmetry, filtered by confidence.

    Args:
        mesh: the mesh.
        symmetry: the vertex map (found with `find_intrinsic_symmetry` when None).
        max_roundtrip: keep a vertex p when T(T(p)) lies within this distance of p (relative to the
            bounding radius): reciprocity.
        max_spectral_error: keep a vertex when its spectral match error is at most this many times the median.

    Returns:
        `SymmetryPairs` with one pair per kept vertex: the UV of one of its face corners and
        the UV of one face corner of T(p); ``distance`` holds the roundtrip distance.
    """
    symmetry = symmetry or find_intrinsic_symmetry(mesh)
    corner_uv = vertex_uvs(mesh)
    keep = (symmetry.roundtrip < max_roundtrip) & (symmetry.spectral_error <= max_spectral_error)
    idx = np.nonzero(keep)[0]
    return SymmetryPairs(
        torch.from_numpy(corner_uv[idx]).float(),
        torch.from_numpy(corner_uv[symmetry.target[idx]]).float(),
        torch.from_numpy(idx),
        torch.from_numpy(symmetry.roundtrip[idx]).float(),
    )
