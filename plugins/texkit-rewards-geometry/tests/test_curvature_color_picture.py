"""curvature_color: its picture (what colour it asks for at each texel) and its coverage metric, as
known answers on the ribbed sphere (normalised curvature of both signs).

The picture's documented colours: target t in [-1, 1] (t = 2 sigmoid(s (K - tau)) - 1 in sharp mode,
K - K_bar clamped in smooth mode), red = max(t, 0), blue = max(-t, 0), colour (1 - blue, 1 - red - blue,
1 - red): pure red at t = 1, pure blue at t = -1, white at t = 0; grey 0.5 off the atlas.
"""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_geometry.curvature_color import CurvatureColor

SIZE = 64


def _expected(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    red, blue = t.clamp_min(0.0), (-t).clamp_min(0.0)
    image = torch.stack((1.0 - blue, 1.0 - red - blue, 1.0 - red), dim=-1)
    atlas = (mask > 0)[..., None]
    return torch.where(atlas, image, torch.full_like(image, 0.5))


def _picture(reward, ribbed, ribbed_cache, make_context, coverage=None):
    reward.prepare(ribbed, ribbed_cache)
    ctx = make_context(ribbed, ribbed_cache, torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(0)), coverage)
    mask, k = reward._texel_maps(ctx)
    return reward.visualize(ctx), mask, k


def test_sharp_picture_is_red_above_tau_blue_below_white_at_it(ribbed, ribbed_cache, make_context):
    reward = CurvatureColor(mode="sharp", tau=0.2, sharpness=8.0)
    picture, mask, k = _picture(reward, ribbed, ribbed_cache, make_context)
    atlas = mask > 0
    assert int(atlas.sum()) > 500 and bool((k[atlas] > 0.6).any()) and bool((k[atlas] < -0.2).any())
    torch.testing.assert_close(picture, _expected(2.0 * torch.sigmoid(8.0 * (k - 0.2)) - 1.0, mask), atol=1e-6, rtol=0)
    assert bool((picture[~atlas] == 0.5).all()) and float(picture.max()) <= 1.0 and float(picture.min()) >= 0.0


def test_smooth_picture_centred_on_the_painted_mean(ribbed, ribbed_cache, make_context):
    coverage = torch.zeros(SIZE, SIZE, 1)
    coverage[: SIZE // 2] = 1.0  # only the top half painted: the mean is over those texels
    reward = CurvatureColor(mode="smooth", average="painted", centre=True)
    picture, mask, k = _picture(reward, ribbed, ribbed_cache, make_context, coverage)
    w = coverage[..., 0] * mask
    centre = (w * k).sum() / w.sum()
    assert abs(float(centre)) > 1e-3  # centring moves the colours
    torch.testing.assert_close(picture, _expected((k - centre).clamp(-1.0, 1.0), mask), atol=1e-6, rtol=0)
    uncentred = CurvatureColor(mode="smooth", centre=False)
    picture, mask, k = _picture(uncentred, ribbed, ribbed_cache, make_context)
    torch.testing.assert_close(picture, _expected(k.clamp(-1.0, 1.0), mask), atol=1e-6, rtol=0)


@pytest.mark.parametrize("painted_rows", [0, 16, 64])
def test_covered_fraction_counts_the_painted_atlas_texels(ribbed, ribbed_cache, make_context, painted_rows):
    coverage = torch.zeros(SIZE, SIZE, 1)
    coverage[:painted_rows] = 1.0
    reward = CurvatureColor()
    reward.prepare(ribbed, ribbed_cache)
    ctx = make_context(ribbed, ribbed_cache, torch.full((SIZE, SIZE, 3), 0.5), coverage)
    mask, _ = reward._texel_maps(ctx)
    want = float(((coverage[..., 0] * mask) > 0).float().mean())
    assert reward(ctx).metrics["covered_fraction"] == pytest.approx(want)
    if painted_rows == 0:
        assert want == 0.0
    else:
        assert 0.0 < want < 1.0


def test_smooth_picture_centred_below_zero_saturates_at_pure_red(ribbed, ribbed_cache, make_context):
    """Coverage 1e-4 on the concave texels only: K_bar is the mean of the negative K there (a uniform
    coverage scale cancels, even with weights summing below 1), so K - K_bar exceeds 1 on the ridges,
    where the target is clamped to t = 1: pure red, and the picture stays in [0, 1]."""
    reward = CurvatureColor(mode="smooth", average="painted", centre=True)
    reward.prepare(ribbed, ribbed_cache)
    probe = make_context(ribbed, ribbed_cache, torch.full((SIZE, SIZE, 3), 0.5))
    mask, k = reward._texel_maps(probe)
    concave = (mask > 0) & (k < 0)
    coverage = (1e-4 * concave.float())[..., None]
    picture, mask, k = _picture(reward, ribbed, ribbed_cache, make_context, coverage)
    centre = k[concave].mean()
    assert float(centre) < -0.1 and float(coverage.sum()) < 1.0
    over = (mask > 0) & (k - centre > 1.0)
    assert int(over.sum()) > 10
    torch.testing.assert_close(picture, _expected((k - centre).clamp(-1.0, 1.0), mask), atol=1e-5, rtol=0)
    assert bool((picture[over] == torch.tensor([1.0, 0.0, 0.0])).all())
    assert float(picture.min()) >= 0.0 and float(picture.max()) <= 1.0


def test_signed_scale_divides_by_the_largest_magnitude_on_the_atlas():
    from texkit_rewards_geometry.curvature_color import normalized_curvature

    maps = {
        "mean": torch.tensor([[0.5, -0.25], [0.1, 9.0]]),
        "k_min": torch.tensor([[-0.4, 0.2], [0.0, -9.0]]),
        "mask": torch.tensor([[True, True], [True, False]]),
    }
    torch.testing.assert_close(normalized_curvature(maps, "mean", "signed"), torch.tensor([[1.0, -0.5], [0.2, 0.0]]))
    torch.testing.assert_close(normalized_curvature(maps, "k_min", "signed"), torch.tensor([[-1.0, 0.5], [0.0, 0.0]]))
    torch.testing.assert_close(normalized_curvature(maps, "mean", "minmax"), torch.tensor([[1.0, -1.0], [-1 / 15, 0.0]]))
