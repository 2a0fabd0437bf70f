"""feature_emphasis with ``direction = "constant"``: the edge direction on ridges is the documented
constant (0, 1) (the v axis), observed through L_dir; and the picture's ridge tint."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis
from texkit_rewards_geometry.texture_ops import minmax

SIZE = 64


def _half_ramps(v_ramp_left: bool) -> torch.Tensor:
    """Grey ramps: one half of the texture varies along v (rows) only, the other along u (columns) only."""
    ramp = torch.linspace(0.1, 0.9, SIZE)
    along_v = ramp[:, None].expand(SIZE, SIZE)
    along_u = ramp[None, :].expand(SIZE, SIZE)
    left = torch.arange(SIZE)[None, :] < SIZE // 2
    grey = torch.where(left, along_v, along_u) if v_ramp_left else torch.where(left, along_u, along_v)
    return grey[..., None].expand(SIZE, SIZE, 3).contiguous()


def test_constant_direction_is_the_v_axis(ribbed, ribbed_cache, make_context):
    """Ridge texels whose gradient runs along v are on target (error 0), along u off target (error 1):
    the two mirrored textures split the ridge fraction between them (a diagonal direction would treat
    both halves alike and give each the whole fraction)."""
    reward = FeatureEmphasis(direction="constant", colourfulness_weight=0.0)
    reward.prepare(ribbed, ribbed_cache)
    a = reward(make_context(ribbed, ribbed_cache, _half_ramps(True)))
    b = reward(make_context(ribbed, ribbed_cache, _half_ramps(False)))
    mask, k, _ = reward._texel_maps(make_context(ribbed, ribbed_cache, _half_ramps(True)))
    ridge = ((k > reward.params.ridge_threshold) & (mask > 0)).float()
    fraction = float((ridge * mask).sum() / mask.sum())
    assert fraction > 0.02
    assert a.metrics["l_dir"] + b.metrics["l_dir"] == pytest.approx(fraction, rel=0.25)
    assert min(a.metrics["l_dir"], b.metrics["l_dir"]) < 0.8 * fraction


def test_picture_tints_ridges_sixty_percent_orange(ribbed, ribbed_cache, make_context):
    reward = FeatureEmphasis()
    reward.prepare(ribbed, ribbed_cache)
    ctx = make_context(ribbed, ribbed_cache, _half_ramps(True))
    picture = reward.visualize(ctx)
    mask, k, _ = reward._texel_maps(ctx)
    ridge = (k > reward.params.ridge_threshold) & (mask > 0)
    assert int(ridge.sum()) > 20
    wanted = minmax(k, mask).clamp(0, 1)
    orange = torch.tensor([1.0, 0.55, 0.1])
    want = 0.4 * wanted[ridge][:, None] + 0.6 * orange
    torch.testing.assert_close(picture[ridge], want, atol=1e-5, rtol=0)
