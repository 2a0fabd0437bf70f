"""mesh.glb as a viewer reads it: PBR material (white x texture, metallic 0, roughness 1) and the
input file's own coordinates (the load-time normalisation undone)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import load_mesh


def _gltf_json(path) -> dict:
    data = path.read_bytes()
    (length,) = struct.unpack("<I", data[12:16])
    return json.loads(data[20 : 20 + length])


def _read_back(path) -> trimesh.Trimesh:
    scene = trimesh.load(str(path))
    geoms = list(scene.geometry.values()) if isinstance(scene, trimesh.Scene) else [scene]
    assert len(geoms) == 1
    return geoms[0]


def _assert_same_surface(exported: np.ndarray, original: np.ndarray, tol: float) -> None:
    """Every exported vertex is an input vertex (and every input vertex is exported)."""
    d_out, _ = cKDTree(original).query(exported)
    d_in, _ = cKDTree(exported).query(original)
    assert d_out.max() < tol and d_in.max() < tol, (d_out.max(), d_in.max())


@pytest.mark.parametrize("normalize", ["unit_sphere", "extent"])
@pytest.mark.parametrize("suffix", [".obj", ".glb"])
def test_glb_keeps_input_coordinates_and_has_pbr_material(tmp_path, normalize, suffix):
    ball = trimesh.creation.icosphere(subdivisions=2, radius=10.0)
    ball.apply_translation([100.0, -3.0, 7.5])
    src = tmp_path / f"ball{suffix}"
    ball.export(src)
    original = np.asarray(_read_back(src).vertices, dtype=np.float64)

    mesh = load_mesh(str(src), normalize)
    assert float(mesh.vertices.abs().max()) <= 1.0 + 1e-5  # texkit works in normalised coordinates
    texture = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    out = tmp_path / "mesh.glb"
    mesh.to("cpu").export(out, texture)  # what the run report does

    back = _read_back(out)
    _assert_same_surface(np.asarray(back.vertices, dtype=np.float64), original, tol=1e-4 * 100)
    np.testing.assert_allclose(back.bounds, ball.bounds, atol=1e-3)

    material = _gltf_json(out)["materials"][0]["pbrMetallicRoughness"]
    assert material["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0]
    assert material["metallicFactor"] == 0.0  # glTF's default is 1.0 (dark, metallic): must be written
    assert material["roughnessFactor"] == 1.0
    assert "baseColorTexture" in material
    image = np.asarray(back.visual.material.baseColorTexture.convert("RGB"), dtype=np.float64) / 255.0
    np.testing.assert_allclose(image, texture.numpy(), atol=1 / 255 + 1e-6)


def test_normalized_coordinates_on_request(tmp_path):
    ball = trimesh.creation.icosphere(subdivisions=1, radius=10.0)
    ball.apply_translation([100.0, 0.0, 0.0])
    ball.export(tmp_path / "ball.obj")
    mesh = Mesh.load(tmp_path / "ball.obj")
    assert mesh.source_offset == pytest.approx((100.0, 0.0, 0.0)) and mesh.source_scale == pytest.approx(10.0)
    mesh.export(tmp_path / "n.glb", torch.zeros(8, 8, 3), coordinates="normalized")
    back = _read_back(tmp_path / "n.glb")
    assert np.abs(back.vertices).max() <= 1.0 + 1e-5
    with pytest.raises(ValueError):
        mesh.export(tmp_path / "x.glb", None, coordinates="meters")


def test_meshes_built_without_normalisation_keep_their_positions(tmp_path):
    mesh = Mesh.from_arrays([[0, 0, 0], [5, 0, 0], [0, 5, 0]], [[0, 1, 2]], uvs=[[0, 0], [1, 0], [0, 1]], normalize="none")
    assert mesh.source_scale == 1.0 and mesh.source_offset == (0.0, 0.0, 0.0)
    mesh.export(tmp_path / "t.glb", torch.ones(4, 4, 3))
    np.testing.assert_allclose(np.sort(_read_back(tmp_path / "t.glb").vertices, axis=0), np.sort(mesh.vertices.numpy(), axis=0))
