"""Cached per-mesh precomputation used by the geometry-aware rewards.

Every function takes a `GeometryCache` and returns tensors stored
there under a key that names all parameters, so each is computed once per mesh and reused across
runs (on disk).

Every analysis runs on the mesh welded by position (`texkit.geometry.weld`): vertices split along
UV seams (a GLB), by normals (an OBJ) or by how a mesh was built give the same curvature,
directions and symmetry pairs as the welded surface; per-vertex results are mapped back to the
cache's mesh.
"""

from __future__ import annotations

import numpy as np
import torch

from texkit.geometry.cache import GeometryCache
from texkit.geometry.curvature import Curvature, principal_curvatures
from texkit.geometry.directions import smooth_uv_field, uv_direction_field
from texkit.geometry.intrinsic_symmetry import find_intrinsic_symmetry, intrinsic_symmetry_pairs
from texkit.geometry.symmetry import find_symmetry_plane, symmetry_pairs
from texkit.geometry.uv_raster import rasterize_uv
from texkit.geometry.weld import WeldedMesh, weld_by_position

#: Bumped when an algorithm here changes, so that entries cached by an older texkit are recomputed
#: (3: every analysis runs on the mesh welded by position; closest-point ties and texels covered by
#: several UV triangles go to the lowest face index).
_VERSION = 3

#: The intrinsic symmetry's own revision, in its key beside ``_VERSION`` so that only its entries are
#: recomputed when it changes (2: the refinement runs on at most 4,000 farthest-point samples).
_INTRINSIC_REVISION = 2

__all__ = ["curvature", "curvature_maps", "min_curvature_field", "mirror_pairs", "minmax_signed", "welded"]


def welded(cache: GeometryCache) -> WeldedMesh:
    """The cache's mesh welded by position (`weld_by_position`), built once per cache (in memory)."""
    return cache.derived("welded_by_position", lambda: weld_by_position(cache.mesh))


def _welded_curvature(cache: GeometryCache, rings: int) -> Curvature:
    """`principal_curvatures` of the welded mesh, one value per welded vertex, cached."""
    entry = cache.get(f"curvature_v{_VERSION}_r{rings}", lambda: principal_curvatures(welded(cache).mesh, rings=rings).as_dict())
    return Curvature(**entry)


def curvature(cache: GeometryCache, rings: int = 5) -> Curvature:
    """Per-vertex principal curvatures and directions (`principal_curvatures`), cached.

    Computed on the mesh welded by position, so every copy of a split vertex has the value of
    its position, and splits do not change the values.

    Args:
        cache: the mesh's geometry cache.
        rings: neighbourhood size of the quadric fits, in edge rings.

    Returns:
        `Curvature` with ``(V,)`` k_max, k_min and ``(V, 3)`` unit directions (V of ``cache.mesh``).
    """
    weld, curv = welded(cache), _welded_curvature(cache, rings)
    return Curvature(**{name: weld.to_original(value) for name, value in curv.as_dict().items()})


