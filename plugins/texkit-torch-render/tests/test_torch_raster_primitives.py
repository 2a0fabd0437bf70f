"""The rasteriser's primitives: z-buffer known answers, batching, edge adjacency, gradchecks."""

from __future__ import annotations

import math

import pytest
import torch
from texkit_torch_render.rasterize import barycentrics, clip_to_screen, edge_neighbors, interpolate, rasterize

from texkit import Cameras, Mesh
from texkit.geometry.primitives import cube, quad, uv_sphere


@pytest.fixture(scope="module")
def torch_renderer():
    """The ``torch`` renderer as the registry builds it."""
    import texkit

    return texkit.get_registry().make_renderer("torch")


def _ortho_clip(xy_z: list[list[float]]) -> torch.Tensor:
    """Clip coordinates (w = 1) straight from NDC x, y, z."""
    pts = torch.tensor(xy_z, dtype=torch.float64)
    return torch.cat((pts, torch.ones(len(pts), 1, dtype=torch.float64)), dim=1)


def test_nearer_triangle_wins_the_z_buffer():
    # two overlapping full-screen triangles; face 1 is nearer (smaller NDC z)
    clip = _ortho_clip([[-3, -3, 0.5], [3, -3, 0.5], [0, 3, 0.5], [-3, -3, -0.2], [3, -3, -0.2], [0, 3, -0.2]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    face_id = rasterize(clip, faces, 8, 8)
    assert (face_id[2:6, 3:5] == 1).all()
    flipped = rasterize(clip, faces.flip(0), 8, 8)  # order of faces does not matter
    assert (flipped[2:6, 3:5] == 0).all()


def test_coverage_follows_the_pixel_centre_rule():
    # a right triangle with legs along the image's top and left borders, covering x + y < 4 px
    clip = _ortho_clip([[-1, 1, 0], [0, 1, 0], [-1, 0, 0]])  # (0, 0), (4, 0), (0, 4) in pixels of an 8x8 image
    face_id = rasterize(clip, torch.tensor([[0, 1, 2]]), 8, 8)
    rows, cols = torch.meshgrid(torch.arange(8) + 0.5, torch.arange(8) + 0.5, indexing="ij")
    assert torch.equal(face_id >= 0, rows + cols <= 4.0)


def test_batched_views_match_single_views():
    mesh = uv_sphere(0.8, 16, 8)
    cams = Cameras.orbit(3, elevation=-20.0)
    homo = torch.cat((mesh.vertices, torch.ones(mesh.vertices.shape[0], 1)), 1)
    clip = homo @ cams.mvp().transpose(1, 2)
    batched = rasterize(clip, mesh.faces, 40, 40)
    for i in range(3):
        assert torch.equal(batched[i], rasterize(clip[i], mesh.faces, 40, 40))


def test_closed_mesh_has_no_cracks():
    """Every pixel inside the silhouette of a closed sphere is covered (shared edges belong to both faces)."""
    mesh = uv_sphere(0.8, 48, 24)
    cams = Cameras.from_angles([-13.0], [17.0])
    homo = torch.cat((mesh.vertices, torch.ones(mesh.vertices.shape[0], 1)), 1)
    face_id = rasterize(homo @ cams.mvp()[0].T, mesh.faces, 128, 128)
    covered = face_id >= 0
    rows = covered.any(dim=1).nonzero().squeeze(1)
    for r in rows[2:-2]:  # between the leftmost and rightmost covered pixel of a row, no hole
        cols = covered[r].nonzero().squeeze(1)
        assert covered[r, cols.min() : cols.max() + 1].all()


def test_edge_neighbors_of_cube_and_quad():
    cube_neighbors = edge_neighbors(cube(1.0).faces)
    assert (cube_neighbors >= 0).all()  # cube corners are shared: every edge has two faces
    quad_neighbors = edge_neighbors(quad(1.0).faces)
    # faces (0,1,2) and (0,2,3) share the diagonal 0-2, opposite corner 1 of face 0 and corner 2 of face 1
    assert quad_neighbors.tolist() == [[-1, 1, -1], [-1, -1, 0]]


def test_barycentrics_gradcheck_in_clip_coordinates():
    clip = _ortho_clip([[-0.9, -0.8, 0.1], [0.8, -0.7, 0.2], [0.1, 0.9, 0.3]])
    clip[:, 3] = torch.tensor([1.0, 1.3, 0.8], dtype=torch.float64)  # different w: perspective correction matters
    clip[:, :3] *= clip[:, 3:]
    faces = torch.tensor([[0, 1, 2]])
    face_id = rasterize(clip, faces, 6, 6)
    assert (face_id >= 0).sum() > 5
    clip.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: barycentrics(c, faces, face_id), (clip,), fast_mode=True)


def test_perspective_correct_barycentrics_recover_world_positions():
    """Interpolating world positions with the barycentrics lands on the ray through the pixel centre."""
    mesh = quad(1.0)
    cams = Cameras.from_angles([-30.0], [40.0])
    homo = torch.cat((mesh.vertices, torch.ones(4, 1)), 1).double()
    clip = homo @ cams.mvp()[0].double().T
    face_id = rasterize(clip, mesh.faces, 32, 32)
    bary = barycentrics(clip, mesh.faces, face_id)
    world = interpolate(homo, mesh.faces, face_id, bary)[face_id >= 0]  # (P, 4)
    reprojected = clip_to_screen(world @ cams.mvp()[0].double().T, 32, 32)[:, :2]
    rows, cols = torch.nonzero(face_id >= 0, as_tuple=True)
    centres = torch.stack((cols + 0.5, rows + 0.5), -1).double()
    assert torch.allclose(reprojected, centres, atol=1e-6)


def test_render_gradcheck_with_respect_to_texture(torch_renderer):
    """Texture sampling inside the renderer: rgb is linear in the texture; gradcheck in float64."""
    base = quad(1.0)
    mesh = Mesh(base.vertices.double(), base.faces, base.uvs.double(), base.uv_faces, base.normals.double())
    cams = Cameras.from_angles([-20.0], [25.0], dtype=torch.float64)
    texture = torch.rand(3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch_renderer.render(mesh, t, cams, 8).rgb, (texture,), fast_mode=True)


def test_depth_is_camera_distance_minus_z(torch_renderer):
    base = quad(1.0)
    shifted = Mesh(base.vertices + torch.tensor([0.0, 0.0, 0.25]), base.faces, base.uvs, base.uv_faces, base.normals)
    out = torch_renderer.render(shifted, torch.rand(4, 4, 3), Cameras.from_angles([0.0], [0.0], radius=2.0), 32)
    inside = out.face_id[0] >= 0
    assert torch.allclose(out.depth[0][inside], torch.tensor(1.75), atol=1e-5)
    assert (out.depth[0][~inside] == 0).all() and (out.rgb[0][~inside] == 0).all()


def test_view_cosine_of_a_tilted_quad(torch_renderer):
    """Centre pixel of a quad seen 60 degrees off its normal: |cos| = 0.5 (the ray there hits the origin)."""
    out = torch_renderer.render(quad(1.0), torch.rand(4, 4, 3), Cameras.from_angles([0.0], [60.0]), 64)
    assert math.isclose(out.view_cos[0, 32, 32, 0].item(), 0.5, abs_tol=0.02)
    assert out.face_id[0, 32, 32] >= 0
