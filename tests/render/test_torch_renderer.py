"""Known answers, silhouettes, and gradients of the pure-PyTorch renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import texkit
from texkit import Cameras, Mesh, Texture
from texkit.geometry.primitives import cube, quad, uv_sphere


def _quadrant_texture() -> torch.Tensor:
    """2x2 texture: top-left red, top-right green, bottom-left blue, bottom-right white (image rows)."""
    small = torch.tensor([[[1.0, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 1, 1]]])
    return small.repeat_interleave(8, 0).repeat_interleave(8, 1)  # 16x16, constant quadrants


def test_quad_known_pixels(torch_renderer):
    mesh = quad(1.0)
    cams = Cameras.from_angles([0.0], [0.0], radius=2.0, fov=60.0)
    out = torch_renderer.render(mesh, _quadrant_texture(), cams, 64, antialias=False)
    # the quad spans +-0.5 at distance 2: half-height of the view is 2 tan(30) = 1.1547
    half = 0.5 / (2 * math.tan(math.radians(30))) * 32  # pixels from the centre
    lo, hi = math.ceil(32 - half - 0.5), math.floor(32 + half - 0.5)  # columns whose centre (c + 0.5) is inside
    assert out.alpha[0, 32, 32, 0] == 1 and out.alpha[0, 2, 2, 0] == 0 and out.face_id[0, 2, 2] == -1
    covered = out.alpha[0, ..., 0].sum().item()
    assert covered == (hi - lo + 1) ** 2
    # bilinear texture lookup at the quadrant centres: uv (0.25, 0.75) is the top-left texel (red)
    top_left = out.rgb[0, 32 - int(half / 2), 32 - int(half / 2)]
    bottom_right = out.rgb[0, 32 + int(half / 2), 32 + int(half / 2)]
    assert torch.allclose(top_left, torch.tensor([1.0, 0, 0]), atol=1e-4)
    assert torch.allclose(bottom_right, torch.tensor([1.0, 1, 1]), atol=1e-4)
    inside = out.alpha[0, ..., 0] > 0
    assert torch.allclose(out.depth[0][inside], torch.tensor(2.0), atol=1e-5)
    assert torch.allclose(out.normal[0][inside], torch.tensor([0.0, 0.0, 1.0]), atol=1e-5)
    assert torch.allclose(out.view_cos[0][inside].min(), torch.tensor(math.cos(math.radians(12))), atol=0.05)
    # uv grows right and up
    assert out.uv[0, 32, lo + 1, 0] < out.uv[0, 32, hi - 1, 0]
    assert out.uv[0, lo + 1, 32, 1] > out.uv[0, hi - 1, 32, 1]


def test_cube_faces_show_their_atlas_cells(torch_renderer):
    mesh = cube(1.0)
    atlas = torch.zeros(2, 3, 3)
    colors = torch.eye(3).repeat(2, 1)  # sides of primitives.cube: +z, -z, +y, -y, +x, -x
    for s in range(6):
        atlas[1 - s // 3, s % 3] = colors[s]  # cell row 0 of the image is the top (v in [0.5, 1])
    atlas = atlas.repeat_interleave(8, 0).repeat_interleave(8, 1)  # constant cells: exact bilinear lookups
    front = torch_renderer.render(mesh, atlas, Cameras.from_angles([0.0], [0.0]), 32, antialias=False)
    right = torch_renderer.render(mesh, atlas, Cameras.from_angles([0.0], [90.0]), 32, antialias=False)
    top = torch_renderer.render(mesh, atlas, Cameras.from_angles([-89.0], [0.0]), 32, antialias=False)
    assert torch.allclose(front.rgb[0, 16, 16], colors[0], atol=1e-4)  # +z side faces the front camera
    assert torch.allclose(right.rgb[0, 16, 16], colors[4], atol=1e-4)  # +x side
    assert torch.allclose(top.rgb[0, 16, 16], colors[2], atol=1e-4)  # +y side seen from above


def _reference_silhouette(mesh: Mesh, cams: Cameras, res: int, supersample: int = 8) -> np.ndarray:
    """Independent silhouette: fill every projected triangle with PIL at ``supersample`` times the
    resolution (no z-buffer needed), then read the value at each pixel centre. Supersampling makes
    PIL's edge-inclusive fill rule matter for 1/16 of a pixel only."""
    masks = []
    s = supersample
    clip = torch.cat((mesh.vertices, torch.ones(mesh.num_vertices, 1)), 1) @ cams.mvp().transpose(1, 2)
    for view in clip:
        ndc = (view[:, :2] / view[:, 3:]).numpy()
        xs, ys = (ndc[:, 0] + 1) / 2 * res * s - 0.5, (1 - ndc[:, 1]) / 2 * res * s - 0.5
        img = Image.new("L", (res * s, res * s), 0)
        draw = ImageDraw.Draw(img)
        for f in mesh.faces.numpy():
            draw.polygon([(xs[i], ys[i]) for i in f], fill=1)
        centres = np.arange(res) * s + s // 2
        masks.append(np.asarray(img, dtype=bool)[np.ix_(centres, centres)])
    return np.stack(masks)


