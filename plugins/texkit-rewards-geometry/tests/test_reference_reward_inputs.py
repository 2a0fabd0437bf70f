"""The reference reward's inputs: a reference image of another size is resized bilinearly (half-texel
centres), renders mode needs cameras, and a textured mesh is read from whichever of its parts holds the texture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from texkit_rewards_geometry.reference import Reference, load_textured_mesh

import texkit


def test_a_reference_of_another_size_is_resized_bilinearly(tmp_path, gourd, gourd_cache, make_context):
    ref = np.zeros((2, 2, 3), dtype=np.uint8)
    ref[:, 1] = 255  # columns 0 and 1 of the 2 x 2 reference: black, white
    Image.fromarray(ref).save(tmp_path / "ref.png")
    reward = Reference(texture=str(tmp_path / "ref.png"), average="all")
    value = reward(make_context(gourd, gourd_cache, torch.zeros(4, 4, 3))).value
    # resized to 4 columns with texel centres at half-texel offsets: 0, 0.25, 0.75, 1
    assert value.item() == pytest.approx(-(0 + 0.25**2 + 0.75**2 + 1) / 4, rel=1e-5)
    same = Reference(texture=str(tmp_path / "ref.png"), average="all")(make_context(gourd, gourd_cache, torch.zeros(2, 2, 3))).value
    assert same.item() == pytest.approx(-0.5, rel=1e-5)


def test_renders_mode_without_cameras_is_a_one_line_error(tmp_path, gourd, gourd_cache, make_context):
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(tmp_path / "ref.png")
    reward = Reference(texture=str(tmp_path / "ref.png"), mode="renders")
    image = torch.zeros(4, 4, 3)
    with pytest.raises(texkit.RewardError, match="needs reward cameras and renders"):
        reward(make_context(gourd, gourd_cache, image, renders=object()))
    with pytest.raises(texkit.RewardError, match="needs reward cameras and renders"):
        reward(make_context(gourd, gourd_cache, image, cameras=texkit.Cameras.from_angles([0.0], [0.0])))


def test_a_textured_mesh_is_read_from_the_part_that_holds_the_texture(tmp_path):
    import trimesh

    textured = trimesh.creation.box()
    uv = np.random.default_rng(0).random((len(textured.vertices), 2))
    image = Image.fromarray(np.full((4, 4, 3), (200, 10, 10), dtype=np.uint8))
    textured.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    plain = trimesh.creation.box()
    plain.apply_translation([3.0, 0.0, 0.0])
    path = tmp_path / "two_parts.glb"
    trimesh.Scene([textured, plain]).export(path)
    _, texture = load_textured_mesh(path, "unit_sphere")
    assert texture.shape == (4, 4, 3) and texture[0, 0, 0].item() == pytest.approx(200 / 255, abs=1e-6)


def test_renders_mode_is_the_mean_squared_difference_over_the_union_of_both_silhouettes(tmp_path, gourd, gourd_cache, make_context):
    """r = -sum(union (ours - theirs)^2) / (3 sum(union)): per-channel mean over the pixels either render covers."""
    from texkit.types import RenderOutput

    Image.fromarray(np.full((2, 2, 3), 255, dtype=np.uint8)).save(tmp_path / "white.png")
    reward = Reference(texture=str(tmp_path / "white.png"), mode="renders")

    def flat(rgb: float, alpha: torch.Tensor) -> RenderOutput:
        h, w = alpha.shape
        zeros = torch.zeros(1, h, w, 3)
        return RenderOutput(rgb=torch.full((1, h, w, 3), rgb), alpha=alpha[None, ..., None], depth=torch.ones(1, h, w, 1), normal=zeros,
                            uv=torch.zeros(1, h, w, 2), face_id=torch.zeros(1, h, w, dtype=torch.long), view_cos=torch.ones(1, h, w, 1))

    ours_alpha = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    theirs_alpha = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    ours = flat(0.25, ours_alpha)

    def render(texture, cameras):
        assert torch.equal(texture.image, torch.ones(2, 2, 3))  # the reference texture is rendered
        return flat(1.0, theirs_alpha)

    ctx = make_context(gourd, gourd_cache, torch.zeros(2, 2, 3), renders=ours, render=render, cameras=texkit.Cameras.from_angles([0.0], [0.0]))
    # three pixels in the union, each channel off by 0.75
    assert reward(ctx).value.item() == pytest.approx(-(0.75**2), rel=1e-6)


def test_the_picture_is_the_reference_resized_bilinearly(tmp_path, gourd, gourd_cache, make_context):
    ref = np.zeros((2, 2, 3), dtype=np.uint8)
    ref[:, 1] = 255
    Image.fromarray(ref).save(tmp_path / "ref.png")
    reward = Reference(texture=str(tmp_path / "ref.png"))
    picture = reward.visualize(make_context(gourd, gourd_cache, torch.zeros(4, 4, 3)))
    assert picture.shape == (4, 4, 3)
    want = torch.tensor([0.0, 0.25, 0.75, 1.0]).expand(4, 4)
    for channel in range(3):
        torch.testing.assert_close(picture[..., channel], want)


def test_texture_mse_with_faint_coverage_is_the_coverage_weighted_mean():
    """Coverage 0.01 on a 2 x 2 texture (weights summing to 0.04): still the per-channel weighted mean."""
    from texkit_rewards_geometry.reference import texture_mse

    texture = torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    coverage = torch.full((2, 2, 1), 0.01)
    assert texture_mse(texture, torch.zeros(2, 2, 3), coverage).item() == pytest.approx(-0.25, rel=1e-6)
    coverage[0, 0] = 0.03  # the differing texel weighs 3 of 6
    assert texture_mse(texture, torch.zeros(2, 2, 3), coverage).item() == pytest.approx(-0.5, rel=1e-6)


def test_renders_mode_over_a_faint_silhouette_is_the_alpha_weighted_mean(tmp_path, gourd, gourd_cache, make_context):
    """One pixel of alpha 0.1 in either render (union sum 0.1): the value is that pixel's squared difference."""
    from texkit.types import RenderOutput

    Image.fromarray(np.full((2, 2, 3), 255, dtype=np.uint8)).save(tmp_path / "white.png")
    reward = Reference(texture=str(tmp_path / "white.png"), mode="renders")
    alpha = torch.tensor([[0.1, 0.0], [0.0, 0.0]])

    def flat(rgb: float) -> RenderOutput:
        z = torch.zeros(1, 2, 2, 3)
        return RenderOutput(rgb=torch.full((1, 2, 2, 3), rgb), alpha=alpha[None, ..., None], depth=torch.ones(1, 2, 2, 1), normal=z,
                            uv=torch.zeros(1, 2, 2, 2), face_id=torch.zeros(1, 2, 2, dtype=torch.long), view_cos=torch.ones(1, 2, 2, 1))

    ctx = make_context(gourd, gourd_cache, torch.zeros(2, 2, 3), renders=flat(0.5), render=lambda texture, cameras: flat(1.0), cameras=texkit.Cameras.from_angles([0.0], [0.0]))
    assert reward(ctx).value.item() == pytest.approx(-(0.5**2), rel=1e-6)
