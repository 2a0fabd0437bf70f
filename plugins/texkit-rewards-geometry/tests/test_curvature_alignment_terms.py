"""The curvature-alignment terms (METHOD.md 4.3) on hand-built textures: (d . v)^2 per point, the field's
length irrelevant, the weighted average w_i = tanh(strength_i / min_gradient)."""

from __future__ import annotations

import math

import pytest
import torch
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment, alignment_terms

from texkit.uv import texel_centers_uv

T = 16


def _ramps(gentle: float, steep: float) -> torch.Tensor:
    """Grey texture growing along u: slope ``gentle`` per texel in the left half, ``steep`` in the right."""
    slopes = torch.tensor([gentle] * (T // 2) + [steep] * (T // 2))
    values = torch.cumsum(slopes, 0).expand(T, T)
    return values[..., None].expand(T, T, 3).contiguous()


def _params(**kw):
    return CurvatureAlignment.Params(**kw)


def test_gradient_along_the_field_scores_one_across_it_zero_whatever_the_field_length():
    texture = _ramps(0.02, 0.02)
    uv = texel_centers_uv(T, T)[[4, 8, 12], [4, 8, 11]]
    coverage = torch.ones(T, T, 1)
    for scale in (1.0, 0.01, 30.0):  # the field is only a direction
        along = alignment_terms(texture, uv, scale * torch.tensor([[1.0, 0.0]] * 3), coverage, _params())
        across = alignment_terms(texture, uv, scale * torch.tensor([[0.0, 1.0]] * 3), coverage, _params())
        assert along.item() == pytest.approx(1.0, abs=1e-3) and across.item() == pytest.approx(0.0, abs=1e-3)
    edges = alignment_terms(texture, uv, torch.tensor([[0.0, 1.0]] * 3), coverage, _params(edges="along"))
    assert edges.item() == pytest.approx(1.0, abs=1e-3)  # edges (isophotes) run along v here


def test_points_are_weighted_by_gradient_strength():
    gentle, steep, min_gradient = 0.01, 0.1, 0.05
    texture = _ramps(gentle, steep)
    centres = texel_centers_uv(T, T)
    uv = torch.stack((centres[8, 3], centres[8, 12]))  # one point on each ramp, away from the kink
    field = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # gentle point aligned (score 1), steep point across (score 0)
    params = _params(min_gradient=min_gradient, average="weighted")
    w1 = math.tanh(math.hypot(gentle, params.gradient_epsilon) / min_gradient)
    w2 = math.tanh(math.hypot(steep, params.gradient_epsilon) / min_gradient)
    got = alignment_terms(texture, uv, field, torch.ones(T, T, 1), params)
    assert got.item() == pytest.approx(w1 / (w1 + w2), rel=1e-3)
    assert alignment_terms(texture, uv, field, torch.ones(T, T, 1), _params(average="all")).item() == pytest.approx(0.5, abs=1e-3)


def test_smoothing_passes_may_be_zero():
    assert _params(iterations=0).iterations == 0
    with pytest.raises(ValueError):
        _params(iterations=-1)


def test_reference_field_normalisation_damps_short_fields():
    """field_normalisation = "reference": v / (sqrt(|v|^2 + 1e-6) + 1e-6). A unit-length field scores as
    the plain normalisation does; a field of length 1e-4 is scaled to about 0.0994, so (d . v)^2
    drops to 0.0994^2 (the plain style scales it to 1)."""
    texture = _ramps(0.02, 0.02)
    uv = texel_centers_uv(T, T)[[4, 8, 12], [4, 8, 11]]
    coverage = torch.ones(T, T, 1)
    field = torch.tensor([[1.0, 0.0]] * 3)
    params = _params(field_normalisation="reference", average="all")
    plain = alignment_terms(texture, uv, field, coverage, _params(average="all")).item()
    assert alignment_terms(texture, uv, 3.0 * field, coverage, params).item() == pytest.approx(plain, rel=1e-5)
    length = 1e-4 / (math.sqrt(1e-8 + 1e-6) + 1e-6)
    short = alignment_terms(texture, uv, 1e-4 * field, coverage, params).item()
    assert short == pytest.approx(plain * length**2, rel=1e-4)


def _diagonal() -> torch.Tensor:
    """Grey = (u + v) / 2 in UV axes (v up): the gradient runs along (1, 1), the isophotes along (-1, 1)."""
    uv = texel_centers_uv(T, T)
    grey = 0.5 * (uv[..., 0] + uv[..., 1])
    return grey[..., None].expand(T, T, 3).contiguous()


@pytest.mark.parametrize("normalize", ["per_texel", "per_point"])
def test_diagonal_gradient_across_and_along_the_field(normalize):
    texture = _diagonal()
    uv = texel_centers_uv(T, T)[[5, 8, 10], [5, 8, 10]]
    coverage = torch.ones(T, T, 1)
    gradient, isophote = torch.tensor([[1.0, 1.0]] * 3), torch.tensor([[-1.0, 1.0]] * 3)
    for edges, ones, zeros in (("across", gradient, isophote), ("along", isophote, gradient)):
        params = _params(edges=edges, normalize=normalize, average="all")
        assert alignment_terms(texture, uv, ones, coverage, params).item() == pytest.approx(1.0, abs=1e-3), edges
        assert alignment_terms(texture, uv, zeros, coverage, params).item() == pytest.approx(0.0, abs=1e-3), edges


def test_one_weak_point_scores_its_own_term():
    """The weighted average of a single point is its term, however small its weight (tanh(0.01 / 0.05) here)."""
    texture = _ramps(0.01, 0.01)
    uv = texel_centers_uv(T, T)[8, 4].unsqueeze(0)
    params = _params(min_gradient=0.05, average="weighted")
    assert alignment_terms(texture, uv, torch.tensor([[1.0, 0.0]]), torch.ones(T, T, 1), params).item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("hole_distance, counted", [(1, False), (2, True), (3, True)])
def test_a_point_counts_when_its_sobel_stencil_was_painted(hole_distance, counted):
    """Coverage is eroded by the Sobel stencil's half-width, 1 texel: an unpainted texel next to a point drops
    it, one 2 texels away does not. Point A (field along the gradient, term 1) and point B (across, term 0)."""
    texture = _ramps(0.02, 0.02)
    uv = texel_centers_uv(T, T)[[4, 11], [4, 11]]
    field = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    coverage = torch.ones(T, T, 1)
    coverage[4, 4 + hole_distance] = 0.0
    value = alignment_terms(texture, uv, field, coverage, _params()).item()
    assert value == pytest.approx(0.5 if counted else 0.0, abs=1e-3)
