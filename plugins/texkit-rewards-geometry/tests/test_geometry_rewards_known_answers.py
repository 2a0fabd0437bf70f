"""Known answers of the geometry rewards: each scores the texture it is meant to prefer higher."""

from __future__ import annotations

import math

import pytest
import torch
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment
from texkit_rewards_geometry.curvature_color import CurvatureColor
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis
from texkit_rewards_geometry.reference import Reference
from texkit_rewards_geometry.symmetry import Symmetry
from texkit_rewards_geometry.texture_ops import colourfulness, sobel_uv

import texkit
from texkit.geometry.precompute import curvature_maps, mirror_pairs
from texkit.geometry.uv_raster import rasterize_uv
from texkit.uv import texel_centers_uv

SIZE = 128


def test_all_geometry_rewards_are_registered():
    names = set(texkit.get_registry().names("rewards"))
    assert {"symmetry", "curvature_color", "feature_emphasis", "curvature_alignment", "camera_pose", "reference"} <= names
    assert texkit.get_registry().get("rewards", "symmetry").distribution == "texkit-rewards-geometry"


def _mirror_invariant_texture(mesh, cache, size):
    """Colour each texel by a smooth function of the reflection-invariant coordinates of its surface point."""
    raster = rasterize_uv(mesh, size)
    points = raster.interpolate_vertex(mesh, mesh.vertices)  # (T, T, 3)
    plane = mirror_pairs(cache)["plane"]
    normal, offset = plane[:3], plane[3]
    signed = points @ normal - offset
    in_plane = points - signed[..., None] * normal
    feature = torch.stack((in_plane[..., 0] + in_plane[..., 2], in_plane[..., 1], signed.abs()), -1)
    image = 0.5 + 0.4 * torch.sin(1.5 * feature + torch.tensor([0.0, 1.0, 2.0]))
    return image, raster.mask[..., None].float()


def test_mirror_symmetric_texture_scores_the_maximum(gourd, gourd_cache, make_context):
    reward = Symmetry()
    constant = reward(make_context(gourd, gourd_cache, torch.full((SIZE, SIZE, 3), 0.3))).value
    assert constant == 0.0  # the maximum, exactly
    image, atlas = _mirror_invariant_texture(gourd, gourd_cache, SIZE)
    symmetric = reward(make_context(gourd, gourd_cache, image, atlas)).value
    scrambled_image = image.reshape(-1, 3)[torch.randperm(SIZE * SIZE, generator=torch.Generator().manual_seed(0))].reshape(image.shape)
    scrambled = reward(make_context(gourd, gourd_cache, scrambled_image, atlas)).value
    print(f"symmetry: symmetric {symmetric:.2e}, scrambled {scrambled:.2e}")
    # 3x3 patches are not mirrored in UV, so a smooth symmetric texture is a hair below 0
    assert -5e-4 < symmetric <= 0.0
    assert scrambled < 20 * symmetric and scrambled < -0.005
    pointwise = Symmetry(patch=1)(make_context(gourd, gourd_cache, image, atlas)).value
    assert -1e-4 < pointwise <= 0.0


@pytest.mark.parametrize("scale", ["minmax", "signed"])
@pytest.mark.parametrize("mode", ["sharp", "smooth"])
def test_texture_coloured_by_curvature_sign_beats_its_inverse(ribbed, ribbed_cache, make_context, mode, scale):
    cache = ribbed_cache
    maps = curvature_maps(cache, SIZE)
    assert (maps["mean"][maps["mask"]] < 0).any() and (maps["mean"][maps["mask"]] > 0).any()
    convex = (maps["mean"] > 0).float()[..., None]
    red, blue = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    right = convex * red + (1 - convex) * blue
    wrong = convex * blue + (1 - convex) * red
    reward = CurvatureColor(mode=mode, scale=scale)
    good = reward(make_context(ribbed, cache, right)).value
    bad = reward(make_context(ribbed, cache, wrong)).value
    print(f"curvature colour {mode}/{scale}: sign-coloured {good:.3f}, inverse {bad:.3f}")
    assert good > 0 > bad
    assert torch.isclose(good, -bad, atol=1e-6)  # R - B flips sign exactly
    grey = reward(make_context(ribbed, cache, torch.full((SIZE, SIZE, 3), 0.5))).value
    assert grey == 0.0


