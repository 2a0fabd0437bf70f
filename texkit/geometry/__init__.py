"""Mesh I/O, UV unwrapping, primitives, and per-mesh geometry (curvature, symmetry) with an on-disk cache."""

from texkit.geometry.mesh import Mesh, vertex_normals

__all__ = ["Mesh", "vertex_normals"]