@pytest.mark.parametrize("name", ["cow", "rabbit", "balloon"])
def test_shared_meshes_cover_their_silhouette(torch_renderer, assets, name):
    mesh = Mesh.load(assets / f"{name}.obj")
    cams = Cameras.orbit(8, elevation=-20.0)
    out = torch_renderer.render(mesh, torch.full((8, 8, 3), 0.5), cams, 128, antialias=False)
    ours = (out.face_id >= 0).numpy()
    ref = _reference_silhouette(mesh, cams, 128)
    iou = (ours & ref).sum() / (ours | ref).sum()
    assert iou > 0.98, f"{name}: silhouette IoU {iou:.4f}"


def _render_loss(renderer, mesh, texture, azimuth, weights, aa=True):
    cams = Cameras(azimuth, torch.tensor([-15.0], dtype=azimuth.dtype), torch.tensor([2.5], dtype=azimuth.dtype), torch.tensor([50.0], dtype=azimuth.dtype))
    out = renderer.render(mesh, texture, cams, 48, antialias=aa)
    return (torch.cat((out.rgb, out.alpha), -1) * weights).sum()


def _float64_sphere_scene() -> tuple[Mesh, torch.Tensor, torch.Tensor]:
    """A float64 UV sphere (r 0.8), a smooth ``(64, 64, 3)`` texture and fixed random ``(1, 48, 48, 4)``
    rgba loss weights, for finite-difference checks."""
    sphere = uv_sphere(0.8, 32, 16)
    mesh = Mesh(sphere.vertices.double(), sphere.faces, sphere.uvs.double(), sphere.uv_faces, sphere.normals.double())
    coords = torch.linspace(0, 1, 64, dtype=torch.float64)
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    texture = torch.stack((0.5 + 0.4 * torch.sin(6.28 * 3 * u), 0.5 + 0.4 * torch.cos(6.28 * 2 * v), 0.5 + 0 * u), -1)
    weights = torch.rand(1, 48, 48, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return mesh, texture, weights


def test_azimuth_gradient_matches_finite_differences(torch_renderer):
    """Interior pixels: d(render)/d(azimuth) through barycentrics and UVs equals central differences."""
    mesh, texture, weights = _float64_sphere_scene()
    azim = torch.tensor([20.0], dtype=torch.float64, requires_grad=True)
    weights[..., 3] = 0  # coverage changes are tested with antialiasing below
    loss = _render_loss(torch_renderer, mesh, texture, azim, weights, aa=False)
    (grad,) = torch.autograd.grad(loss, azim)
    h = 0.05
    plus = _render_loss(torch_renderer, mesh, texture, azim.detach() + h, weights, aa=False)
    minus = _render_loss(torch_renderer, mesh, texture, azim.detach() - h, weights, aa=False)
    fd = (plus - minus) / (2 * h)
    assert abs(grad.item()) > 1e-2
    assert grad.item() == pytest.approx(fd.item(), rel=1e-3)


def test_antialiased_render_gradient_matches_finite_differences(torch_renderer):
    """rgb and alpha with antialiasing on, times fixed random weights: interior and silhouette terms.

    At azimuth 20 no pixel centre crosses an edge within +-h, so the render is smooth there and
    central differences are exact up to O(h^2)."""
    mesh, texture, weights = _float64_sphere_scene()
    azim = torch.tensor([20.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(_render_loss(torch_renderer, mesh, texture, azim, weights), azim)
    h = 0.05
    plus = _render_loss(torch_renderer, mesh, texture, azim.detach() + h, weights)
    minus = _render_loss(torch_renderer, mesh, texture, azim.detach() - h, weights)
    assert grad.item() == pytest.approx(((plus - minus) / (2 * h)).item(), rel=0.05)


def test_silhouette_gradient_of_a_coarse_sphere_matches_finite_differences(torch_renderer):
    """Coverage weighted by a left-to-right ramp while the camera turns: only the silhouette moves.

    Thin triangles near the silhouette make pixel pairs cross interior edges first; the antialiasing
    walks to the silhouette edge. A wide step averages over many pixel-centre crossings."""
    sphere = uv_sphere(0.8, 8, 4)
    mesh = Mesh(sphere.vertices.double(), sphere.faces, sphere.uvs.double(), sphere.uv_faces, sphere.normals.double())
    ramp = torch.linspace(0, 1, 64, dtype=torch.float64).view(1, 1, 64, 1)
    grey = torch.full((4, 4, 3), 0.5, dtype=torch.float64)

    def weighted_coverage(elevation: torch.Tensor) -> torch.Tensor:
        one = torch.ones(1, dtype=torch.float64)
        cams = Cameras(0 * one, elevation, 2.5 * one, 50 * one)
        return (torch_renderer.render(mesh, grey, cams, 64).alpha * ramp).sum()

    elev = torch.tensor([-15.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(weighted_coverage(elev), elev)
    h = 1.0
    fd = (weighted_coverage(elev.detach() + h) - weighted_coverage(elev.detach() - h)) / (2 * h)
    assert grad.item() == pytest.approx(fd.item(), rel=0.05)


def test_antialiased_coverage_gradient_matches_finite_differences(torch_renderer):
    """Silhouette: d(covered area)/d(azimuth) of a turning quad, from the analytic edge blending."""
    base = quad(1.0)
    mesh = Mesh(base.vertices.double(), base.faces, base.uvs.double(), base.uv_faces, base.normals.double())

    def area(azimuth: torch.Tensor) -> torch.Tensor:
        cams = Cameras(azimuth, torch.tensor([-10.0], dtype=torch.float64), torch.tensor([2.5], dtype=torch.float64), torch.tensor([50.0], dtype=torch.float64))
        return torch_renderer.render(mesh, torch.full((4, 4, 3), 0.5, dtype=torch.float64), cams, 64).alpha.sum()

    azim = torch.tensor([30.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(area(azim), azim)
    h = 1.0  # wide enough to average over whole pixels entering and leaving the silhouette
    fd = (area(azim.detach() + h) - area(azim.detach() - h)) / (2 * h)
    assert grad.item() == pytest.approx(fd.item(), rel=0.1)


def test_gradients_reach_texture_and_elevation(torch_renderer):
    mesh = uv_sphere(0.8, 24, 12)
    texture = torch.rand(16, 16, 3, requires_grad=True)
    elev = torch.tensor([-10.0], requires_grad=True)
    cams = Cameras(torch.tensor([0.0]), elev, torch.tensor([2.5]), torch.tensor([50.0]))
    out = torch_renderer.render(mesh, Texture(texture), cams, 32)
    (out.rgb.sum() + out.alpha.sum()).backward()
    assert texture.grad.abs().sum() > 0 and elev.grad.abs().item() > 0


def test_silhouette_gradient_from_antialiasing(torch_renderer):
    """Moving the camera sideways changes coverage only at the silhouette: AA must see it."""
    mesh = uv_sphere(0.8, 32, 16)
    az = torch.tensor([0.0], requires_grad=True)
    cams = Cameras(az, torch.tensor([0.0]), torch.tensor([2.5]), torch.tensor([50.0]))
    out = torch_renderer.render(mesh, torch.full((4, 4, 3), 0.5), cams, 64, antialias=True)
    left_half = out.alpha[0, :, :32].sum()
    left_half.backward()
    assert az.grad.abs().item() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine; the renderer's CUDA path is tested on the device")
def test_cuda_matches_cpu(torch_renderer):
    mesh = uv_sphere(0.8, 24, 12)
    tex = torch.rand(32, 32, 3)
    cams = Cameras.orbit(4)
    cpu = torch_renderer.render(mesh, tex, cams, 64)
    gpu = torch_renderer.render(mesh.to("cuda"), tex.cuda(), cams.to("cuda"), 64)
    assert torch.allclose(cpu.rgb, gpu.rgb.cpu(), atol=1e-4)


def test_registered_through_entry_point():
    reg = texkit.get_registry()
    assert reg.get("renderers", "torch").distribution == "texkit-torch-render"
