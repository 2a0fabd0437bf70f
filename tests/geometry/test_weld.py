"""Geometry analyses do not depend on how a file splits its vertices (issue 26).

A GLB stores a vertex once per (position, UV); an OBJ with per-face normals and no UVs once per
face corner. Curvature, texel maps, direction fields, mirror pairs and the geometry rewards are
computed on the mesh welded by position (`texkit.geometry.weld`), so a split (even with the
vertices shuffled and moved by float noise) gives exactly what the welded mesh gives; on a mesh
that is already welded the weld changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from texkit.geometry import GeometryCache, curvature_maps, mesh_curvature, min_curvature_field, mirror_pairs
from texkit.geometry.closest import ClosestPointQuery
from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import load_mesh
from texkit.geometry.weld import weld_by_position
from texkit.registry import get_registry
from texkit.reward_set import RewardSet
from texkit.types import Texture

GEOMETRY_REWARDS = ["curvature_color", "curvature_alignment", "feature_emphasis", "symmetry"]


def split_like_a_glb(mesh: Mesh, jitter: float = 0.0, shuffle: bool = False) -> Mesh:
    """One vertex per (position, UV) pair of the face corners, as a GLB vertex buffer holds them.

    Args:
        jitter: standard deviation of noise added to each copy's position (float noise of a file).
        shuffle: put the split vertices in a random order.
    """
    corners = np.stack((mesh.faces.numpy().reshape(-1), mesh.uv_faces.numpy().reshape(-1)), axis=1)
    pairs, inverse = np.unique(corners, axis=0, return_inverse=True)
    order = np.random.default_rng(1).permutation(len(pairs)) if shuffle else np.arange(len(pairs))
    rank = np.argsort(order)
    verts = mesh.vertices.double().numpy()[pairs[order, 0]]
    verts = verts + np.random.default_rng(2).normal(size=verts.shape) * jitter
    faces = rank[inverse.reshape(-1)].reshape(-1, 3)
    return Mesh.from_arrays(verts, faces, mesh.uvs.double().numpy()[pairs[order, 1]], faces, name="split", normalize="none")


def _cache(mesh: Mesh) -> GeometryCache:
    return GeometryCache(mesh, root=False)


@pytest.fixture(scope="module")
def balloon(assets) -> Mesh:
    return Mesh.load(assets / "balloon.obj")


@pytest.mark.parametrize("name", ["cow", "rabbit", "balloon", "demo", "cube"])
def test_weld_of_a_loaded_or_built_in_mesh_is_the_mesh_itself(assets, name):
    mesh = Mesh.load(assets / f"{name}.obj") if name in ("cow", "rabbit", "balloon") else load_mesh(name)
    welded = weld_by_position(mesh)
    assert torch.equal(welded.vertex, torch.arange(mesh.num_vertices))
    for field in ("vertices", "faces", "uvs", "uv_faces", "normals"):
        assert torch.equal(getattr(welded.mesh, field), getattr(mesh, field)), field


def test_weld_merges_splits_into_one_canonical_mesh(balloon):
    split = split_like_a_glb(balloon, shuffle=True)
    assert split.num_vertices > balloon.num_vertices
    welded = weld_by_position(split)
    for field in ("vertices", "faces", "normals"):  # the order of the loaded mesh: canonical, whatever the split's
        assert torch.equal(getattr(welded.mesh, field), getattr(balloon, field)), field
    assert torch.equal(welded.mesh.uvs[welded.mesh.uv_faces], balloon.uvs[balloon.uv_faces])
    assert torch.equal(welded.to_original(welded.mesh.vertices), split.vertices)  # each copy -> its position
    # copies moved apart by float noise (far below the tolerance) are one vertex too
    noisy = weld_by_position(split_like_a_glb(balloon, jitter=1e-9, shuffle=True))
    assert noisy.mesh.num_vertices == balloon.num_vertices
    assert float(cKDTree(balloon.vertices.numpy()).query(noisy.mesh.vertices.numpy())[0].max()) < 1e-8


def _match(split: Mesh, mesh: Mesh) -> torch.Tensor:
    """``(V_split,)`` the vertex of ``mesh`` at each split vertex's position."""
    return torch.from_numpy(cKDTree(mesh.vertices.numpy()).query(split.vertices.numpy())[1])


