"""Meshes built in code: used by tests, the demo and examples (no files needed)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from texkit.geometry.mesh import Mesh, Normalize

__all__ = ["quad", "cube", "uv_sphere", "cylinder", "demo_mesh", "load_mesh", "BUILTIN_MESHES"]


def quad(size: float = 1.0) -> Mesh:
    """A square in the z = 0 plane facing +z, corners at +-size/2, UVs covering [0, 1]^2 (not normalised)."""
    h = size / 2.0
    verts = [[-h, -h, 0.0], [h, -h, 0.0], [h, h, 0.0], [-h, h, 0.0]]
    uvs = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    faces = [[0, 1, 2], [0, 2, 3]]
    return Mesh.from_arrays(verts, faces, uvs, faces, name="quad", normalize="none")


def cube(size: float = 1.0) -> Mesh:
    """An axis-aligned cube (not normalised); side s (in the order +z, -z, +y, -y, +x, -x) maps to UV cell
    (column s % 3, row s // 3 from the bottom) of a 3x2 atlas."""
    h = size / 2.0
    corners = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (-h, h)])
    # each side: 4 corner indices counter-clockwise seen from outside
    sides = [[1, 5, 7, 3], [4, 0, 2, 6], [2, 3, 7, 6], [0, 4, 5, 1], [4, 6, 7, 5], [0, 1, 3, 2]]
    faces, uv_faces, uvs = [], [], []
    for s, quad_idx in enumerate(sides):
        cu, cv = (s % 3) / 3.0, (s // 3) / 2.0
        base = len(uvs)
        uvs += [[cu + 0.02, cv + 0.02], [cu + 1 / 3 - 0.02, cv + 0.02], [cu + 1 / 3 - 0.02, cv + 0.5 - 0.02], [cu + 0.02, cv + 0.5 - 0.02]]
        a, b, c, d = quad_idx
        faces += [[a, b, c], [a, c, d]]
        uv_faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    return Mesh.from_arrays(corners, faces, uvs, uv_faces, name="cube", normalize="none")


def _grid_surface(n_u: int, n_v: int, point, name: str, closed_u: bool, normalize: str = "none") -> Mesh:
    """Triangulate a parametric surface ``point(s, t) -> (x, y, z)`` on [0,1]^2 with UV = (s, t).

    When ``closed_u``, the seam at s = 1 reuses the s = 0 positions (separate UVs).
    """
    n_pos_u = n_u if closed_u else n_u + 1
    verts = [point(i / n_u, j / n_v) for j in range(n_v + 1) for i in range(n_pos_u)]
    uvs = [[i / n_u, j / n_v] for j in range(n_v + 1) for i in range(n_u + 1)]
    faces, uv_faces = [], []
    for j in range(n_v):
        for i in range(n_u):
            i1 = (i + 1) % n_pos_u
            a, b, c, d = j * n_pos_u + i, j * n_pos_u + i1, (j + 1) * n_pos_u + i1, (j + 1) * n_pos_u + i
            ua, ub, uc, ud = j * (n_u + 1) + i, j * (n_u + 1) + i + 1, (j + 1) * (n_u + 1) + i + 1, (j + 1) * (n_u + 1) + i
            faces += [[a, b, c], [a, c, d]]
            uv_faces += [[ua, ub, uc], [ua, uc, ud]]
    verts_arr = np.asarray(verts, dtype=np.float64)
    faces_arr = np.asarray(faces, dtype=np.int64)
    # weld duplicate positions (poles) so the surface is connected
    uniq, inverse = np.unique(np.round(verts_arr, 12), axis=0, return_inverse=True)
    faces_arr = inverse.reshape(-1)[faces_arr]
    keep = (faces_arr[:, 0] != faces_arr[:, 1]) & (faces_arr[:, 1] != faces_arr[:, 2]) & (faces_arr[:, 0] != faces_arr[:, 2])
    return Mesh.from_arrays(uniq, faces_arr[keep], uvs, np.asarray(uv_faces)[keep], name=name, normalize=normalize)


def uv_sphere(radius: float = 1.0, n_lon: int = 48, n_lat: int = 24) -> Mesh:
    """A latitude/longitude sphere (not normalised) with an equirectangular UV map (seam at the back)."""

    def point(s: float, t: float) -> list[float]:
        lon, lat = 2 * math.pi * s, math.pi * (t - 0.5)
        return [radius * math.cos(lat) * -math.sin(lon), radius * math.sin(lat), radius * math.cos(lat) * -math.cos(lon)]

    return _grid_surface(n_lon, n_lat, point, "sphere", closed_u=True)


def cylinder(radius: float = 0.5, height: float = 2.0, n_around: int = 48, n_along: int = 24) -> Mesh:
    """An open cylinder along the y axis (not normalised); UV u goes around, v along the axis."""

    def point(s: float, t: float) -> list[float]:
        ang = 2 * math.pi * s
        return [radius * -math.sin(ang), height * (t - 0.5), radius * -math.cos(ang)]

    return _grid_surface(n_around, n_along, point, "cylinder", closed_u=True)


def demo_mesh(n_lon: int = 64, n_lat: int = 32) -> Mesh:
    """The built-in demo mesh: a bumpy, mirror-symmetric (x -> -x) 'gourd' with concave and
    convex regions, normalised into the unit sphere. Small enough to train on a CPU."""

    def point(s: float, t: float) -> list[float]:
        lon, lat = 2 * math.pi * s, math.pi * (t - 0.5)
        r = 1.0 + 0.18 * math.cos(3 * lat) + 0.12 * math.cos(2 * lon) * math.cos(lat) ** 2
        r *= 1.0 - 0.25 * math.sin(lat)
        return [r * math.cos(lat) * -math.sin(lon), 1.2 * r * math.sin(lat), r * math.cos(lat) * -math.cos(lon)]

    return _grid_surface(n_lon, n_lat, point, "demo", closed_u=True, normalize="unit_sphere")


#: Meshes available by name wherever a mesh path is accepted (configs, CLI).
BUILTIN_MESHES = {"demo": demo_mesh, "sphere": uv_sphere, "cylinder": cylinder, "cube": cube}


def load_mesh(spec: str, normalize: Normalize = "unit_sphere", notify: Callable[[str], None] | None = None) -> Mesh:
    """A built-in mesh by name (``demo``, ``sphere``, ``cylinder``, ``cube``) or a mesh file path.

    Args:
        spec: built-in name or file path.
        normalize: ``"unit_sphere"``, ``"extent"`` or ``"none"`` (see `Mesh.from_arrays`);
            built-in meshes are normalised the same way as loaded files.
        notify: receives one-line notices about the file's own texture (see `Mesh.load`);
            built-in meshes have no texture (``texture`` is None).
    """
    if spec in BUILTIN_MESHES:
        mesh = BUILTIN_MESHES[spec]()
        if spec != "demo" or normalize != "unit_sphere":
            mesh = Mesh.from_arrays(mesh.vertices, mesh.faces, mesh.uvs, mesh.uv_faces, name=spec, normalize=normalize)
        return mesh
    return Mesh.load(spec, normalize, notify)
