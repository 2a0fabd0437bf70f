"""Mesh I/O, UV unwrapping, primitives, and per-mesh geometry (curvature, symmetry) with an on-disk cache.

The names in ``__all__`` are public API for plugins (guarded by tests/test_public_api.py). The
precomputations (curvature maps, direction fields, symmetry pairs) are imported on first use, so
``import texkit`` stays light.
"""

from __future__ import annotations

from typing import Any

from texkit.geometry.cache import GeometryCache
from texkit.geometry.mesh import Mesh, vertex_normals

_PRECOMPUTE = {
    # public name -> name in texkit.geometry.precompute ("curvature" is also a submodule's name)
    "mesh_curvature": "curvature",
    "curvature_maps": "curvature_maps",
    "min_curvature_field": "min_curvature_field",
    "mirror_pairs": "mirror_pairs",
    "minmax_signed": "minmax_signed",
}

__all__ = ["GeometryCache", "Mesh", "vertex_normals", *_PRECOMPUTE]


def __getattr__(name: str) -> Any:
    """The cached precomputations, imported on first use (`texkit.geometry.precompute`)."""
    if name in _PRECOMPUTE:
        from texkit.geometry import precompute

        return getattr(precompute, _PRECOMPUTE[name])
    raise AttributeError(f"module 'texkit.geometry' has no attribute '{name}'")
