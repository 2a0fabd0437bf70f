"""feature_emphasis's switches observed through their effect on the score: the ridge threshold is strict,
``minmax`` picks the normalisation ("clamp": (x - min) / max(range, 1e-8); "reference": (x - min) /
(range + 1e-8)), ``curvature`` picks the curvature map, ``direction = "constant"`` is the unit v axis,
and only texels whose 3 x 3 Sobel stencil was painted count (hand-built inputs, known answers)."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis, feature_emphasis_terms

from texkit.geometry import curvature_maps, minmax_signed

FLAT = torch.full((4, 4, 3), 0.5, dtype=torch.float64)  # no gradient: N(G) = 0 and the projection is 0


def _terms(k: torch.Tensor, **params) -> dict[str, torch.Tensor]:
    p = FeatureEmphasis.Params(average="all", colourfulness_weight=0.0, **params)
    direction = torch.tensor([0.0, 1.0], dtype=torch.float64).expand(*k.shape, 2)
    return feature_emphasis_terms(FLAT, k, direction, torch.ones_like(k), p)


def test_a_texel_at_the_ridge_threshold_is_not_a_ridge():
    """M = [K > threshold]: on a flat texture L_dir = mean(M) (the wanted edge is missing on every ridge)
    and L_mag = mean(N(K)^2), N(K) = (K + 1) / 2 here."""
    k = torch.tensor([1.0] * 4 + [0.5] * 4 + [-1.0] * 8, dtype=torch.float64).reshape(4, 4)
    for minmax in ("clamp", "reference"):
        terms = _terms(k, ridge_threshold=0.5, minmax=minmax)
        assert float(terms["l_dir"]) == pytest.approx(4 / 16, abs=1e-9), minmax  # the 0.5 texels are no ridge
        assert float(terms["l_mag"]) == pytest.approx((4 * 1.0 + 4 * 0.75**2) / 16, abs=1e-7), minmax
        assert float(terms["value"]) == pytest.approx(-(0.25 + 6.25 / 16), abs=1e-7)


def test_minmax_setting_picks_the_normalisation_of_a_tiny_range():
    """K spanning 1e-8: "clamp" stretches it to {0, 1}, "reference" divides by 1e-8 + 1e-8, giving {0, 0.5};
    L_mag = mean(N(K)^2) over half the texels is 0.5 or 0.125."""
    k = torch.tensor([0.0, 1e-8] * 8, dtype=torch.float64).reshape(4, 4)
    assert float(_terms(k, minmax="clamp")["l_mag"]) == pytest.approx(0.5, rel=1e-9)
    assert float(_terms(k, minmax="reference")["l_mag"]) == pytest.approx(0.125, rel=1e-9)
    for minmax in ("clamp", "reference"):
        assert float(_terms(k, minmax=minmax)["l_dir"]) == 0.0  # no ridge


SIZE = 32


def _texture_and_coverage() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    texture = torch.rand(SIZE, SIZE, 3, generator=gen, dtype=torch.float64)
    coverage = torch.ones(SIZE, SIZE, 1, dtype=torch.float64)
    coverage[10:14, 12:20] = 0.0  # an unpainted hole inside the atlas
    return texture, coverage


def _expected(gourd_cache, texture, coverage, reward, direction=None) -> dict[str, torch.Tensor]:
    """The reward by hand: K = minmax_signed(the chosen curvature map) on the atlas, weights = atlas texels
    whose 3 x 3 neighbourhood is painted."""
    maps = curvature_maps(gourd_cache, SIZE)
    mask = maps["mask"].to(torch.float64)
    k = minmax_signed(maps[reward.params.curvature], maps["mask"]).to(torch.float64) * mask
    if direction is None:
        direction = maps["dir_max"].to(torch.float64)
    painted = -torch.nn.functional.max_pool2d(-torch.nn.functional.pad(coverage[..., 0][None, None], (1, 1, 1, 1), mode="replicate"), 3, stride=1)[0, 0]
    return feature_emphasis_terms(texture, k, direction, painted * mask, reward.params)


@pytest.mark.parametrize("curvature", ["mean", "k_min"])
def test_curvature_setting_picks_the_map_and_painted_stencils_weight_the_means(gourd, gourd_cache, make_context, curvature):
    texture, coverage = _texture_and_coverage()
    reward = FeatureEmphasis(curvature=curvature)
    out = reward(make_context(gourd, gourd_cache, texture, coverage))
    want = _expected(gourd_cache, texture, coverage, reward)
    for key in ("l_mag", "l_dir", "colourfulness"):
        assert out.metrics[key] == pytest.approx(float(want[key]), rel=1e-9, abs=1e-12), key
    # the two maps differ on the gourd: the setting decides the score
    other = FeatureEmphasis(curvature="k_min" if curvature == "mean" else "mean")
    assert abs(other(make_context(gourd, gourd_cache, texture, coverage)).metrics["l_mag"] - out.metrics["l_mag"]) > 1e-3


def test_constant_direction_is_the_unit_v_axis_in_float64(gourd, gourd_cache, make_context):
    """With the reference normalisation (range + 1e-8) even the direction's length reaches the score: the
    reward equals the terms computed with the unit vector (0, 1) to float64 precision."""
    texture, coverage = _texture_and_coverage()
    reward = FeatureEmphasis(direction="constant", minmax="reference")
    out = reward(make_context(gourd, gourd_cache, texture, coverage))
    unit_v = torch.tensor([0.0, 1.0], dtype=torch.float64).expand(SIZE, SIZE, 2)
    want = _expected(gourd_cache, texture, coverage, reward, unit_v)
    assert float(out.value) == pytest.approx(float(want["value"]), rel=1e-12, abs=0)
    assert out.metrics["l_dir"] == pytest.approx(float(want["l_dir"]), rel=1e-12, abs=0)


@pytest.mark.parametrize("minmax", ["clamp", "reference"])
def test_picture_grey_is_the_configured_normalisation_of_k(gourd, gourd_cache, make_context, minmax):
    """Off the ridges the picture is N(K): (K + 1) / 2 ("clamp"; K spans [-1, 1] on the atlas) or
    (K + 1) / (2 + 1e-8) ("reference"), in float64."""
    texture, coverage = _texture_and_coverage()
    reward = FeatureEmphasis(minmax=minmax)
    picture = reward.visualize(make_context(gourd, gourd_cache, texture, coverage))
    maps = curvature_maps(gourd_cache, SIZE)
    k = minmax_signed(maps["mean"], maps["mask"]).to(torch.float64)
    plain = maps["mask"] & (k <= reward.params.ridge_threshold)
    assert int(plain.sum()) > 100
    want = (k + 1) / (2.0 if minmax == "clamp" else 2.0 + 1e-8)
    torch.testing.assert_close(picture[..., 0][plain], want[plain], rtol=0, atol=1e-13)
