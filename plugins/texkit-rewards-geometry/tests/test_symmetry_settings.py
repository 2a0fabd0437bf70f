"""symmetry's weighting observed through `symmetry_value` on hand-built pairs (known answers): a pair
counts only when the coverage within patch // 2 + 1 texels of both points was painted, the reference
lookup reads that coverage where it reads the texture (rows mirrored), fractional coverage weights a
plain weighted mean; and the picture's dot size."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_geometry.symmetry import Symmetry, symmetry_value

from texkit.geometry import mirror_pairs
from texkit.uv import texel_centers_uv

SIZE = 32
CENTRES = texel_centers_uv(SIZE, SIZE).double()


def _texture() -> torch.Tensor:
    """Grey levels by column only: 0.2 left of column 16, 0 in columns 16-23, 0.5 in 24-31."""
    grey = torch.full((SIZE,), 0.2, dtype=torch.float64)
    grey[16:24], grey[24:] = 0.0, 0.5
    return grey[None, :, None].expand(SIZE, SIZE, 3).contiguous()


def _pairs(row: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair 1: columns 4 and 12 (both 0.2: MSE 0); pair 2: columns 20 and 28 (0 and 0.5: MSE 0.25)."""
    uv_a = torch.stack((CENTRES[row, 4], CENTRES[row, 20]))
    uv_b = torch.stack((CENTRES[row, 12], CENTRES[row, 28]))
    return uv_a, uv_b


BOTH, PAIR_2_ONLY = -0.25 / 2, -0.25


def _value(coverage: torch.Tensor, **params) -> float:
    uv_a, uv_b = _pairs()
    return float(symmetry_value(_texture(), uv_a, uv_b, coverage, Symmetry.Params(**params)))


def _hole_at(row: int, col: int) -> torch.Tensor:
    coverage = torch.ones(SIZE, SIZE, 1, dtype=torch.float64)
    coverage[row, col] = 0.0
    return coverage


@pytest.mark.parametrize("patch, counted", [(1, True), (3, True), (5, False), (7, False)])
def test_an_unpainted_texel_three_texels_from_a_point_drops_the_pair_from_patch_5(patch, counted):
    """The coverage is eroded by patch // 2 + 1 texels (the patch's half-width plus a bilinear tap):
    radius 1, 2, 3, 4 for patches 1, 3, 5, 7; the hole is 3 texels (Chebyshev) from pair 1's first point."""
    assert _value(_hole_at(4, 4 + 3), patch=patch) == pytest.approx(BOTH if counted else PAIR_2_ONLY, abs=1e-12)
    assert _value(_hole_at(4, 4 + 2), patch=patch) == pytest.approx(BOTH if patch == 1 else PAIR_2_ONLY, abs=1e-12)


def test_every_pair_counts_with_average_all():
    assert _value(_hole_at(4, 5), average="all") == pytest.approx(BOTH, abs=1e-12)


@pytest.mark.parametrize("lookup", ["texkit", "reference"])
def test_the_reference_lookup_reads_the_coverage_where_it_reads_the_texture(lookup):
    """The reference reads the vertically mirrored texel (quirk Q2): pair 1 (row 4) is read near row 27,
    where the bottom-left quadrant is unpainted, so with lookup = "reference" pair 1 drops out; texkit
    reads row 4, painted. (The texture varies by column only: both lookups read the same colours.)"""
    coverage = torch.ones(SIZE, SIZE, 1, dtype=torch.float64)
    coverage[SIZE - 8 :, :16] = 0.0
    assert _value(coverage, lookup=lookup) == pytest.approx(PAIR_2_ONLY if lookup == "reference" else BOTH, abs=1e-9)


def test_fractional_coverage_gives_the_plain_weighted_mean():
    """Coverage 0.5 everywhere: every pair has weight 0.25 and the value is the plain mean, -0.125, even
    though the weights sum to less than 1."""
    half = torch.full((SIZE, SIZE, 1), 0.5, dtype=torch.float64)
    assert _value(half) == pytest.approx(BOTH, abs=1e-12)


def _texels(uv: torch.Tensor, size: int) -> set[tuple[int, int]]:
    col = (uv[:, 0] * size).floor().long().clamp(0, size - 1)
    row = ((1 - uv[:, 1]) * size).floor().long().clamp(0, size - 1)
    return set(zip(row.tolist(), col.tolist()))


@pytest.mark.parametrize("size, radius", [(32, 0), (63, 0), (64, 1), (128, 2)])
def test_picture_dots_have_radius_size_over_64(gourd, gourd_cache, make_context, size, radius):
    reward = Symmetry()
    reward.prepare(gourd, gourd_cache)
    picture = reward.visualize(make_context(gourd, gourd_cache, torch.full((size, size, 3), 0.5)))
    pairs = mirror_pairs(gourd_cache)
    points = _texels(torch.cat((pairs["uv_a"], pairs["uv_b"])).float(), size)  # point texels clamped to the image
    want = {
        (min(max(r + dr, 0), size - 1), min(max(c + dc, 0), size - 1))
        for r, c in points
        for dr in range(-radius, radius + 1)
        for dc in range(-radius, radius + 1)
    }
    painted = {tuple(x) for x in (picture != 1.0).any(-1).nonzero().tolist()}
    assert painted == want


def test_where_dots_overlap_the_later_point_wins():
    from texkit_rewards_geometry.texture_ops import splat_points

    uv = torch.stack((CENTRES[8, 10], CENTRES[8, 12], CENTRES[20, 12], CENTRES[20, 10])).float()
    colors = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    image = splat_points(uv, colors, SIZE, SIZE, radius=1)
    green = torch.tensor([0, 1.0, 0])
    assert torch.equal(image[8, 11], green) and torch.equal(image[20, 11], green)  # either order of the columns
    assert torch.equal(image[8, 9], colors[0]) and torch.equal(image[8, 13], green)


def test_a_point_on_the_border_paints_the_whole_square_inside_the_image():
    from texkit_rewards_geometry.texture_ops import splat_points

    image = splat_points(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.zeros(2, 3), SIZE, SIZE, radius=1)
    dark = (image == 0).all(-1)
    assert int(dark.sum()) == 8
    assert bool(dark[SIZE - 2 :, :2].all()) and bool(dark[:2, SIZE - 2 :].all())
