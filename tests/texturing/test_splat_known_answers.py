"""Bilinear splatting and the texture state as known answers: the four corners of a point, texture
edges, the view-cosine cache, hole filling down to ``min_level`` and batched textures."""

from __future__ import annotations

import pytest
import torch

from texkit.back_projection import BackProjection, TextureState, TexturingError, fill_holes, splat_bilinear
from texkit.uv import texel_centers_uv


def test_a_point_between_four_centres_is_shared_by_all_four():
    c = texel_centers_uv(4, 4)
    # 30 % of the way from column 1 to 2 and 80 % of the way from row 1 to row 2
    uv = (c[1, 1] + 0.3 * (c[1, 2] - c[1, 1]) + 0.8 * (c[2, 1] - c[1, 1])).unsqueeze(0)
    _, weights = splat_bilinear(uv, torch.ones(1, 1), torch.ones(1), 4)
    want = torch.zeros(4, 4)
    want[1, 1], want[1, 2], want[2, 1], want[2, 2] = 0.7 * 0.2, 0.3 * 0.2, 0.7 * 0.8, 0.3 * 0.8
    torch.testing.assert_close(weights[..., 0], want)


def test_a_point_between_rows_is_shared_vertically():
    c = texel_centers_uv(4, 4)
    uv = (0.75 * c[2, 3] + 0.25 * c[3, 3]).unsqueeze(0)
    values, weights = splat_bilinear(uv, torch.tensor([[2.0]]), torch.tensor([0.5]), 4)
    assert weights[2, 3, 0].item() == pytest.approx(0.375) and weights[3, 3, 0].item() == pytest.approx(0.125)
    assert weights.sum().item() == pytest.approx(0.5) and values.sum().item() == pytest.approx(1.0)


def test_corners_outside_the_texture_are_dropped():
    c = texel_centers_uv(4, 4)
    uv = (c[0, 0] - 0.5 * (c[0, 1] - c[0, 0])).unsqueeze(0)  # half a texel left of the first column
    _, weights = splat_bilinear(uv, torch.ones(1, 1), torch.ones(1), 4)
    assert weights[0, 0, 0].item() == pytest.approx(0.5) and weights.sum().item() == pytest.approx(0.5)
    uv = (c[3, 3] + 0.5 * (c[3, 3] - c[2, 2])).unsqueeze(0)  # beyond the last row and column
    _, weights = splat_bilinear(uv, torch.ones(1, 1), torch.ones(1), 4)
    assert weights[3, 3, 0].item() == pytest.approx(0.25) and weights.sum().item() == pytest.approx(0.25)


def test_fill_holes_stops_at_min_level_and_reports_coverage():
    color = torch.zeros(8, 8, 1)
    weight = torch.zeros(8, 8, 1)
    color[0, 0], weight[0, 0] = 2.0, 4.0  # one painted texel of colour 0.5
    filled, covered = fill_holes(color, weight, min_level=4)  # levels 8 and 4: the 2 x 2 block around it fills
    assert covered[..., 0].sum().item() == 4 and 0.0 < filled[1, 1, 0].item() <= 0.5  # bilinear from the coarser level
    assert filled[0, 0, 0].item() == pytest.approx(0.5) and filled[4, 4, 0].item() == 0.0
    filled, covered = fill_holes(color, weight, min_level=1)  # down to one texel: everything fills
    assert covered.min().item() == 1 and filled.min().item() == pytest.approx(0.5, abs=1e-6)
    filled, covered = fill_holes(color, weight, min_level=8)  # no coarser level
    assert covered[..., 0].sum().item() == 1
    odd_c, odd_w = torch.zeros(6, 6, 1), torch.zeros(6, 6, 1)
    odd_c[0, 0], odd_w[0, 0] = 1.0, 1.0
    _, odd_cov = fill_holes(odd_c, odd_w, min_level=1)  # 6 -> 3, then 3 is odd: the pyramid stops there
    assert odd_cov[..., 0].sum().item() == 4


