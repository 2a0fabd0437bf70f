"""nvdiffrast renderer: registration and clear CPU error everywhere; parity with ``torch`` on a GPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import texkit
from texkit import Cameras, Mesh
from texkit.errors import DeviceError

ASSETS = Path(__file__).resolve().parents[4] / "shared" / "assets"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="nvdiffrast needs a CUDA GPU; parity runs on the device machine")


def test_registered_and_listed():
    entry = texkit.get_registry().get("renderers", "nvdiffrast")
    assert entry.distribution == "texkit-nvdiffrast"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_clear_error_without_cuda():
    with pytest.raises(DeviceError, match="needs an NVIDIA GPU.*use renderer 'torch'"):
        texkit.get_registry().make_renderer("nvdiffrast")


def _smooth_texture(size: int = 256) -> torch.Tensor:
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    v, u = torch.meshgrid(1 - coords, coords, indexing="ij")
    return torch.stack((0.5 + 0.4 * torch.sin(2 * math.pi * 3 * u), 0.5 + 0.4 * torch.cos(2 * math.pi * 2 * v), 0.3 + 0.4 * u * v), -1)


@pytest.fixture(scope="module")
def both():
    reg = texkit.get_registry()
    return reg.make_renderer("torch"), reg.make_renderer("nvdiffrast")


def _scene(name: str = "cow"):
    mesh = Mesh.load(ASSETS / f"{name}.obj").to("cuda")
    cams = Cameras.preset("tilted_short", device="cuda")
    return mesh, _smooth_texture().cuda(), cams


@needs_gpu
@pytest.mark.parametrize("name", ["cow", "rabbit", "balloon"])
def test_forward_parity(both, name):
    torch_r, nv_r = both
    mesh, tex, cams = _scene(name)
    a = torch_r.render(mesh, tex, cams, 512, antialias=False)
    b = nv_r.render(mesh, tex, cams, 512, antialias=False)
    ma, mb = a.face_id >= 0, b.face_id >= 0
    iou = (ma & mb).sum().item() / (ma | mb).sum().item()
    assert iou > 0.999, f"coverage IoU {iou:.5f}"
    # interior pixels: covered in both and the same triangle (edges may pick either neighbour)
    same = (a.face_id == b.face_id) & ma
    interior = same.clone()
    interior[:, 1:-1, 1:-1] &= same[:, :-2, 1:-1] & same[:, 2:, 1:-1] & same[:, 1:-1, :-2] & same[:, 1:-1, 2:]
    assert (a.rgb - b.rgb).abs()[interior].mean() < 1e-3
    assert (a.depth - b.depth).abs()[interior].max() < 1e-3
    assert (a.uv - b.uv).abs()[interior].max() < 1e-3
    assert (a.view_cos - b.view_cos).abs()[interior].max() < 1e-3


@needs_gpu
def test_gradient_parity(both):
    torch_r, nv_r = both
    mesh, tex, _ = _scene("cow")
    weights = torch.rand(6, 256, 256, 3, device="cuda", generator=torch.Generator(device="cuda").manual_seed(0))
    grads = []
    for renderer in both:
        texture = tex.clone().requires_grad_(True)
        elev = torch.tensor([0.0, -25, -25, -15, -25, -25], device="cuda", requires_grad=True)
        azim = torch.tensor([0.0, 95, 135, 180, -135, -95], device="cuda", requires_grad=True)
        cams = Cameras(azim, elev, torch.full((6,), 2.5, device="cuda"), torch.full((6,), 50.0, device="cuda"))
        out = renderer.render(mesh, texture, cams, 256, antialias=True)
        (out.rgb * weights).sum().backward()
        grads.append((texture.grad.flatten(), torch.cat((elev.grad, azim.grad))))
    cos_tex = torch.nn.functional.cosine_similarity(grads[0][0], grads[1][0], dim=0).item()
    cos_cam = torch.nn.functional.cosine_similarity(grads[0][1], grads[1][1], dim=0).item()
    print(f"gradient cosine similarity: texture {cos_tex:.5f}, cameras {cos_cam:.5f}")
    assert cos_tex > 0.99 and cos_cam > 0.99


@needs_gpu
def test_top_of_texture_is_top_of_image():
    """Known answer for both flips: a front-facing quad whose texture is red above v = 0.5, blue below."""
    from texkit.geometry.primitives import quad

    renderer = texkit.get_registry().make_renderer("nvdiffrast")
    tex = torch.zeros(64, 64, 3, device="cuda")
    tex[:32, :, 0] = 1.0  # rows 0..31 = v in (0.5, 1] = upper half of the quad
    tex[32:, :, 2] = 1.0
    cams = Cameras.from_angles([0.0], [0.0], radius=2.0, fov=50.0, device="cuda")
    out = renderer.render(quad().to("cuda"), tex, cams, 64, antialias=False)
    assert out.rgb.shape == (1, 64, 64, 3) and out.face_id.dtype == torch.long
    assert torch.allclose(out.rgb[0, 24, 32], torch.tensor([1.0, 0, 0], device="cuda"))
    assert torch.allclose(out.rgb[0, 40, 32], torch.tensor([0, 0, 1.0], device="cuda"))
    assert out.uv[0, 24, 32, 1] > 0.5 > out.uv[0, 40, 32, 1]


@needs_gpu
def test_mipmapped_sampling_uses_pixel_derivatives():
    """A 1-texel checkerboard seen from far away: trilinear mip-mapping averages it to grey (0.5),
    plain bilinear sampling aliases; a magnified texture gives the same image in both modes."""
    reg = texkit.get_registry()
    linear = reg.make_renderer("nvdiffrast")
    mip = reg.make_renderer("nvdiffrast", filter_mode="linear-mipmap-linear")
    mesh, smooth, cams = _scene("cow")
    idx = torch.arange(1024, device="cuda")
    checker = ((idx[:, None] + idx[None, :]) % 2).float()[..., None].expand(1024, 1024, 3).contiguous()
    a = linear.render(mesh, checker, cams, 128, antialias=False)
    b = mip.render(mesh, checker, cams, 128, antialias=False)
    inside = b.face_id >= 0
    assert (b.rgb[inside] - 0.5).abs().mean() < 0.05
    assert (a.rgb[inside] - 0.5).abs().mean() > 0.3
    small = smooth[::8, ::8].contiguous()  # 32 x 32 texels over 512 px: magnified, mip level 0
    c = linear.render(mesh, small, cams, 512, antialias=False)
    d = mip.render(mesh, small, cams, 512, antialias=False)
    differ = (c.rgb - d.rgb).abs().amax(-1) > 1e-3  # grazing triangles may still be minified
    assert differ.float().mean() < 0.005 and (c.rgb - d.rgb).abs().mean() < 1e-3