@pytest.mark.parametrize(("jitter", "shuffle"), [(0.0, True), (1e-9, True)], ids=["shuffled-split", "noisy-shuffled-split"])
def test_analyses_of_a_split_mesh_equal_those_of_the_welded_one(balloon, jitter, shuffle):
    split = split_like_a_glb(balloon, jitter, shuffle)
    whole, parts = _cache(balloon), _cache(split)
    ours, theirs = mesh_curvature(parts), mesh_curvature(whole)
    back = _match(split, balloon)
    for name in ("k_min", "k_max"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name)[back], atol=1e-3, rtol=1e-4)
    for name in ("dir_min", "dir_max"):  # axial directions: d and -d agree
        cos = (getattr(ours, name) * getattr(theirs, name)[back]).sum(-1).abs()
        assert float(cos.min()) > 1 - 1e-4, name
    for key, value in curvature_maps(whole, 32).items():
        if key != "dir_max":
            torch.testing.assert_close(curvature_maps(parts, 32)[key], value, atol=1e-3, rtol=1e-4, msg=key)
    field_a, field_b = min_curvature_field(whole), min_curvature_field(parts)
    order_a, order_b = np.lexsort(field_a["uv"].numpy().T), np.lexsort(field_b["uv"].numpy().T)
    torch.testing.assert_close(field_b["uv"][order_b], field_a["uv"][order_a])
    cos2 = (field_a["direction"][order_a] * field_b["direction"][order_b]).sum(-1) ** 2  # axial: d and -d agree
    assert float(cos2.min()) > 1 - 1e-4
    pairs_a, pairs_b = mirror_pairs(whole), mirror_pairs(parts)
    assert len(pairs_a["uv_a"]) == len(pairs_b["uv_a"]) == balloon.num_vertices  # one pair per position, not per copy
    rows_a = np.unique(torch.cat((pairs_a["uv_a"], pairs_a["uv_b"]), 1).numpy().round(4), axis=0)
    rows_b = np.unique(torch.cat((pairs_b["uv_a"], pairs_b["uv_b"]), 1).numpy().round(4), axis=0)
    np.testing.assert_allclose(rows_b, rows_a, atol=2e-4)


def test_geometry_rewards_of_a_split_mesh_equal_those_of_the_welded_one(balloon):
    """Before issue 26 a split balloon scored curvature_color +0.0122 against -0.0192 welded."""
    texture = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0)), size=(48, 48), mode="bilinear")[0]
    texture = Texture(texture.permute(1, 2, 0).contiguous())

    def scores(mesh: Mesh) -> dict[str, float]:
        registry = get_registry()
        rewards = RewardSet({name: registry.make_reward(name, {}) for name in GEOMETRY_REWARDS})
        cache = _cache(mesh)
        rewards.prepare(mesh, cache)
        with torch.no_grad():
            values = rewards.score(mesh, texture, None, None, cache, device="cpu").values
        return {name: float(values[name][0]) for name in GEOMETRY_REWARDS}

    welded, split = scores(balloon), scores(split_like_a_glb(balloon, jitter=1e-9, shuffle=True))
    for name in GEOMETRY_REWARDS:
        assert split[name] == pytest.approx(welded[name], rel=1e-4, abs=1e-7), (name, split, welded)


def test_closest_point_ties_go_to_the_lowest_face_whatever_the_order():
    """A point above the shared edge of two triangles is as close to both: the lower index wins."""
    verts = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    left, right = [0, 1, 2], [1, 3, 2]
    point = np.array([[0.5, 0.5, 0.3]])  # above the edge (1, 2)
    for faces in ([left, right], [right, left]):
        _, dist, face, bary = ClosestPointQuery(verts, np.array(faces)).query(point)
        assert face[0] == 0 and dist[0] == pytest.approx(0.3)
        corner = (bary[0][:, None] * verts[np.array(faces)[0]]).sum(0)
        np.testing.assert_allclose(corner, [0.5, 0.5, 0.0], atol=1e-12)