def minmax_signed(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Min-max normalise to [-1, 1] (over ``mask`` when given).

    Args:
        values: any tensor.
        mask: optional bool tensor of the same shape choosing the entries that set min and max.

    Returns:
        ``(values - min) / (max - min) * 2 - 1`` (entries outside ``mask`` may leave [-1, 1]).
    """
    ref = values[mask] if mask is not None else values
    lo, hi = ref.min(), ref.max()
    return (values - lo) / (hi - lo).clamp_min(1e-12) * 2.0 - 1.0


def curvature_maps(cache: GeometryCache, size: int, rings: int = 5) -> dict[str, torch.Tensor]:
    """Curvature rasterised into ``size x size`` texel maps (per-vertex values interpolated with the
    barycentrics of the UV triangle covering each texel centre, `texkit.uv` convention).

    Args:
        cache: the mesh's geometry cache.
        size: texture size T in texels.
        rings: neighbourhood size of the quadric fits.

    Returns:
        dict with ``mask`` (T, T) texels inside the atlas, ``mean`` / ``k_min`` / ``k_max`` (T, T) raw
        curvatures, ``mean_normalized`` (T, T) mean curvature min-max scaled to [-1, 1] over the
        atlas (the method's K), and ``dir_max`` (T, T, 2) the UV direction of maximum curvature.
    """

    def compute() -> dict[str, torch.Tensor]:
        mesh = welded(cache).mesh
        curv = _welded_curvature(cache, rings)
        raster = rasterize_uv(mesh, size)
        mask = raster.mask
        mean = raster.interpolate_vertex(mesh, curv.mean)
        from texkit.geometry.directions import directions_to_uv, from_doubled, to_doubled

        corner = to_doubled(directions_to_uv(mesh, curv.dir_max))  # (F, 3, 2)
        face = raster.face.clamp_min(0)
        dir_max = from_doubled((corner[face] * raster.bary[..., None]).sum(-2)) * mask[..., None]
        return {
            "mask": mask,
            "mean": mean,
            "k_min": raster.interpolate_vertex(mesh, curv.k_min),
            "k_max": raster.interpolate_vertex(mesh, curv.k_max),
            "mean_normalized": minmax_signed(mean, mask) * mask,
            "dir_max": dir_max,
        }

    return cache.get(f"curvature_maps_v{_VERSION}_r{rings}_{size}", compute)


def min_curvature_field(cache: GeometryCache, iterations: int = 500, rings: int = 5, renormalize_every: int = 5) -> dict[str, torch.Tensor]:
    """The smoothed minimum-curvature direction per UV vertex (`smooth_uv_field`).

    Args:
        cache: the mesh's geometry cache.
        iterations: smoothing passes (the reference used 500 for the rabbit, 1000 for the balloon).
        rings: neighbourhood size of the quadric fits.
        renormalize_every: smoothing passes between rescalings to unit length.

    Returns:
        dict with ``uv`` (T, 2) the UV points (those of the welded mesh: equal UVs are one point) and
        ``direction`` (T, 2) unit UV directions (v upward).
    """

    def compute() -> dict[str, torch.Tensor]:
        mesh = welded(cache).mesh
        field = uv_direction_field(mesh, _welded_curvature(cache, rings).dir_min)
        return {"uv": mesh.uvs.clone(), "direction": smooth_uv_field(mesh, field, iterations, renormalize_every)}

    return cache.get(f"min_curvature_field_v{_VERSION}_r{rings}_it{iterations}_n{renormalize_every}", compute)


def mirror_pairs(
    cache: GeometryCache,
    max_distance: float = 0.02,
    max_roundtrip: float = 0.03,
    method: str = "plane",
    basis: int = 60,
) -> dict[str, torch.Tensor]:
    """Mirror-image UV pairs of the mesh, found automatically, cached.

    ``method="plane"``: the reflective symmetry plane (`find_symmetry_plane`) and the pairs it
    makes (`symmetry_pairs`), for meshes symmetric as placed in space. ``method="intrinsic"``:
    the bending-invariant symmetry (`find_intrinsic_symmetry`, Laplace-Beltrami functional
    map started from that plane), for meshes whose pose is not symmetric (a turned head); on a
    mesh of more than 4,000 vertices it prints its stages on stderr (tens of seconds on 2 cores
    for 30k faces), once: later runs read the pairs from the cache.

    Args:
        cache: the mesh's geometry cache.
        max_distance: plane method: reflected vertex to surface distance (relative to the bounding radius).
        max_roundtrip: both methods: reciprocity filter, distance after mapping the match back (relative).
        method: ``"plane"`` or ``"intrinsic"``.
        basis: intrinsic method: number of Laplace-Beltrami eigenfunctions.

    Returns:
        dict with ``uv_a``, ``uv_b`` (P, 2), ``plane`` (4,) = (normal, offset) and ``plane_error`` (1,).
    """
    if method not in ("plane", "intrinsic"):
        raise ValueError(f"unknown symmetry method {method!r}: use 'plane' or 'intrinsic'")

    def compute() -> dict[str, torch.Tensor]:
        mesh = welded(cache).mesh
        plane = find_symmetry_plane(mesh)
        if method == "plane":
            pairs = symmetry_pairs(mesh, plane, max_distance, max_roundtrip)
        else:
            pairs = intrinsic_symmetry_pairs(mesh, find_intrinsic_symmetry(mesh, basis=basis, plane=plane), max_roundtrip)
        return {
            "uv_a": pairs.uv_a,
            "uv_b": pairs.uv_b,
            "plane": torch.from_numpy(np.append(plane.normal, plane.offset)).float(),
            "plane_error": torch.tensor([plane.error]),
        }

    key = f"mirror_pairs_v{_VERSION}_d{max_distance}_r{max_roundtrip}"
    if method == "intrinsic":
        key = f"mirror_pairs_intrinsic_v{_VERSION}.{_INTRINSIC_REVISION}_r{max_roundtrip}_k{basis}"
    return cache.get(key, compute)
