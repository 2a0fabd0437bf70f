"""The UV convention (v up, image row 0 at the top) and differentiable texture sampling."""

from __future__ import annotations

import torch

from texkit.uv import pixel_to_uv, sample_texture, texel_centers_uv, uv_to_pixel


def test_top_row_is_v_one():
    tex = torch.zeros(4, 4, 1)
    tex[0] = 1.0  # top row of the image
    assert sample_texture(tex, torch.tensor([[0.5, 0.99]])).item() == 1.0  # v near 1 -> top row
    assert sample_texture(tex, torch.tensor([[0.5, 0.01]])).item() == 0.0


def test_texel_centres_sample_exactly():
    tex = torch.rand(5, 7, 3)
    uv = texel_centers_uv(5, 7)
    assert torch.allclose(sample_texture(tex, uv), tex, atol=1e-6)


def test_pixel_roundtrip():
    uv = torch.rand(10, 2)
    assert torch.allclose(pixel_to_uv(uv_to_pixel(uv, 8, 16), 8, 16), uv, atol=1e-6)


def test_gradcheck_texture_sampling():
    tex = torch.rand(4, 5, 2, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(6, 2, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, u: sample_texture(t, u), (tex, uv))


def test_batched_sampling():
    tex = torch.rand(2, 4, 4, 3)
    uv = torch.rand(2, 3, 5, 2)
    out = sample_texture(tex, uv)
    assert out.shape == (2, 3, 5, 3)
    assert torch.allclose(out[1], sample_texture(tex[1], uv[1]))
