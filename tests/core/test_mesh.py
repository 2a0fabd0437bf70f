"""Mesh loading: formats, quads, UV seams, unwrapping, normalisation, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from texkit import Mesh, MeshError
from texkit.geometry.primitives import cube, demo_mesh, load_mesh, uv_sphere

ASSETS = Path(__file__).resolve().parents[3] / "shared" / "assets"

QUAD_OBJ = """v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
v 1 0 1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
f 1/1 2/2 3/3 4/4
f 1/1 2/2 6/3 5/4
"""


def test_quad_obj_is_triangulated_and_keeps_uvs(tmp_path):
    path = tmp_path / "quads.obj"
    path.write_text(QUAD_OBJ)
    mesh = Mesh.load(path)
    assert mesh.num_faces == 4 and mesh.num_vertices == 6
    assert mesh.uvs.shape == (4, 2) and mesh.uv_faces.shape == (4, 3)
    # the unit sphere normalisation puts the farthest vertex at distance 1 from the centre
    assert torch.linalg.norm(mesh.vertices, dim=1).max() == pytest.approx(1.0, abs=1e-5)


def test_mesh_without_uvs_is_unwrapped(tmp_path):
    path = tmp_path / "box.ply"
    trimesh.creation.box().export(path)
    mesh = Mesh.load(path)
    assert mesh.uvs.shape[1] == 2 and mesh.uv_faces.shape == mesh.faces.shape
    assert mesh.uvs.min() >= 0 and mesh.uvs.max() <= 1


@pytest.mark.parametrize("suffix", [".glb", ".off", ".ply"])
def test_other_formats(tmp_path, suffix):
    path = tmp_path / f"ico{suffix}"
    trimesh.creation.icosphere(subdivisions=1).export(path)
    mesh = Mesh.load(path)
    assert mesh.num_faces == 80


def test_uv_seams_are_kept_on_shared_assets():
    mesh = Mesh.load(ASSETS / "rabbit.obj")
    assert mesh.num_vertices == 3301 and mesh.num_faces == 6598
    # more UVs than positions: seams give one position several UVs
    assert mesh.uvs.shape[0] > mesh.num_vertices
    # every face corner's UV is a `vt` entry of the file
    vts = np.array([[float(x) for x in line.split()[1:3]] for line in (ASSETS / "rabbit.obj").read_text().splitlines() if line.startswith("vt ")])
    dists = np.abs(mesh.uvs.numpy()[:, None, :] - vts[None, :200, :]).sum(-1).min(1)
    assert (dists < 1e-5).sum() >= 150


def test_corrupt_truncated_obj(tmp_path):
    path = tmp_path / "cut.obj"
    path.write_text(QUAD_OBJ.replace("v 0 0 1\nv 1 0 1\n", ""))  # faces now reference missing vertices
    with pytest.raises(MeshError, match="corrupt or truncated"):
        Mesh.load(path)


def test_binary_garbage_obj(tmp_path):
    path = tmp_path / "garbage.obj"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MeshError):
        Mesh.load(path)


def test_nan_vertices(tmp_path):
    path = tmp_path / "nan.obj"
    path.write_text(QUAD_OBJ.replace("v 1 1 0", "v nan 1 0"))
    with pytest.raises(MeshError, match="NaN"):
        Mesh.load(path)


def test_missing_path_and_bad_suffix(tmp_path):
    with pytest.raises(MeshError, match="not found"):
        Mesh.load(tmp_path / "nope.obj")
    other = tmp_path / "mesh.xyz"
    other.write_text("1 2 3")
    with pytest.raises(MeshError, match="unsupported"):
        Mesh.load(other)


def test_errors_are_one_line(tmp_path):
    for path in (tmp_path / "nope.obj",):
        with pytest.raises(MeshError) as info:
            Mesh.load(path)
        assert "\n" not in str(info.value)


def test_content_hash_is_stable_and_sensitive():
    a, b = uv_sphere(), uv_sphere()
    assert a.content_hash == b.content_hash
    c = uv_sphere(radius=1.1)
    assert c.content_hash != a.content_hash


def test_normals_point_outward_on_sphere_and_cube():
    s = uv_sphere()
    cos = (s.normals * torch.nn.functional.normalize(s.vertices, dim=1)).sum(1)
    assert cos.min() > 0.99
    c = cube()
    assert ((c.normals * c.vertices).sum(1) > 0).all()


def test_builtin_meshes_and_export_roundtrip(tmp_path):
    mesh = load_mesh("demo")
    assert mesh is not None and demo_mesh().content_hash == mesh.content_hash
    mesh.export(tmp_path / "demo.glb", texture=torch.rand(16, 16, 3))
    again = Mesh.load(tmp_path / "demo.glb")
    assert again.num_faces == mesh.num_faces
