"""``visualize()`` of the geometry rewards: pictures of what each asks for, checked against the reward itself.

Known answers: `splat_points` paints the texel the UV convention names; the symmetry picture gives
both points of every mirror pair one colour, so the reward scores it far closer to its maximum 0
than noise; the feature-emphasis picture is the normalised curvature its gradient magnitude must
match, ridges tinted; the alignment picture's strokes cross (or follow) a tube's axis as ``edges``
says; the reference picture is the reference texture.
"""

from __future__ import annotations

import torch
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment
from texkit_rewards_geometry.reference import Reference
from texkit_rewards_geometry.symmetry import Symmetry
from texkit_rewards_geometry.texture_ops import splat_points

import texkit

SIZE = 64


def _noise(seed: int = 0) -> torch.Tensor:
    return torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(seed))


def test_splat_points_paints_the_texel_of_the_uv_convention():
    image = splat_points(torch.tensor([[0.5, 0.25]]), torch.tensor([[1.0, 0.0, 0.0]]), 8, 8)
    assert image.shape == (8, 8, 3)
    painted = (image != 1.0).any(-1).nonzero().tolist()
    assert painted == [[6, 4]]  # row floor((1 - 0.25) * 8), column floor(0.5 * 8)
    assert torch.equal(image[6, 4], torch.tensor([1.0, 0.0, 0.0]))
    wide = splat_points(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0]]), 8, 8, radius=1, background=0.5)
    assert int((wide[..., 2] == 1.0).sum()) == 4  # the 3x3 square clamped at the corner
    assert float(wide[7, 7, 0]) == 0.5


def test_symmetry_picture_gives_both_points_of_a_pair_one_colour(gourd, gourd_cache, make_context):
    reward = Symmetry()
    reward.prepare(gourd, gourd_cache)
    picture = reward.visualize(make_context(gourd, gourd_cache, _noise()))
    assert picture.shape == (SIZE, SIZE, 3) and 0 <= float(picture.min()) and float(picture.max()) <= 1
    pointwise = Symmetry(patch=1)  # compares the texels of the two points themselves
    pointwise.prepare(gourd, gourd_cache)
    value = float(pointwise(make_context(gourd, gourd_cache, picture)).value)
    noise = float(pointwise(make_context(gourd, gourd_cache, _noise())).value)
    # 6x closer to the maximum 0 than noise (measured 9x: overlapping dots of neighbouring pairs differ a little)
    assert noise < -0.02 and value > noise / 6, (value, noise)
    patched = float(reward(make_context(gourd, gourd_cache, picture)).value)
    assert patched > 0.2 * float(reward(make_context(gourd, gourd_cache, _noise())).value)  # 3x3 patches: dot edges differ
    assert float(picture.std()) > 0.05  # not a flat (trivially symmetric) image


def test_alignment_picture_strokes_cross_or_follow_the_field(tube, make_context):
    """On a tube the minimum-curvature direction is the axis, UV v (image columns): with edges='across'
    the strokes run along u (image rows), with edges='along' along v."""
    cache = texkit.GeometryCache(tube, root=False)
    runs = {}
    for edges in ("across", "along"):
        reward = CurvatureAlignment(edges=edges, iterations=50)
        reward.prepare(tube, cache)
        picture = reward.visualize(make_context(tube, cache, _noise()))
        assert picture.shape == (SIZE, SIZE, 3)
        dark = picture[..., 0] < 0.5
        assert int(dark.sum()) > 200
        runs[edges] = (int((dark[:, 1:] & dark[:, :-1]).sum()), int((dark[1:] & dark[:-1]).sum()))  # (along rows, along columns)
    assert runs["across"][0] > 3 * runs["across"][1], runs
    assert runs["along"][1] > 3 * runs["along"][0], runs


