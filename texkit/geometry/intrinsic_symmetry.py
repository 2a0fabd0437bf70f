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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh
from scipy.spatial import cKDTree

from texkit.geometry.mesh import Mesh
from texkit.geometry.symmetry import SymmetryPairs, SymmetryPlane, find_symmetry_plane, vertex_uvs

__all__ = [
    "cotangent_laplacian",
    "laplace_beltrami_basis",
    "IntrinsicSymmetry",
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


def find_intrinsic_symmetry(
    mesh: Mesh,
    basis: int = 60,
    start: int = 6,
    step: int = 2,
    plane: SymmetryPlane | None = None,
) -> IntrinsicSymmetry:
    """Find the mesh's intrinsic reflective symmetry (see the module docstring for the method).

    Args:
        mesh: the mesh.
        basis: K, the largest number of Laplace-Beltrami eigenfunctions used (constant excluded).
        start: the number the ZoomOut refinement starts with.
        step: how many are added per refinement pass.
        plane: the mirror plane of the initial map (found with `find_symmetry_plane` when None).

    Returns:
        `IntrinsicSymmetry`.
    """
    verts = mesh.vertices.detach().double().cpu().numpy()
    faces = mesh.faces.cpu().numpy()
    plane = plane or find_symmetry_plane(mesh)
    scale = float(np.linalg.norm(verts - verts.mean(0), axis=1).max())
    _, phi, mass = laplace_beltrami_basis(verts, faces, basis + 1)
    phi = phi[:, 1:]  # the constant function maps to itself under any map
    target = cKDTree(verts).query(plane.reflect(verts))[1]
    sizes = list(range(min(start, phi.shape[1]), phi.shape[1] + 1, step))
    if sizes[-1] != phi.shape[1]:
        sizes.append(phi.shape[1])
    for k in sizes:
        basis_k = phi[:, :k]
        fmap = _nearest_reflection(basis_k.T @ (mass @ basis_k[target]))  # C_ij = <phi_i, phi_j o T>_M
        spectral_error, target = cKDTree(basis_k).query(basis_k @ fmap)
    roundtrip = np.linalg.norm(verts[target[target]] - verts, axis=1) / scale
    spectral_error = spectral_error / max(float(np.median(spectral_error)), 1e-12)
    return IntrinsicSymmetry(target, roundtrip, spectral_error, plane)


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
