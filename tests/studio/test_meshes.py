"""Uploads and load notices (`texkit.studio.meshes`): what a file holds, said in one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from texkit.errors import MeshError
from texkit.geometry.primitives import cube
from texkit.studio.meshes import file_facts, load_with_notices, store_upload, write_view_glb

QUAD_OBJ = """v -1 -1 0
v 1 -1 0
v 1 1 0
v -1 1 0
v 0 0 1
f 1 2 3 4
f 1 2 5
f 2 3 5
f 3 4 5
f 4 1 5
"""


def test_store_upload_keeps_side_files_and_refuses_other_files_in_one_line(tmp_path):
    (tmp_path / "a.obj").write_text(QUAD_OBJ)
    (tmp_path / "a.mtl").write_text("newmtl m\n")
    (tmp_path / "notes.txt").write_text("hi")
    mesh = store_upload([tmp_path / "a.obj", tmp_path / "a.mtl"], tmp_path / "up1")
    assert mesh == tmp_path / "up1" / "a.obj" and (tmp_path / "up1" / "a.mtl").exists()
    with pytest.raises(MeshError, match=r"^notes.txt is not a mesh file; upload a mesh \(.obj, .glb"):
        store_upload([tmp_path / "a.obj", tmp_path / "notes.txt"], tmp_path / "up2")
    with pytest.raises(MeshError, match="the upload has no mesh file"):
        store_upload([tmp_path / "a.mtl"], tmp_path / "up3")
    with pytest.raises(MeshError, match="the upload has 2 mesh files"):
        store_upload([tmp_path / "a.obj", tmp_path / "a.obj"], tmp_path / "up4")
    assert not (tmp_path / "up2").exists()


def test_notices_say_unwrapped_and_triangulated(tmp_path):
    path = tmp_path / "pyramid.obj"
    path.write_text(QUAD_OBJ)
    assert file_facts(path) == (False, 1)
    mesh, notices = load_with_notices(str(path))
    assert notices[0] == "pyramid: 5 vertices, 6 triangles"
    assert "the file has no UVs: unwrapped with xatlas" in notices and "1 polygons triangulated" in notices


def test_a_glb_with_uvs_and_its_texture_says_so(tmp_path):
    import torch

    glb = tmp_path / "cube.glb"
    cube().export(glb, torch.full((8, 8, 3), 0.25))
    assert file_facts(glb) == (True, 0)
    mesh, notices = load_with_notices(str(glb))
    assert "UVs from the file" in notices and any(n.startswith("its own texture (8x8)") for n in notices)
    view = write_view_glb(mesh, tmp_path / "view.glb")
    assert view.stat().st_size > 500


def test_ascii_off_and_ply_facts(tmp_path):
    off = tmp_path / "q.off"
    off.write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    assert file_facts(off) == (False, 1)
    ply = tmp_path / "q.ply"
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\nproperty float s\n"
                   "property float t\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                   "0 0 0 0 0\n1 0 0 1 0\n1 1 0 1 1\n0 1 0 0 1\n4 0 1 2 3\n")
    assert file_facts(ply) == (True, 1)


def test_a_corrupt_mesh_is_the_loaders_one_line(tmp_path):
    path = tmp_path / "broken.obj"
    path.write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(MeshError) as err:
        load_with_notices(str(path))
    assert "broken.obj" in str(err.value) and "\n" not in str(err.value)


def test_built_in_meshes_need_no_file(tmp_path):
    mesh, notices = load_with_notices("demo")
    assert notices == [f"demo: {mesh.num_vertices} vertices, {mesh.num_faces} triangles", "built-in mesh with its own UVs"]
    assert Path(write_view_glb(mesh, tmp_path / "demo.glb")).exists()
