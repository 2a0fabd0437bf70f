"""nvdiffrast renderer: registration and clear CPU error everywhere; parity with ``torch`` on a GPU."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch

import texkit
from texkit import Cameras, Mesh
from texkit.errors import DeviceError

ASSETS = Path(__file__).resolve().parents[4] / "shared" / "assets"
needs_gpu = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="nvdiffrast needs a CUDA GPU; parity runs on the device machine"
)


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
    return torch.stack(
        (0.5 + 0.4 * torch.sin(2 * math.pi * 3 * u), 0.5 + 0.4 * torch.cos(2 * math.pi * 2 * v), 0.3 + 0.4 * u * v), -1
    )


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


def _weights(kind: str, resolution: int = 256) -> torch.Tensor:
    """Per-pixel loss weights ``(6, R, R, 3)``: ``"random"`` (white noise) or ``"smooth"`` (a low
    frequency ramp, like an image-level reward's gradient)."""
    if kind == "random":
        gen = torch.Generator(device="cuda").manual_seed(0)
        return torch.rand(6, resolution, resolution, 3, device="cuda", generator=gen)
    t = torch.linspace(0, 1, resolution, device="cuda")
    ramp = 0.5 + 0.5 * torch.sin(2 * math.pi * t)[:, None] * torch.cos(math.pi * t)[None, :]
    return ramp[None, :, :, None].expand(6, resolution, resolution, 3) * torch.tensor([1.0, 0.6, 0.3], device="cuda")


def _gradients(renderer, antialias: bool, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mesh, tex, _ = _scene("cow")
    texture = tex.clone().requires_grad_(True)
    elev = torch.tensor([0.0, -25, -25, -15, -25, -25], device="cuda", requires_grad=True)
    azim = torch.tensor([0.0, 95, 135, 180, -135, -95], device="cuda", requires_grad=True)
    cams = Cameras(azim, elev, torch.full((6,), 2.5, device="cuda"), torch.full((6,), 50.0, device="cuda"))
    out = renderer.render(mesh, texture, cams, weights.shape[1], antialias=antialias)
    (out.rgb * weights).sum().backward()
    return texture.grad.flatten(), torch.cat((elev.grad, azim.grad))


SILHOUETTE_GAP = (
    "nvdiffrast's antialias() only finds a silhouette edge owned by the triangle at the pixel centre, so "
    "where thin foreshortened triangles lie between two pixel centres it adds no silhouette gradient; the "
    "torch renderer walks across front-facing neighbours and does. Measured on the H100 (cow, 512 px): "
    "camera gradient vs finite differences cosine 0.79 / norm ratio 0.58 (nvdiffrast) against 0.975 / 1.14 "
    "(torch); without antialiasing the two agree to cosine 0.9997"
)


@needs_gpu
@pytest.mark.parametrize("weights_kind", ["random", "smooth"])
@pytest.mark.parametrize("antialias", [False, True])
def test_texture_gradient_parity(both, antialias, weights_kind):
    weights = _weights(weights_kind)
    (tex_a, _), (tex_b, _) = (_gradients(r, antialias, weights) for r in both)
    cos_tex = torch.nn.functional.cosine_similarity(tex_a, tex_b, dim=0).item()
    print(f"\nantialias={antialias} weights={weights_kind}: texture gradient cosine {cos_tex:.5f}")
    assert cos_tex > 0.99


@needs_gpu
@pytest.mark.parametrize("weights_kind", ["random", "smooth"])
@pytest.mark.parametrize(
    "antialias", [False, pytest.param(True, marks=pytest.mark.xfail(reason=SILHOUETTE_GAP, strict=False))]
)
def test_camera_gradient_parity(both, antialias, weights_kind):
    weights = _weights(weights_kind)
    (_, cam_a), (_, cam_b) = (_gradients(r, antialias, weights) for r in both)
    cos_cam = torch.nn.functional.cosine_similarity(cam_a, cam_b, dim=0).item()
    print(f"\nantialias={antialias} weights={weights_kind}: camera gradient cosine {cos_cam:.5f}")
    print(f"  torch      {[round(x, 1) for x in cam_a.tolist()]}")
    print(f"  nvdiffrast {[round(x, 1) for x in cam_b.tolist()]}")
    assert cos_cam > 0.99


@needs_gpu
@pytest.mark.parametrize("weights_kind", ["random", "smooth"])
def test_camera_gradient_parity_with_the_same_silhouette_rule(weights_kind):
    """Antialiased camera gradients agree when both renderers use nvdiffrast's rule (the edge is
    searched in the pixel's own triangle only: the torch renderer's ``aa_walk_steps=1``)."""
    reg = texkit.get_registry()
    same_rule = reg.make_renderer("torch", aa_walk_steps=1), reg.make_renderer("nvdiffrast")
    weights = _weights(weights_kind)
    (_, cam_a), (_, cam_b) = (_gradients(r, True, weights) for r in same_rule)
    cos_cam = torch.nn.functional.cosine_similarity(cam_a, cam_b, dim=0).item()
    print(f"\nantialias=True (walk 1) weights={weights_kind}: camera gradient cosine {cos_cam:.5f}")
    assert cos_cam > 0.99


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
    # bilinear lookups of a 1-texel checkerboard at uniformly spread sub-texel offsets (fx, fy) give
    # 0.5 + 0.5 (1 - 2 fx)(1 - 2 fy): mean |value - 0.5| = 0.5 * 0.5 * 0.5 = 0.125
    assert abs((a.rgb[inside] - 0.5).abs().mean() - 0.125) < 0.02
    assert (b.rgb[inside] - 0.5).abs().mean() < 0.05
    small = smooth[::8, ::8].contiguous()  # 32 x 32 texels over 512 px: magnified, mip level 0
    c = linear.render(mesh, small, cams, 512, antialias=False)
    d = mip.render(mesh, small, cams, 512, antialias=False)
    differ = (c.rgb - d.rgb).abs().amax(-1) > 1e-3  # grazing triangles may still be minified
    assert differ.float().mean() < 0.005 and (c.rgb - d.rgb).abs().mean() < 1e-3


def _per_view_loss(renderer, mesh, texture, elev, azim, weights):
    cams = Cameras(azim, elev, torch.full_like(elev, 2.5), torch.full_like(elev, 50.0))
    out = renderer.render(mesh, texture, cams, weights.shape[1], antialias=True)
    return (out.rgb.double() * weights).sum(dim=(1, 2, 3))


def _camera_gradient_and_differences(renderer, mesh, tex, weights, elev0, azim0, h=0.05):
    """(analytic, central differences) of each view's loss w.r.t. its own (elevation, azimuth), in degrees.

    Every view's loss depends only on its own angles, so one perturbed batch gives all views.

    Returns:
        two ``(2N,)`` float64 tensors: elevation derivatives, then azimuth derivatives.
    """
    elev, azim = elev0.clone().requires_grad_(True), azim0.clone().requires_grad_(True)
    _per_view_loss(renderer, mesh, tex, elev, azim, weights).sum().backward()
    analytic = torch.cat((elev.grad, azim.grad)).double()
    with torch.no_grad():
        loss = functools.partial(_per_view_loss, renderer, mesh, tex, weights=weights)
        fd_elev = (loss(elev=elev0 + h, azim=azim0) - loss(elev=elev0 - h, azim=azim0)) / (2 * h)
        fd_azim = (loss(elev=elev0, azim=azim0 + h) - loss(elev=elev0, azim=azim0 - h)) / (2 * h)
    return analytic, torch.cat((fd_elev, fd_azim))


@needs_gpu
@pytest.mark.parametrize(
    "renderer_name", [pytest.param("nvdiffrast", marks=pytest.mark.xfail(reason=SILHOUETTE_GAP, strict=False)), "torch"]
)
def test_camera_gradients_match_finite_differences(both, renderer_name):
    """d(loss_i)/d(angle_i) of each of the 6 views (antialiased, smooth weights, 512 px) against
    central differences with h = 0.05 degrees (about 0.25 px of motion); every view's loss depends
    only on its own angles, so one perturbed batch gives all 6."""
    renderer = both[1] if renderer_name == "nvdiffrast" else both[0]
    mesh, tex, _ = _scene("cow")
    weights = _weights("smooth", 512).double()
    elev0 = torch.tensor([0.0, -25, -25, -15, -25, -25], device="cuda")
    azim0 = torch.tensor([0.0, 95, 135, 180, -135, -95], device="cuda")
    analytic, numeric = _camera_gradient_and_differences(renderer, mesh, tex, weights, elev0, azim0)
    cos = torch.nn.functional.cosine_similarity(analytic, numeric, dim=0).item()
    ratio = (analytic.norm() / numeric.norm()).item()
    print(f"\n{renderer_name}: cosine(analytic, FD) {cos:.4f}, |analytic|/|FD| {ratio:.3f}")
    print(f"  analytic {[round(x, 1) for x in analytic.tolist()]}")
    print(f"  FD       {[round(x, 1) for x in numeric.tolist()]}")
    assert cos > 0.95 and 0.8 < ratio < 1.25


@needs_gpu
def test_silhouette_gradients_of_a_quad_match_finite_differences():
    """One flat quad (every silhouette edge owned by the triangle at the pixel): nvdiffrast's
    antialiased camera gradients agree with central differences (h = 0.05 degrees). Measured on the
    H100: cosine 0.987, norm ratio 1.011 (the float32 central differences of a rasterised image
    are not exact, hence 0.98)."""
    from texkit.geometry.primitives import quad

    renderer = texkit.get_registry().make_renderer("nvdiffrast")
    mesh = quad().to("cuda")
    tex = _smooth_texture(64).cuda()
    weights = _weights("smooth", 256)[:4].double()
    elev0 = torch.tensor([0.0, 10.0, -10.0, 5.0], device="cuda")
    azim0 = torch.tensor([20.0, -30.0, 10.0, 40.0], device="cuda")
    analytic, numeric = _camera_gradient_and_differences(renderer, mesh, tex, weights, elev0, azim0)
    cos = torch.nn.functional.cosine_similarity(analytic, numeric, dim=0).item()
    ratio = (analytic.norm() / numeric.norm()).item()
    print(f"\nquad: cosine(analytic, FD) {cos:.4f}, |analytic|/|FD| {ratio:.3f}")
    assert cos > 0.98 and 0.9 < ratio < 1.1