def test_feature_emphasis_picture_is_the_wanted_gradient_strength(ribbed, ribbed_cache, make_context):
    from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis
    from texkit_rewards_geometry.texture_ops import minmax

    reward = FeatureEmphasis()
    reward.prepare(ribbed, ribbed_cache)
    ctx = make_context(ribbed, ribbed_cache, _noise())
    picture = reward.visualize(ctx)
    mask, k, _ = reward._texel_maps(ctx)
    atlas, ridge = mask > 0, (k > reward.params.ridge_threshold) & (mask > 0)
    plain = atlas & ~ridge
    assert int(ridge.sum()) > 20 and int(plain.sum()) > 200
    wanted = minmax(k, mask)
    for channel in range(3):  # grey N(K) off the ridges
        assert torch.allclose(picture[..., channel][plain], wanted[plain], atol=1e-6)
    assert bool((picture[..., 0] > picture[..., 2] + 0.3)[ridge].all())  # ridges orange
    assert bool((picture[~atlas] == 0.5).all())


def test_reference_picture_is_the_reference_texture(gourd, gourd_cache, make_context, tmp_path):
    from texkit.imageio import write_image

    reference = _noise(3)
    write_image(tmp_path / "ref.png", reference)
    reward = Reference(texture=str(tmp_path / "ref.png"))
    picture = reward.visualize(make_context(gourd, gourd_cache, _noise()))
    assert torch.allclose(picture, reference, atol=1 / 255)
    assert float(reward(make_context(gourd, gourd_cache, picture)).value) > -1e-5  # the reward's maximum 0


def test_symmetry_picture_colours_a_pair_by_its_midpoint_and_distance(gourd, gourd_cache, make_context):
    """The documented colour of a pair (a, b): (0.15 + 0.8 m_v, 0.15 + 0.7 m_u, 0.2 + 2 |a - b|) with m the
    midpoint, read at an isolated pair's texel."""
    reward = Symmetry()
    reward.prepare(gourd, gourd_cache)
    picture = reward.visualize(make_context(gourd, gourd_cache, _noise()))
    a, b = reward._pairs["uv_a"].float(), reward._pairs["uv_b"].float()
    distance = (a - b).norm(dim=-1)
    mid = (a + b) / 2
    want = torch.stack((0.15 + 0.8 * mid[:, 1], 0.15 + 0.7 * mid[:, 0], (0.2 + 2.0 * distance).clamp(0, 1)), dim=-1)
    cols = (a[:, 0] * SIZE).floor().long().clamp(0, SIZE - 1)
    rows = ((1 - a[:, 1]) * SIZE).floor().long().clamp(0, SIZE - 1)
    got = picture[rows, cols]
    # the dot of a point may be overdrawn by a neighbouring pair's: most texels show their own pair's colour
    close = (got - want).abs().max(dim=-1).values < 0.05
    assert float(distance.max()) > 0.05 and float(close.float().mean()) > 0.3, float(close.float().mean())


def test_splat_points_on_the_bottom_and_right_edges_paint_the_last_texel():
    image = splat_points(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]), 8, 8)
    painted = (image != 1.0).any(-1).nonzero().tolist()
    assert painted == [[7, 7]]  # u = 1, v = 0: the bottom-right texel, clamped into the image


def test_alignment_strokes_are_five_texels_across_each_field_point(tube, make_context):
    """Each field point gets a stroke of 11 dots spaced 0.5 texel, 5 texels long, centred on the point and
    across the field direction (edges = "across") or along it; the field's length does not matter."""
    reward = CurvatureAlignment()
    ctx = make_context(tube, texkit.GeometryCache(tube, root=False), _noise())
    reward.visualize(ctx)  # prepared for the tube
    uv = torch.tensor([[0.3, 0.4], [0.7, 0.6]])
    direction = torch.tensor([[0.3, 0.4], [0.3, -0.4]])  # length 0.5, two directions
    reward._field = {"uv": uv, "direction": direction}
    unit = direction / 0.5
    steps = torch.linspace(-2.5, 2.5, 11) / SIZE
    for edges, edge in (("across", torch.stack((-unit[:, 1], unit[:, 0]), dim=-1)), ("along", unit)):
        reward.params = reward.params.model_copy(update={"edges": edges})
        points = (uv[:, None, :] + steps[None, :, None] * edge[:, None, :]).reshape(-1, 2)
        want = splat_points(points, torch.full((len(points), 3), 0.15), SIZE, SIZE)
        assert torch.equal(reward.visualize(ctx), want), edges
