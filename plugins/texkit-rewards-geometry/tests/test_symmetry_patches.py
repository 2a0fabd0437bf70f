"""The symmetry reward's patch comparison on a hand-built texture: a pair's value is minus the MSE of
the (patch x patch) texel neighbourhoods around its two points (METHOD.md 4.2)."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_geometry.symmetry import Symmetry, symmetry_value

from texkit.uv import texel_centers_uv

T = 16


@pytest.mark.parametrize("dx, dy", [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1)])
def test_one_bright_texel_in_one_patch_costs_one_ninth(dx, dy):
    texture = torch.zeros(T, T, 3)
    texture[4 + dy, 4 + dx] = 1.0  # beside the centre of patch a (rows grow downward)
    centres = texel_centers_uv(T, T)
    uv_a, uv_b = centres[4, 4][None], centres[11, 11][None]
    value = symmetry_value(texture, uv_a, uv_b, torch.ones(T, T, 1), Symmetry.Params())
    assert value.item() == pytest.approx(-1.0 / 9.0, rel=1e-5)
    far = torch.zeros(T, T, 3)
    far[4 + 2 * dy, 4 + 2 * dx] = 1.0  # two texels away: outside the 3 x 3 patch
    assert symmetry_value(far, uv_a, uv_b, torch.ones(T, T, 1), Symmetry.Params()).item() == pytest.approx(0.0, abs=1e-7)
    wide = symmetry_value(far, uv_a, uv_b, torch.ones(T, T, 1), Symmetry.Params(patch=5))  # a 5 x 5 patch reaches it
    assert wide.item() == pytest.approx(-1.0 / 25.0, rel=1e-5)
