"""Texture-space rewards read only painted texels, and only texels where texkit.uv puts the UV points
(never the vertically mirrored ones: the reference code's pitfall, METHOD.md section 5)."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment
from texkit_rewards_geometry.curvature_color import CurvatureColor
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis
from texkit_rewards_geometry.symmetry import Symmetry

import texkit

SIZE = 64

TEXTURE_SPACE_REWARDS = [
    Symmetry(),
    CurvatureColor(mode="sharp"),
    CurvatureColor(mode="smooth"),
    FeatureEmphasis(),
    CurvatureAlignment(iterations=20),
]
IDS = ["symmetry", "curvature_color-sharp", "curvature_color-smooth", "feature_emphasis", "curvature_alignment"]


@pytest.mark.parametrize("reward", TEXTURE_SPACE_REWARDS, ids=IDS)
def test_no_reward_samples_a_mirrored_texel(reward, top_band_gourd, make_context):
    """The atlas occupies v in [0.55, 1], i.e. rows 0 .. 0.45 H (row 0 = top). Every texel that
    influences the reward must lie there (plus the few texels of its stencils); the bottom half, which
    holds the mirrored rows 0.55 H .. H, must get no gradient."""
    cache = texkit.GeometryCache(top_band_gourd, root=False)
    image = torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    reward(make_context(top_band_gourd, cache, image)).value.backward()
    per_row = image.grad.abs().sum(dim=(1, 2))
    top_rows = SIZE // 2  # atlas rows end at 0.45 H = 28.8; patches, Sobel stencils and bilinear taps reach 2 texels further
    assert per_row[:top_rows].sum() > 0
    assert per_row[top_rows:].abs().max() == 0, f"rows {torch.nonzero(per_row[top_rows:])[:, 0] + top_rows} get gradient"


@pytest.mark.parametrize("reward", TEXTURE_SPACE_REWARDS, ids=IDS)
def test_unpainted_texels_neither_dilute_nor_game_the_reward(reward, gourd, gourd_cache, make_context):
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(SIZE, SIZE, 3, generator=gen)
    coverage = torch.zeros(SIZE, SIZE, 1)
    coverage[:, : SIZE // 2] = 1.0  # the left half of the atlas was painted
    base = reward(make_context(gourd, gourd_cache, image, coverage)).value
    # anything at all in the unpainted texels: the score does not move
    for fill in (torch.zeros(SIZE, SIZE, 3), torch.ones(SIZE, SIZE, 3), torch.rand(SIZE, SIZE, 3, generator=gen)):
        other = torch.where(coverage > 0, image, fill)
        assert torch.isclose(reward(make_context(gourd, gourd_cache, other, coverage)).value, base, atol=1e-6)
    # and the gradient is zero there
    image.requires_grad_(True)
    reward(make_context(gourd, gourd_cache, image, coverage)).value.backward()
    assert image.grad[:, SIZE // 2 :].abs().max() == 0
