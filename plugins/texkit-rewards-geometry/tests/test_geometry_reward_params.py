"""Every geometry reward's parameters: the documented defaults, each bound at and beyond its limit, and the
curvature-colour value on hand-built maps (METHOD.md 4.5)."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment
from texkit_rewards_geometry.curvature_color import CurvatureColor, curvature_color_value
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis
from texkit_rewards_geometry.symmetry import Symmetry as SymmetryReward

DEFAULTS = {
    CurvatureAlignment: {"iterations": 500, "renormalize_every": 5, "edges": "across", "min_gradient": 1e-3, "normalize": "per_texel", "gradient_epsilon": 1e-8, "average": "weighted"},
    CurvatureColor: {"mode": "sharp", "tau": -0.7, "sharpness": 100.0, "curvature": "mean", "scale": "minmax", "average": "painted", "denominator": "clamp"},
    FeatureEmphasis: {"ridge_threshold": 0.6, "colourfulness_weight": 1e-3, "gradient_epsilon": 1e-8, "projection_epsilon": 0.0, "minmax": "clamp"},
    SymmetryReward: {"patch": 3, "max_distance": 0.02, "max_roundtrip": 0.03, "method": "plane", "average": "painted"},
}

# (reward, field, limit, kind): "ge" accepts the limit, "gt" refuses it; the value beyond is refused either way
BOUNDS = [
    (CurvatureAlignment, "iterations", 0, "ge"),
    (CurvatureAlignment, "renormalize_every", 1, "ge"),
    (CurvatureAlignment, "min_gradient", 0.0, "ge"),
    (CurvatureAlignment, "gradient_epsilon", 0.0, "ge"),
    (CurvatureColor, "sharpness", 0.0, "gt"),
    (FeatureEmphasis, "colourfulness_weight", 0.0, "ge"),
    (FeatureEmphasis, "gradient_epsilon", 0.0, "ge"),
    (FeatureEmphasis, "projection_epsilon", 0.0, "ge"),
    (SymmetryReward, "patch", 1, "ge"),
    (SymmetryReward, "max_distance", 0.0, "gt"),
    (SymmetryReward, "max_roundtrip", 0.0, "gt"),
]


@pytest.mark.parametrize("reward", list(DEFAULTS), ids=lambda r: r.name)
def test_defaults_are_the_documented_ones(reward):
    params = reward.Params()
    assert {k: getattr(params, k) for k in DEFAULTS[reward]} == DEFAULTS[reward]


@pytest.mark.parametrize("reward, field, limit, kind", BOUNDS, ids=[f"{r.name}.{f}" for r, f, _, _ in BOUNDS])
def test_bounds_at_and_beyond_the_limit(reward, field, limit, kind):
    step = 1 if isinstance(limit, int) else 1e-9
    assert getattr(reward.Params(**{field: limit + step}), field) == limit + step
    if kind == "ge":
        assert getattr(reward.Params(**{field: limit}), field) == limit
    else:
        with pytest.raises(ValueError):
            reward.Params(**{field: limit})
    with pytest.raises(ValueError):
        reward.Params(**{field: limit - step})


def _two_texels():
    texture = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])  # red at high curvature, blue at low
    k = torch.tensor([[1.0, -1.0]])
    return texture, k


def test_curvature_colour_smooth_is_the_curvature_weighted_mean_of_red_minus_blue():
    texture, k = _two_texels()
    params = CurvatureColor.Params(mode="smooth")
    weights = torch.tensor([[0.25, 0.25]])  # weights below 1 in total: the sum divides
    assert curvature_color_value(texture, k, weights, params).item() == pytest.approx((0.25 * 1 + 0.25 * 1) / 0.5)
    inverse = texture.flip(-1)
    assert curvature_color_value(inverse, k, weights, params).item() == pytest.approx(-1.0)


def test_curvature_colour_sharp_splits_at_tau():
    texture, k = _two_texels()
    params = CurvatureColor.Params()  # sharp, tau -0.7, sharpness 100: K = 1 is high, K = -1 is low
    weights = torch.tensor([[0.3, 0.2]])
    assert curvature_color_value(texture, k, weights, params).item() == pytest.approx(1.0, abs=1e-6)
    # tau between the two curvatures decides: above both, everything is "low"
    high_tau = CurvatureColor.Params(tau=1.5, denominator="add")
    low = curvature_color_value(texture, k, weights, high_tau).item()
    m = torch.sigmoid(100.0 * (k - 1.5))
    want = 0.5 * ((0.3 * m[0, 0] * 1 - 0.2 * m[0, 1] * 1) / ((0.3 * m[0, 0] + 0.2 * m[0, 1]) + 1e-8) - (0.3 * (1 - m[0, 0]) - 0.2 * (1 - m[0, 1])) / (0.5 - 0.3 * m[0, 0] - 0.2 * m[0, 1] + 1e-8))
    assert low == pytest.approx(want.item(), rel=1e-4, abs=1e-7)
    clamped = curvature_color_value(texture, k, weights, CurvatureColor.Params(tau=1.5)).item()
    assert clamped == pytest.approx(0.5 * (0.0 - 0.2), abs=1e-6)  # no high texel: the first ratio is 0 / 1e-12 -> tiny


def test_curvature_colour_add_denominator_on_tiny_weights():
    """The reference's denominators: sum + 1e-8 (so tiny weights give 2e-8 / 3e-8, not 2e-8 / 2e-8)."""
    texture, k = _two_texels()
    weights = torch.tensor([[2e-8, 2e-8]], dtype=torch.float64)
    params = CurvatureColor.Params(denominator="add")
    value = curvature_color_value(texture.double(), k.double(), weights, params)
    assert value.item() == pytest.approx(2.0 / 3.0, rel=1e-6)
    assert curvature_color_value(texture.double(), k.double(), weights, CurvatureColor.Params()).item() == pytest.approx(1.0, rel=1e-6)


def test_a_context_without_a_geometry_cache_scores_like_one_with_it_and_builds_the_maps_once(gourd, gourd_cache, make_context, monkeypatch):
    """Texel maps come from a memory-only cache when the context has none, keyed by the mesh's content:
    the same value as with the shared cache, and one build for repeated calls on the same mesh."""
    from texkit_rewards_geometry.curvature_color import CurvatureColor

    import texkit
    import texkit.geometry as geometry

    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    with_cache = CurvatureColor()
    with_cache.prepare(gourd, gourd_cache)
    want = float(with_cache(make_context(gourd, gourd_cache, image)).value)
    builds = []
    real = geometry.curvature_maps
    monkeypatch.setattr(geometry, "curvature_maps", lambda *a, **k: builds.append(1) or real(*a, **k))
    reward = CurvatureColor()
    reward.prepare(gourd, gourd_cache)
    for _ in range(3):
        ctx = texkit.RewardContext(mesh=gourd, texture=texkit.Texture(image))
        assert float(reward(ctx).value) == pytest.approx(want, rel=1e-6)
    assert len(builds) == 1


def test_the_installed_plugin_registers_every_geometry_reward():
    import texkit

    names = set(texkit.get_registry().names("rewards"))
    assert {"camera_pose", "curvature_alignment", "curvature_color", "feature_emphasis", "reference", "symmetry"} <= names
