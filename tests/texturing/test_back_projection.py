"""Back-projection: splatting known answers, gradients, hole filling and the render round trip."""

from __future__ import annotations

import math

import torch

from texkit import Cameras, Mesh
from texkit.texturing import TextureState, back_project, fill_holes, splat_bilinear
from texkit.uv import texel_centers_uv


def test_point_at_texel_centre_lands_in_one_texel():
    uv = texel_centers_uv(4, 4)[1, 2].unsqueeze(0)
    values, weight_sum = splat_bilinear(uv, torch.tensor([[0.7, 0.1, 0.2]]), torch.tensor([2.0]), 4)
    assert weight_sum[1, 2, 0] == 2.0 and weight_sum.sum() == 2.0
    assert torch.allclose(values[1, 2], torch.tensor([1.4, 0.2, 0.4]))


def test_point_between_centres_is_shared_bilinearly():
    centres = texel_centers_uv(4, 4)
    uv = (0.75 * centres[0, 0] + 0.25 * centres[0, 1]).unsqueeze(0)
    _, weight_sum = splat_bilinear(uv, torch.ones(1, 1), torch.ones(1), 4)
    assert torch.allclose(weight_sum[0, :2, 0], torch.tensor([0.75, 0.25]))


def test_gradcheck_splat():
    uv = (texel_centers_uv(3, 3).reshape(-1, 2)[:5] + 0.03).double().requires_grad_(True)
    values = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, v, w: splat_bilinear(u, v, w, 3), (uv, values, weights))


def test_fill_holes_takes_colour_from_coarser_level():
    color = torch.zeros(8, 8, 3)
    weight = torch.zeros(8, 8, 1)
    color[:4, :4] = torch.tensor([0.2, 0.4, 0.6])
    weight[:4, :4] = 1.0
    weight[1, 1] = 0.0  # a one-texel hole inside the painted block
    color[1, 1] = 0.0
    filled, coverage = fill_holes(color, weight, min_level=2)
    assert torch.allclose(filled[1, 1], torch.tensor([0.2, 0.4, 0.6]), atol=1e-6)
    assert coverage[1, 1, 0] == 1 and coverage[7, 7, 0] == 0


def _smooth_texture(size: int) -> torch.Tensor:
    uv = texel_centers_uv(size, size)
    u, v = uv[..., 0], uv[..., 1]
    return torch.stack(
        (0.5 + 0.3 * torch.sin(2 * math.pi * u), 0.5 + 0.3 * torch.cos(2 * math.pi * v), 0.5 + 0.2 * torch.sin(2 * math.pi * (u + v))), -1
    )


def test_round_trip_recovers_a_smooth_texture(torch_renderer, assets):
    mesh = Mesh.load(assets / "cow.obj")
    size = 256
    texture = _smooth_texture(size)
    cams = Cameras.from_angles(
        [0] * 8 + [-60, 60, -35, -35, 35, 35], [i * 45 for i in range(8)] + [0, 0, 60, -120, 120, -60]
    )
    with torch.no_grad():
        render = torch_renderer.render(mesh, texture, cams, 512, antialias=False)
        state = TextureState.empty(size).add(back_project(render, render.rgb, size, cos_thresh=0.1))
        result = state.texture(min_level=64)
    covered = result.coverage[..., 0] > 0
    assert covered.float().mean() > 0.3  # the cow's atlas covers part of the square
    error = (result.image - texture).abs()[covered].mean()
    assert error < 0.02, f"mean abs error {error:.4f}"


def test_back_projection_is_differentiable_in_colours_and_cameras(torch_renderer):
    from texkit.geometry.primitives import uv_sphere

    mesh = uv_sphere(0.8, 24, 12)
    elev = torch.tensor([-10.0], requires_grad=True)
    cams = Cameras(torch.tensor([30.0]), elev, torch.tensor([2.5]), torch.tensor([50.0]))
    render = torch_renderer.render(mesh, torch.full((8, 8, 3), 0.5), cams, 32)
    painted = torch.rand(1, 32, 32, 3, requires_grad=True)
    state = TextureState.empty(32).add(back_project(render, painted, 32))
    texture = state.texture(min_level=8)
    (texture.image * torch.rand_like(texture.image)).sum().backward()
    assert painted.grad.abs().sum() > 0 and elev.grad.abs().item() > 0