def test_smooth_curvature_colour_is_the_covariance_of_k_and_red_minus_blue(gourd, gourd_cache, make_context):
    """Default (centred): mean((K - mean K)(R - B)) over the atlas; centre=false: the method's mean(K (R - B))."""
    maps = curvature_maps(gourd_cache, SIZE)
    image = 0.6 * torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(1)) + torch.tensor([0.4, 0.2, 0.0])  # reddish
    mask = maps["mask"]
    k, red_minus_blue = maps["mean_normalized"][mask], (image[..., 0] - image[..., 2])[mask]
    assert k.min() == -1.0 and k.max() == 1.0
    value = CurvatureColor(mode="smooth")(make_context(gourd, gourd_cache, image)).value
    assert torch.isclose(value, ((k - k.mean()) * red_minus_blue).mean(), atol=1e-6)
    uncentred = CurvatureColor(mode="smooth", centre=False)(make_context(gourd, gourd_cache, image)).value
    assert torch.isclose(uncentred, (k * red_minus_blue).mean(), atol=1e-6)
    # the gourd's K is far from centred, the texture is reddish: the two differ by mean(K) mean(R - B)
    assert abs(float(k.mean())) > 0.1 and float(red_minus_blue.mean()) > 0.3
    assert torch.isclose(uncentred - value, k.mean() * red_minus_blue.mean(), atol=1e-6)


@pytest.mark.parametrize("mode", ["sharp", "smooth"])
def test_curvature_colour_ignores_the_overall_red_blue_balance(gourd, gourd_cache, make_context, mode):
    """Shifting every texel's R up and B down by the same amount (a redder texture, same pattern) leaves
    the default reward unchanged in both modes; the uncentred smooth value moves by shift x 2 mean(K)."""
    maps = curvature_maps(gourd_cache, SIZE)
    image = 0.25 + 0.5 * torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    redder = image + torch.tensor([0.2, 0.0, -0.2], dtype=torch.float64)
    reward = CurvatureColor(mode=mode)
    base = reward(make_context(gourd, gourd_cache, image)).value
    shifted = reward(make_context(gourd, gourd_cache, redder)).value
    assert abs(float(shifted - base)) < 1e-12
    if mode == "smooth":
        plain = CurvatureColor(mode="smooth", centre=False)
        moved = plain(make_context(gourd, gourd_cache, redder)).value - plain(make_context(gourd, gourd_cache, image)).value
        k_mean = maps["mean_normalized"][maps["mask"]].double().mean()
        assert torch.isclose(moved, 0.4 * k_mean, atol=1e-9)


def test_stripes_along_the_min_curvature_field_beat_stripes_across(tube, make_context):
    cache = texkit.GeometryCache(tube, root=False)
    uv = texel_centers_uv(SIZE, SIZE)
    along = (0.5 + 0.5 * torch.sin(2 * math.pi * 8 * uv[..., 0]))[..., None].expand(SIZE, SIZE, 3)  # edges run along v = the axis
    across = (0.5 + 0.5 * torch.sin(2 * math.pi * 8 * uv[..., 1]))[..., None].expand(SIZE, SIZE, 3)
    reward = CurvatureAlignment(iterations=50, edges="along")
    good = reward(make_context(tube, cache, along.contiguous())).value
    bad = reward(make_context(tube, cache, across.contiguous())).value
    print(f"alignment edges=along: along {good:.3f}, across {bad:.3f}")
    assert good > 0.95 and bad < 0.05
    # the default is the method's and the reference's (d . v)^2 with d the gradient direction (issue 17):
    # gradients along the axis, i.e. stripes whose edges cross it, score high
    literal = CurvatureAlignment(iterations=50)
    assert literal.params.edges == "across"
    literal_across = literal(make_context(tube, cache, across.contiguous())).value
    literal_along = literal(make_context(tube, cache, along.contiguous())).value
    print(f"alignment default: across-stripes {literal_across:.3f}, along-stripes {literal_along:.3f}")
    assert literal_across > 0.95 and literal_along < 0.05


