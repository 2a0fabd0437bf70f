"""Intrinsic symmetry: the Laplace-Beltrami operator, the bent-tube known answer, the rabbit cross-check."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

import texkit
from texkit.geometry.intrinsic_symmetry import (
    _nearest_rows,
    cotangent_laplacian,
    farthest_point_samples,
    find_intrinsic_symmetry,
    laplace_beltrami_basis,
)
from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import uv_sphere
from texkit.geometry.symmetry import find_symmetry_plane


def bent_tube(n_along: int = 61, n_around: int = 24) -> tuple[Mesh, np.ndarray, float]:
    """An open tube, mirror-symmetric in its length coordinate s -> -s, whose s > 0 half is bent
    along an arc (isometric for the centre line): symmetric intrinsically, not as placed in space.
    Its cross-section has no mirror symmetry of its own, so the s -> -s symmetry is the only one.

    Returns:
        (mesh, mirror (V,) index of each vertex's mirror image, median edge length along the tube).
    """
    s = np.linspace(-1.0, 1.0, n_along)
    theta = np.linspace(0.0, 2.0 * np.pi, n_around, endpoint=False)
    S, TH = np.meshgrid(s, theta, indexing="ij")
    rho = (0.25 + 0.08 * np.cos(np.pi * S)) * (1.0 + 0.3 * np.cos(TH) + 0.25 * np.sin(2.0 * TH))
    y, z = rho * np.cos(TH), 0.8 * rho * np.sin(TH)
    bend_radius = 0.8
    angle = np.where(S > 0, S / bend_radius, 0.0)
    centre_x = np.where(S > 0, bend_radius * np.sin(angle), S)
    centre_y = np.where(S > 0, bend_radius * (1.0 - np.cos(angle)), 0.0)
    verts = np.stack([centre_x - np.sin(angle) * y, centre_y + np.cos(angle) * y, z], -1).reshape(-1, 3)
    index = np.arange(n_along * n_around).reshape(n_along, n_around)
    faces = []
    for i in range(n_along - 1):
        for j in range(n_around):
            a0, a1, b0, b1 = (
                index[i, j],
                index[i, (j + 1) % n_around],
                index[i + 1, j],
                index[i + 1, (j + 1) % n_around],
            )
            faces += [[a0, b0, b1], [a0, b1, a1]]
    uvs = np.stack([S.ravel() * 0.5 + 0.5, TH.ravel() / (2.0 * np.pi)], -1)
    mesh = Mesh.from_arrays(
        torch.tensor(verts, dtype=torch.float32),
        torch.tensor(faces),
        torch.tensor(uvs, dtype=torch.float32),
        torch.tensor(faces),
    )
    v = mesh.vertices.double().numpy()
    edge = float(np.median(np.linalg.norm(v[index[1:, 0]] - v[index[:-1, 0]], axis=1)))
    return mesh, index[::-1].reshape(-1), edge


def test_cotangent_laplacian_is_symmetric_psd_and_kills_constants():
    mesh = uv_sphere(1.0, 24, 12)
    stiffness, mass = cotangent_laplacian(mesh.vertices.double().numpy(), mesh.faces.numpy())
    assert abs(stiffness - stiffness.T).max() < 1e-12
    assert np.abs(stiffness @ np.ones(mesh.num_vertices)).max() < 1e-10
    assert np.isclose(mass.diagonal().sum(), 4 * np.pi, rtol=0.02)  # total area of the unit sphere
    x = np.random.default_rng(0).normal(size=mesh.num_vertices)
    assert x @ (stiffness @ x) > 0


def test_sphere_spectrum_is_l_times_l_plus_one():
    """On the unit sphere the Laplace-Beltrami eigenvalues are l(l+1) with multiplicity 2l+1."""
    mesh = uv_sphere(1.0, 64, 32)
    values, vectors, mass = laplace_beltrami_basis(mesh.vertices.double().numpy(), mesh.faces.numpy(), 9)
    assert abs(values[0]) < 1e-6
    assert np.allclose(values[1:4], 2.0, rtol=0.03) and np.allclose(values[4:9], 6.0, rtol=0.03)
    assert np.allclose(vectors.T @ (mass @ vectors), np.eye(9), atol=1e-8)


def test_bent_tube_intrinsic_symmetry_finds_the_mirror_vertices():
    """The bent tube defeats every mirror plane; the intrinsic symmetry still pairs mirror vertices."""
    mesh, mirror, edge = bent_tube()
    verts = mesh.vertices.double().numpy()
    plane = find_symmetry_plane(mesh)
    by_plane = cKDTree(verts).query(plane.reflect(verts))[1]
    symmetry = find_intrinsic_symmetry(mesh, plane=plane)
    plane_error = np.linalg.norm(verts[by_plane] - verts[mirror], axis=1)
    intrinsic_error = np.linalg.norm(verts[symmetry.target] - verts[mirror], axis=1)
    assert (plane_error < 1.5 * edge).mean() < 0.5
    assert (intrinsic_error < 1.5 * edge).mean() > 0.75
    assert np.median(intrinsic_error) < 1e-9  # most vertices map exactly onto their mirror vertex
    # a reflection is an involution: most vertices come back to themselves
    assert (symmetry.target[symmetry.target] == np.arange(len(verts))).mean() > 0.6


def test_symmetry_reward_intrinsic_prefers_the_mirrored_texture(tmp_path):
    """On the bent tube (mirror = u -> 1 - u in its UV map), a texture symmetric in u scores the
    intrinsic symmetry reward's maximum, a gradient in u scores lower."""
    mesh, _, _ = bent_tube()
    registry = texkit.get_registry()
    reward = registry.make_reward("symmetry", {"method": "intrinsic"})
    cache = texkit.GeometryCache(mesh, tmp_path)
    reward.prepare(mesh, cache)
    size = 64
    u = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    symmetric = (0.5 + 0.4 * torch.cos(2 * torch.pi * u))[None, :, None].expand(size, size, 3).contiguous()
    gradient = u[None, :, None].expand(size, size, 3).contiguous()
    coverage = torch.ones(size, size, 1)
    scores = {}
    for name, image in (("symmetric", symmetric), ("gradient", gradient)):
        ctx = texkit.RewardContext(mesh=mesh, texture=texkit.Texture(image, coverage), geometry=cache)
        scores[name] = float(reward(ctx).value)
    assert scores["symmetric"] > -1e-2
    assert scores["gradient"] < scores["symmetric"] - 0.1


def _geodesic_distortion(verts: np.ndarray, faces: np.ndarray, source: np.ndarray, image: np.ndarray) -> float:
    """Median relative change of edge-graph geodesic distances between the points ``source`` and
    their images ``image`` (0 for an isometry)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    lengths = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1)
    graph = sp.coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(len(verts),) * 2).tocsr()
    graph = graph.maximum(graph.T)
    before = dijkstra(graph, indices=source)[:, source]
    after = dijkstra(graph, indices=image)[:, image]
    far = before > 0.05 * before.max()
    return float(np.median(np.abs(before - after)[far] / before[far]))


def test_rabbit_reference_pairs_intrinsic_crosscheck(rabbit_pairs, record_crosscheck):
    """Map each reference pair's first point through the intrinsic symmetry; record how many land
    within 2 texels (1024 px) of its second point, and how isometric each pairing is."""
    mesh, rows = rabbit_pairs.mesh, rabbit_pairs.rows
    uvs, faces, uv_faces = mesh.uvs.double().numpy(), mesh.faces.numpy(), mesh.uv_faces.numpy()
    verts = mesh.vertices.double().numpy()
    corners: dict[int, list[int]] = {}
    for v, t in zip(faces.reshape(-1), uv_faces.reshape(-1)):
        corners.setdefault(int(v), []).append(int(t))
    first = rabbit_pairs.uv_to_vertex[rabbit_pairs.first]
    second = rabbit_pairs.uv_to_vertex[rabbit_pairs.second]
    symmetry = find_intrinsic_symmetry(mesh)
    mapped = symmetry.target[first]
    texels = np.array(
        [min(np.abs(uvs[t] - uv).max() for t in corners[int(w)]) * 1024 for w, uv in zip(mapped, rows[:, 2:])]
    )
    sample = np.random.default_rng(0).choice(len(verts), 300, replace=False)
    values = {
        "method": "intrinsic (Laplace-Beltrami functional map, 60 eigenfunctions, involution-projected ZoomOut from the automatic plane)",
        "fraction_within_2_texels": float((texels <= 2).mean()),
        "fraction_within_10_texels": float((texels <= 10).mean()),
        "median_texel_error": float(np.median(texels)),
        "geodesic_distortion_reference_pairs": _geodesic_distortion(verts, faces, first, second),
        "geodesic_distortion_ours_same_points": _geodesic_distortion(verts, faces, first, mapped),
        "geodesic_distortion_ours_random_vertices": _geodesic_distortion(verts, faces, sample, symmetry.target[sample]),
        "involution_fraction": float((symmetry.target[symmetry.target] == np.arange(len(verts))).mean()),
    }
    record_crosscheck("rabbit_symmetric_pairs_intrinsic", values)
    print(values)
    # our map must be at least as isometric as the reference pairing it is compared with
    assert values["geodesic_distortion_ours_same_points"] <= values["geodesic_distortion_reference_pairs"]


def test_nearest_rows_matches_a_kd_tree():
    rng = np.random.default_rng(0)
    points, queries = rng.normal(size=(500, 12)), rng.normal(size=(300, 12))
    dist, index = _nearest_rows(queries, points, block_entries=7000)  # several blocks
    ref_dist, ref_index = cKDTree(points).query(queries)
    assert np.array_equal(index, ref_index) and np.allclose(dist, ref_dist, atol=1e-12)


def test_farthest_point_samples_spread_evenly_and_deterministically():
    grid = np.stack(np.meshgrid(*[np.linspace(0.0, 1.0, 21)] * 2, [0.0], indexing="ij"), -1).reshape(-1, 3)
    chosen = farthest_point_samples(grid, 25)
    assert len(set(chosen.tolist())) == 25 and np.array_equal(chosen, farthest_point_samples(grid, 25))
    # every grid point lies within a quarter of the square's side of a sample (a 5 x 5 lattice covers it)
    assert cKDTree(grid[chosen]).query(grid)[0].max() <= 0.25 + 1e-9
    assert np.array_equal(farthest_point_samples(grid, 10_000), np.arange(len(grid)))


def test_refinement_on_samples_still_finds_the_mirror_vertices(capsys):
    """The bent tube (1,464 vertices) refined on 500 samples, then mapped at full resolution."""
    mesh, mirror, edge = bent_tube()
    verts = mesh.vertices.double().numpy()
    plane = find_symmetry_plane(mesh)
    capsys.readouterr()
    symmetry = find_intrinsic_symmetry(mesh, plane=plane, samples=500)
    intrinsic_error = np.linalg.norm(verts[symmetry.target] - verts[mirror], axis=1)
    assert (intrinsic_error < 1.5 * edge).mean() > 0.75
    stages = capsys.readouterr().err.splitlines()
    assert len(stages) >= 3 and all(
        line.startswith("texkit: note: intrinsic symmetry of 1,464 vertices") for line in stages
    )
    assert any("500 samples" in line for line in stages)
    find_intrinsic_symmetry(mesh, plane=plane)  # small enough to refine on every vertex: silent
    assert capsys.readouterr().err == ""
