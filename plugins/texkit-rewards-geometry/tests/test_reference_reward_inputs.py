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