def test_feature_emphasis_prefers_texture_detail_where_the_surface_bends(gourd, gourd_cache, make_context):
    maps = curvature_maps(gourd_cache, SIZE)
    uv = texel_centers_uv(SIZE, SIZE)
    k01 = (maps["mean_normalized"] + 1) / 2
    stripes = torch.sin(2 * math.pi * 16 * (uv[..., 0] + uv[..., 1]))
    on_curved = (0.5 + 0.5 * k01 * stripes)[..., None].expand(SIZE, SIZE, 3).contiguous()
    on_flat = (0.5 + 0.5 * (1 - k01) * stripes)[..., None].expand(SIZE, SIZE, 3).contiguous()
    reward = FeatureEmphasis()
    good, bad = reward(make_context(gourd, gourd_cache, on_curved)), reward(make_context(gourd, gourd_cache, on_flat))
    print(f"feature emphasis: curved {good.value:.4f} (l_mag {good.metrics['l_mag']:.4f}), flat {bad.value:.4f} (l_mag {bad.metrics['l_mag']:.4f})")
    assert good.metrics["l_mag"] < bad.metrics["l_mag"]
    assert good.value > bad.value


def test_colourfulness_known_values():
    weights = torch.ones(4, 4)
    assert colourfulness(torch.full((4, 4, 3), 0.5), weights) < 1e-5  # grey: no colour
    red = torch.zeros(4, 4, 3)
    red[..., 0] = 1.0  # rg = 1, yb = 0.5, no spread
    assert torch.isclose(colourfulness(red, weights), torch.tensor(0.3 * 1.5), atol=1e-5)
    half = torch.zeros(4, 4, 3)
    half[:, :2, 0] = 1.0  # rg in {1, 0}: std 0.5, mean 0.5; yb in {0.5, 0}: std 0.25, mean 0.25
    assert torch.isclose(colourfulness(half, weights), torch.tensor(0.5 + 0.25 + 0.3 * 0.75), atol=1e-5)


def test_sobel_gradient_is_in_uv_axes():
    uv = texel_centers_uv(16, 16)
    grad_u = sobel_uv(uv[..., 0])[2:-2, 2:-2]
    grad_v = sobel_uv(uv[..., 1])[2:-2, 2:-2]
    # u grows by 1/16 per column; v grows upward by 1/16 per row (rows grow downward)
    assert torch.allclose(grad_u, torch.tensor([1 / 16, 0.0]).expand_as(grad_u), atol=1e-6)
    assert torch.allclose(grad_v, torch.tensor([0.0, 1 / 16]).expand_as(grad_v), atol=1e-6)


def test_reference_texture_reward_is_minus_mse(tmp_path, gourd, gourd_cache, make_context):
    from PIL import Image

    path = tmp_path / "ref.png"
    Image.new("RGB", (32, 32), (51, 51, 51)).save(path)  # 0.2 grey
    reward = Reference(texture=str(path))
    same = reward(make_context(gourd, gourd_cache, torch.full((32, 32, 3), 0.2))).value
    other = reward(make_context(gourd, gourd_cache, torch.full((32, 32, 3), 0.5))).value
    assert abs(float(same)) < 1e-10
    assert torch.isclose(other, torch.tensor(-0.09), atol=1e-6)


def test_reference_missing_file_is_a_texkit_error():
    with pytest.raises(texkit.TexkitError, match="reference"):
        Reference(texture="/nonexistent/ref.png")


@pytest.mark.parametrize("reward_class", [Symmetry, CurvatureAlignment])
def test_a_reward_instance_reused_on_another_mesh_is_prepared_again(reward_class, gourd, gourd_cache, tube, make_context):
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(4))
    tube_cache = texkit.GeometryCache(tube, root=False)
    reused = reward_class()
    reused(make_context(gourd, gourd_cache, image))
    on_tube = reused(make_context(tube, tube_cache, image)).value
    assert on_tube == reward_class()(make_context(tube, tube_cache, image)).value
