"""Back-projection: splatting known answers, gradients, hole filling and the render round trip."""

from __future__ import annotations

import math

import pytest
import torch

from texkit import Cameras, Mesh
from texkit.back_projection import TextureState, back_project, fill_holes, splat_bilinear
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


@pytest.mark.slow  # 10-25 s on 2 shared CPU cores: 14 renders of the cow at 384 px
def test_round_trip_recovers_a_smooth_texture(torch_renderer, assets):
    mesh = Mesh.load(assets / "cow.obj")
    size = 256
    texture = _smooth_texture(size)
    cams = Cameras.from_angles(
        [0] * 8 + [-60, 60, -35, -35, 35, 35], [i * 45 for i in range(8)] + [0, 0, 60, -120, 120, -60]
    )
    with torch.no_grad():
        render = torch_renderer.render(mesh, texture, cams, 384, antialias=False)
        state = TextureState.empty(size).accumulate(back_project(render, render.rgb, size, cos_thresh=0.1))
        result = state.texture(min_level=64)
    covered = result.coverage[..., 0] > 0
    assert covered.float().mean() > 0.3  # the cow's atlas covers part of the square
    error = (result.image - texture).abs()[covered].mean()
    print(f"round trip: mean abs error {error:.4f} on {covered.float().mean():.2f} of the texels")
    assert error < 0.02, f"mean abs error {error:.4f}"


def test_back_projection_is_differentiable_in_colours_and_cameras(torch_renderer):
    from texkit.geometry.primitives import uv_sphere

    mesh = uv_sphere(0.8, 24, 12)
    elev = torch.tensor([-10.0], requires_grad=True)
    cams = Cameras(torch.tensor([30.0]), elev, torch.tensor([2.5]), torch.tensor([50.0]))
    render = torch_renderer.render(mesh, torch.full((8, 8, 3), 0.5), cams, 32)
    painted = torch.rand(1, 32, 32, 3, requires_grad=True)
    state = TextureState.empty(32).accumulate(back_project(render, painted, 32))
    texture = state.texture(min_level=8)
    (texture.image * torch.rand_like(texture.image)).sum().backward()
    assert painted.grad.abs().sum() > 0 and elev.grad.abs().item() > 0


def _flat_render(uv: torch.Tensor, view_cos: torch.Tensor):
    """A hand-made 1-view render whose pixels all hit face 0 at the given UVs and view cosines."""
    from texkit.types import RenderOutput

    h, w = uv.shape[:2]
    zeros = torch.zeros(1, h, w, 3)
    return RenderOutput(
        rgb=zeros, alpha=torch.ones(1, h, w, 1), depth=torch.ones(1, h, w, 1), normal=zeros,
        uv=uv[None], face_id=torch.zeros(1, h, w, dtype=torch.long), view_cos=view_cos[None, ..., None],
    )


def test_weights_threshold_and_power_of_view_cosine():
    uv = texel_centers_uv(4, 4)[:2, :2]  # four pixels each landing on one texel centre
    cos = torch.tensor([[1.0, 0.5], [0.2, 0.05]])
    render = _flat_render(uv, cos)
    painted = torch.rand(1, 2, 2, 3)
    proj = back_project(render, painted, 4, cos_thresh=0.1, cos_power=2.0)
    assert torch.allclose(proj.weight_sum[:2, :2, 0], torch.tensor([[1.0, 0.25], [0.04, 0.0]]))
    assert torch.allclose(proj.color_sum[0, 1], painted[0, 0, 1] * 0.25)
    assert torch.allclose(proj.viewcos_max[:2, :2, 0], torch.tensor([[1.0, 0.5], [0.2, 0.0]]))


def test_weighted_average_of_two_views_and_trimap_maps():
    uv = texel_centers_uv(8, 8)[:1, :1]
    red, blue = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0])
    state = TextureState.empty(8)
    state = state.accumulate(back_project(_flat_render(uv, torch.tensor([[0.9]])), red.view(1, 1, 1, 3), 8))
    state = state.accumulate(back_project(_flat_render(uv, torch.tensor([[0.3]])), blue.view(1, 1, 1, 3), 8))
    texture = state.texture(min_level=8)
    assert torch.allclose(texture.image[0, 0], torch.tensor([0.75, 0.0, 0.25]))
    assert texture.coverage[0, 0, 0] == 1 and texture.coverage[5, 5, 0] == 0
    assert torch.allclose(texture.image[5, 5], torch.tensor([0.5, 0.5, 0.5]))  # background grey
    assert torch.isclose(state.paint_count(min_level=8)[0, 0, 0], torch.tensor(1.2))
    assert torch.isclose(state.viewcos_map(min_level=8)[0, 0, 0], torch.tensor(0.9))
    assert state.paint_count(min_level=8)[7, 7, 0] == 0


def test_paint_count_fills_holes_from_coarser_level():
    state = TextureState.empty(8)
    state.weight_sum[:4, :4] = 1.0
    state.weight_sum[1, 1] = 0.0
    state.viewcos_cache[:4, :4] = 0.8
    state.viewcos_cache[2, 2] = 0.0
    assert torch.isclose(state.paint_count(min_level=4)[1, 1, 0], torch.tensor(1.0))
    assert torch.isclose(state.viewcos_map(min_level=4)[2, 2, 0], torch.tensor(0.8))


def test_mismatched_shapes_raise_texturing_errors():
    import pytest

    from texkit.errors import TexkitError

    render = _flat_render(texel_centers_uv(4, 4)[:2, :2], torch.ones(2, 2))
    with pytest.raises(TexkitError, match="does not match the render"):
        back_project(render, torch.rand(1, 3, 3, 3), 4)
    with pytest.raises(TexkitError, match="texture_size=state.size"):
        TextureState.empty(8).accumulate(back_project(render, torch.rand(1, 2, 2, 3), 4))


def test_the_view_cosine_cache_of_a_pixel_on_the_texture_edge_is_kept_by_the_edge_texel():
    """UV u = 1 (the right edge) and v = 1 (the top edge) lie on the border of the last texel: its view
    cosine goes to that texel (row 0, last column; row 1, last column), nowhere else."""
    uv = torch.tensor([[[1.0, 1.0], [1.0, 0.70]]])  # (1, 2, 2): a 1 x 2 render
    render = _flat_render(uv, torch.tensor([[0.9, 0.6]]))
    proj = back_project(render, torch.rand(1, 1, 2, 3), 4)
    want = torch.zeros(4, 4)
    want[0, 3], want[1, 3] = 0.9, 0.6
    torch.testing.assert_close(proj.viewcos_max[..., 0], want)


def test_a_pixel_exactly_at_the_cosine_threshold_does_not_contribute():
    uv = texel_centers_uv(4, 4)[:1, :2]
    render = _flat_render(uv, torch.tensor([[0.5, 0.6]]))
    proj = back_project(render, torch.rand(1, 1, 2, 3), 4, cos_thresh=0.5)
    assert proj.weight_sum[0, 0, 0].item() == 0.0 and proj.weight_sum[0, 1, 0].item() == pytest.approx(0.6)
