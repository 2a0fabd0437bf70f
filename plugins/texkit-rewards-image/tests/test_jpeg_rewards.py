"""JPEG (in)compressibility: known orderings, signs, sources, registration and `texkit score`."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image
from texkit_rewards_image.jpeg_compressibility import JpegCompressibility
from texkit_rewards_image.jpeg_incompressibility import JpegIncompressibility
from texkit_rewards_image.jpeg_size import jpeg_size_kb

import texkit
from texkit.geometry.primitives import cube
from texkit.imageio import write_image
from texkit.types import RewardContext, Texture


def _noise(size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(size, size, 3, generator=torch.Generator().manual_seed(seed))


def _ctx(image: torch.Tensor, renders=None) -> RewardContext:
    return RewardContext(mesh=cube(), texture=Texture(image), renders=renders)


def test_flat_texture_is_more_compressible_than_noise():
    flat, noise = torch.full((64, 64, 3), 0.5), _noise()
    compress, incompress = JpegCompressibility(), JpegIncompressibility()
    assert compress(_ctx(flat)).value > compress(_ctx(noise)).value
    assert incompress(_ctx(noise)).value > incompress(_ctx(flat)).value
    # noise barely compresses: at quality 95 its JPEG is larger than a third of the raw 12 kB
    assert float(incompress(_ctx(noise)).value) > 4.0
    assert float(incompress(_ctx(flat)).value) < 1.5


def test_the_two_rewards_are_negatives_and_report_the_size():
    image = _noise(32, seed=1)
    up, down = JpegIncompressibility()(_ctx(image)), JpegCompressibility()(_ctx(image))
    assert float(up.value) == pytest.approx(-float(down.value))
    assert up.metrics["jpeg_kb"] == pytest.approx(float(up.value))


def test_size_is_the_pillow_encoding_length_in_kilobytes():
    image = _noise(24, seed=2)
    pixels = (image * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=80)
    sizes = jpeg_size_kb(torch.stack([image, image]), quality=80)
    assert sizes.shape == (2,)
    assert sizes.tolist() == pytest.approx([len(buffer.getvalue()) / 1000.0] * 2)


def test_lower_quality_gives_smaller_files():
    image = _noise(48, seed=3)
    assert jpeg_size_kb(image, quality=30) < jpeg_size_kb(image, quality=95)


def test_renders_source_composites_over_background_and_needs_renders():
    reward = JpegIncompressibility(source="renders", background=(1.0, 1.0, 1.0))
    assert reward.needs_renders and not JpegIncompressibility().needs_renders
    renderer = texkit.get_registry().make_renderer("torch")
    mesh = cube()
    cameras = texkit.Cameras.from_angles([-20.0, -20.0], [0.0, 90.0])
    noisy = renderer.render(mesh, Texture(_noise(32)), cameras, 48)
    flat = renderer.render(mesh, Texture(torch.full((32, 32, 3), 0.5)), cameras, 48)
    assert reward(_ctx(_noise(8), noisy)).value > reward(_ctx(_noise(8), flat)).value
    empty = renderer.render(mesh, Texture(_noise(32)), texkit.Cameras.from_angles([-20.0], [0.0], radius=500.0), 48)
    white = jpeg_size_kb(torch.ones(48, 48, 3))
    assert float(reward(_ctx(_noise(8), empty)).value) == pytest.approx(float(white))
    with pytest.raises(texkit.RewardError, match="renders"):
        reward(_ctx(_noise(8)))


def test_not_differentiable_and_registered():
    registry = texkit.get_registry()
    for name in ("jpeg_compressibility", "jpeg_incompressibility"):
        cls = registry.reward_class(name)
        assert cls.differentiable is False
        assert registry.get("rewards", name).distribution == "texkit-rewards-image"
    assert registry.reward_class("aesthetic").differentiable is True
    with pytest.raises(texkit.ConfigError, match="quality"):
        JpegCompressibility(quality=0)


def test_usable_by_texkit_score(tmp_path):
    from texkit.commands.score import score_texture

    flat_path, noise_path = tmp_path / "flat.png", tmp_path / "noise.png"
    write_image(flat_path, torch.full((64, 64, 3), 0.25))
    write_image(noise_path, _noise())
    flat = score_texture("demo", flat_path, ["jpeg_compressibility"])
    noise = score_texture("demo", noise_path, ["jpeg_compressibility"])
    assert flat["jpeg_compressibility"]["value"] > noise["jpeg_compressibility"]["value"]
    assert flat["jpeg_compressibility"]["metrics"]["jpeg_kb"] == pytest.approx(-flat["jpeg_compressibility"]["value"])
