"""The cached precomputation: texel maps with known values, disk caching keyed by the mesh hash."""

from __future__ import annotations

import torch

import texkit
from texkit.geometry import precompute
from texkit.geometry.primitives import cylinder, demo_mesh


def test_curvature_texel_maps_of_a_cylinder():
    radius = 0.5
    mesh = cylinder(radius, 2.0, 96, 48)
    maps = precompute.curvature_maps(texkit.GeometryCache(mesh, root=False), 64)
    # away from the open rims (v near 0 or 1), k_max = 1/r, k_min = 0, H = 1/(2r)
    rows = slice(16, 48)
    inside = maps["mask"][rows]
    assert inside.float().mean() > 0.95
    assert (maps["k_max"][rows][inside] - 1 / radius).abs().max() < 0.05
    assert maps["k_min"][rows][inside].abs().max() < 0.05
    assert (maps["mean"][rows][inside] - 0.5 / radius).abs().max() < 0.03
    # the maximum-curvature direction goes around the cylinder: the u axis of the texture
    assert maps["dir_max"][rows][inside][:, 0].abs().min() > 0.99


def test_min_curvature_field_of_a_cylinder_is_the_v_axis():
    mesh = cylinder(0.5, 2.0, 48, 24)
    field = precompute.min_curvature_field(texkit.GeometryCache(mesh, root=False), iterations=100)
    assert field["direction"].shape == mesh.uvs.shape
    assert field["direction"][:, 1].abs().min() > 0.99


def test_entries_are_cached_on_disk_per_mesh_hash(tmp_path, monkeypatch):
    mesh = demo_mesh(24, 12)
    first = precompute.mirror_pairs(texkit.GeometryCache(mesh, root=tmp_path))
    assert (tmp_path / mesh.content_hash).is_dir()
    assert any(p.name.startswith("mirror_pairs") for p in (tmp_path / mesh.content_hash).iterdir())

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(precompute, "find_symmetry_plane", fail)
    again = precompute.mirror_pairs(texkit.GeometryCache(mesh, root=tmp_path))  # a fresh process would do this
    for key in ("uv_a", "uv_b", "plane"):
        assert torch.equal(first[key], again[key])
    moved = texkit.Mesh.from_arrays(mesh.vertices * 1.01, mesh.faces, mesh.uvs, mesh.uv_faces, normalize="none")
    assert moved.content_hash != mesh.content_hash  # another mesh has its own entries