def test_texture_state_accumulates_and_renders_with_background():
    state = TextureState.empty(4, batch=2)
    assert state.size == 4 and state.batch == 2 and state.color_sum.shape == (4, 4, 6)
    proj = BackProjection(torch.zeros(4, 4, 6), torch.zeros(4, 4, 1), torch.zeros(4, 4, 1))
    proj.color_sum[1, 2] = torch.tensor([0.2, 0.4, 0.6, 0.6, 0.4, 0.2])
    proj.weight_sum[1, 2] = 2.0
    proj.viewcos_max[1, 2] = 0.7
    state = state.accumulate(proj).accumulate(BackProjection(proj.color_sum, proj.weight_sum, 0.5 * proj.viewcos_max))
    assert state.weight_sum[1, 2, 0].item() == 4.0 and state.viewcos_cache[1, 2, 0].item() == pytest.approx(0.7)
    texture = state.texture(min_level=4, background=0.25)
    assert texture.image.shape == (2, 4, 4, 3) and texture.coverage.shape == (2, 4, 4, 1)
    torch.testing.assert_close(texture.image[0, 1, 2], torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(texture.image[1, 1, 2], torch.tensor([0.3, 0.2, 0.1]))
    assert texture.image[0, 0, 0].tolist() == [0.25] * 3 and texture.coverage[1, 0, 0, 0] == 0
    single = TextureState.empty(4).texture(min_level=4)
    assert single.image.shape == (4, 4, 3) and single.image[0, 0].tolist() == [0.5] * 3  # default background
    assert state.paint_count(4)[1, 2, 0].item() == 4.0 and state.viewcos_map(4)[1, 2, 0].item() == pytest.approx(0.7)
    with pytest.raises(TexturingError, match="back-projection of size 8 added to a texture of size 4"):
        state.accumulate(BackProjection(torch.zeros(8, 8, 6), torch.zeros(8, 8, 1), torch.zeros(8, 8, 1)))


def test_a_state_from_a_texture_returns_it_where_painted():
    image = torch.rand(4, 4, 3, generator=torch.Generator().manual_seed(0))
    weight = torch.zeros(4, 4, 1)
    weight[:2] = 0.5
    state = TextureState.from_texture(image, weight, torch.full((4, 4, 1), 2.0), batch=3)
    assert state.batch == 3 and state.viewcos_cache.max().item() == 2.0
    texture = state.texture(min_level=4, background=0.0)
    torch.testing.assert_close(texture.image[2, :2], image[:2])
    for bad in ((torch.rand(4, 4, 4), weight), (torch.rand(4, 5, 3), weight)):
        with pytest.raises(TexturingError, match="do not fit one state"):
            TextureState.from_texture(bad[0], bad[1], torch.zeros(4, 4, 1))


def test_fill_holes_upsamples_coarser_colours_at_texel_centres():
    """A hole takes the coarser level's colour bilinearly at its own centre (half-texel centres,
    align_corners=False): level 2 here is [[0, 0.5], [0.5, 1]], so texel (0, 1) of the 4 x 4 gets
    0.75 * 0 + 0.25 * 0.5 = 0.125 (corner-aligned sampling would give 1/6)."""
    color = torch.zeros(4, 4, 1)
    weight = torch.zeros(4, 4, 1)
    weight[0, 0] = 1.0  # colour 0
    color[3, 3], weight[3, 3] = 1.0, 1.0  # colour 1
    filled, covered = fill_holes(color, weight, min_level=1)
    assert filled[0, 1, 0].item() == pytest.approx(0.125, abs=1e-6)
    assert filled[0, 0, 0].item() == 0.0 and filled[3, 3, 0].item() == 1.0 and covered.min().item() == 1.0


def test_fill_holes_goes_down_to_128_texels_by_default():
    color = torch.zeros(256, 256, 1)
    weight = torch.zeros(256, 256, 1)
    color[0, 0], weight[0, 0] = 0.5, 1.0
    filled, covered = fill_holes(color, weight)
    assert covered[..., 0].sum().item() == 4  # the 2 x 2 block of level 128 around it, nothing further
    assert filled[1, 1, 0].item() > 0.0 and covered[2, 2, 0].item() == 0.0


def test_a_weight_of_1e_8_counts_as_empty():
    color = torch.zeros(2, 2, 1, dtype=torch.float64)
    weight = torch.zeros(2, 2, 1, dtype=torch.float64)
    weight[0, 0] = 1e-8
    color[1, 1], weight[1, 1] = 2.0, 1.0
    filled, covered = fill_holes(color, weight, min_level=2)
    assert covered[0, 0, 0].item() == 0.0 and covered[1, 1, 0].item() == 1.0


def test_from_texture_defaults_to_one_sample():
    image = torch.full((4, 4, 3), 0.25)
    state = TextureState.from_texture(image, torch.ones(4, 4, 1), torch.zeros(4, 4, 1))
    assert state.batch == 1 and state.color_sum.shape == (4, 4, 3)


@pytest.mark.parametrize("wrong", ["weight", "cache"])
def test_from_texture_refuses_a_weight_or_cache_of_another_size_alone(wrong):
    image, weight, cache = torch.zeros(4, 4, 3), torch.ones(4, 4, 1), torch.zeros(4, 4, 1)
    if wrong == "weight":
        weight = torch.ones(8, 8, 1)
    else:
        cache = torch.zeros(8, 8, 1)
    with pytest.raises(TexturingError, match="do not fit one state"):
        TextureState.from_texture(image, weight, cache)


def test_texture_paint_count_and_view_cosines_fill_down_to_128_texels_by_default():
    color = torch.zeros(256, 256, 3)
    weight = torch.zeros(256, 256, 1)
    color[0, 0], weight[0, 0] = 0.5, 1.0
    state = TextureState(color, weight, weight * 0.7)
    assert state.texture().coverage[..., 0].sum().item() == 4  # the 2 x 2 block of level 128 around it
    for maps in (state.paint_count, state.viewcos_map):  # filled from level 128, not from the painted texel alone
        assert torch.equal(maps(), maps(128)) and not torch.equal(maps(), maps(256))
