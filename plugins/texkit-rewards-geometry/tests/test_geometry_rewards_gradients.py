"""Gradient checks of every differentiable geometry reward: float64 gradcheck w.r.t. the texture,
finite differences w.r.t. the camera angles where the reward renders."""

from __future__ import annotations

from types import SimpleNamespace

import pydantic
import pytest
import torch
from texkit_rewards_geometry.camera_pose import CameraPose
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment
from texkit_rewards_geometry.curvature_color import CurvatureColor
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis
from texkit_rewards_geometry.reference import Reference
from texkit_rewards_geometry.symmetry import Symmetry
from torch.autograd import gradcheck

import texkit

SIZE = 12  # 12 x 12 x 3 = 432 texture inputs


def _texture(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.1 + 0.8 * torch.rand(SIZE, SIZE, 3, generator=gen, dtype=torch.float64)).requires_grad_(True)


@pytest.mark.parametrize(
    "reward",
    [
        Symmetry(),
        CurvatureColor(mode="sharp", sharpness=5.0),
        CurvatureColor(mode="smooth"),
        FeatureEmphasis(),
        FeatureEmphasis(curvature="k_min", direction="constant"),
        CurvatureAlignment(iterations=20),
        CurvatureAlignment(iterations=20, edges="along", normalize="per_point"),
        # the reference-compatible modes (issue 17)
        Symmetry(compat="reference"),
        CurvatureColor(mode="sharp", sharpness=5.0, compat="reference"),
        FeatureEmphasis(compat="reference"),
        CurvatureAlignment(iterations=20, compat="reference"),
    ],
    ids=lambda r: f"{r.name}-{'-'.join(f'{k}={v}' for k, v in r.params.model_dump().items() if isinstance(v, str))}",
)
def test_texture_space_rewards_pass_gradcheck(reward, gourd, gourd_cache, make_context):
    coverage = torch.ones(SIZE, SIZE, 1, dtype=torch.float64)
    coverage[:, : SIZE // 4] = 0.0  # part of the atlas unpainted

    def value(image: torch.Tensor) -> torch.Tensor:
        return reward(make_context(gourd, gourd_cache, image, coverage)).value

    tex = _texture()
    assert value(tex).dtype == torch.float64
    assert gradcheck(value, (tex,), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)
    grad = torch.autograd.grad(value(tex), tex)[0]
    assert grad.abs().sum() > 0


def test_reference_texture_mode_passes_gradcheck(tmp_path, gourd, gourd_cache, make_context):
    from PIL import Image

    path = tmp_path / "ref.png"
    Image.new("RGB", (SIZE, SIZE), (200, 30, 90)).save(path)
    reward = Reference(texture=str(path))
    coverage = (torch.rand(SIZE, SIZE, 1, generator=torch.Generator().manual_seed(3)) > 0.3).double()
    assert gradcheck(lambda im: reward(make_context(gourd, gourd_cache, im, coverage)).value, (_texture(),), eps=1e-6, atol=1e-6)


# -- rewards that render -----------------------------------------------------------------------


class MeanRenderColour(texkit.Reward):
    """Test-only inner reward: mean rendered colour over the object's pixels of every view."""

    name = "test_mean_render_colour"
    needs_renders = True

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        channel: int = 0

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        rgb = ctx.renders.rgb[..., self.params.channel]
        weights = torch.linspace(0.5, 1.5, rgb.shape[1], dtype=rgb.dtype)[None, :, None]  # not shift-invariant
        return texkit.RewardOutput(value=(rgb * weights).mean())


@pytest.fixture(scope="module")
def inner_registered():
    registry = texkit.get_registry()
    if "test_mean_render_colour" not in registry.names("rewards"):
        plugin = SimpleNamespace(texkit_register_rewards=texkit.hookimpl(lambda register: register(MeanRenderColour)))
        registry.register_plugin(plugin, distribution="texkit-rewards-geometry-tests")
    return registry


@pytest.fixture(scope="module")
def renderer():
    registry = texkit.get_registry()
    if "torch" not in registry.names("renderers"):
        pytest.skip("the torch renderer (texkit-torch-render) is not installed")
    return registry.make_renderer("torch")


def _double(mesh: texkit.Mesh) -> texkit.Mesh:
    return texkit.Mesh(mesh.vertices.double(), mesh.faces, mesh.uvs.double(), mesh.uv_faces, mesh.normals.double(), mesh.name)


def _render_context(mesh, renderer, image, cameras, resolution=24):
    def render(texture, cams):
        return renderer.render(mesh, texture, cams, resolution)

    return texkit.RewardContext(mesh=mesh, texture=texkit.Texture(image), cameras=cameras, render=render)


def test_camera_pose_gradients_wrt_texture_and_cameras(inner_registered, renderer, gourd):
    mesh = _double(gourd)
    reward = CameraPose(reward="test_mean_render_colour", reward_params={"channel": 1})
    assert reward.needs_renders

    def value(image: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
        cams = texkit.Cameras.from_angles(elevation, torch.tensor([20.0, -100.0], dtype=torch.float64), dtype=torch.float64)
        return reward(_render_context(mesh, renderer, image, cams)).value

    elevation = torch.tensor([-10.0, -30.0], dtype=torch.float64, requires_grad=True)
    tex = _texture(1)
    # texture: linear in the texture through bilinear lookups -> exact gradcheck
    assert gradcheck(lambda im: value(im, elevation.detach()), (tex,), eps=1e-6, atol=1e-6, fast_mode=True)
    # cameras: central finite differences of the elevations (degrees)
    grad = torch.autograd.grad(value(tex.detach(), elevation), elevation)[0]
    step = 1e-3
    for i in range(2):
        delta = torch.zeros(2, dtype=torch.float64)
        delta[i] = step
        fd = (value(tex.detach(), elevation.detach() + delta) - value(tex.detach(), elevation.detach() - delta)) / (2 * step)
        assert abs(float(grad[i])) > 1e-6
        assert torch.isclose(grad[i], fd, rtol=0.05, atol=1e-7), (i, float(grad[i]), float(fd))


@pytest.mark.slow
def test_camera_pose_with_the_default_aesthetic_reward_moves_cameras(renderer, gourd):
    if "aesthetic" not in texkit.get_registry().names("rewards"):
        pytest.skip("the image rewards (texkit-rewards-image) are not installed")
    reward = CameraPose(reward_params={"tiny": True})
    elevation = torch.tensor([-10.0, -30.0], requires_grad=True)
    cams = texkit.Cameras.from_angles(elevation, [0.0, 120.0])
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = reward(_render_context(gourd, renderer, image, cams, resolution=32))
    out.value.backward()
    assert torch.isfinite(out.value)
    assert elevation.grad.abs().sum() > 0 and image.grad.abs().sum() > 0


def test_camera_pose_refuses_a_non_differentiable_inner_reward():
    if "jpeg_compressibility" not in texkit.get_registry().names("rewards"):
        pytest.skip("the image rewards (texkit-rewards-image) are not installed")
    with pytest.raises(texkit.RewardError, match="differentiable"):
        CameraPose(reward="jpeg_compressibility")


def test_camera_pose_without_renders_is_a_clear_error(inner_registered, gourd, gourd_cache, make_context):
    reward = CameraPose(reward="test_mean_render_colour")
    with pytest.raises(texkit.RewardError, match="renderer"):
        reward(make_context(gourd, gourd_cache, torch.rand(8, 8, 3)))


def test_reference_renders_mode_known_answer_and_gradients(tmp_path, renderer, gourd):
    from PIL import Image

    mesh = _double(gourd)
    ref = (torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(5)) * 255).round().byte()
    Image.fromarray(ref.numpy()).save(tmp_path / "ref.png")
    reward = Reference(texture=str(tmp_path / "ref.png"), mode="renders")
    assert reward.needs_renders
    cams = texkit.Cameras.from_angles([-20.0, -20.0], [0.0, 180.0], dtype=torch.float64)
    same = reward(_render_context(mesh, renderer, ref.double() / 255, cams)).value
    assert abs(float(same)) < 1e-12
    tex = _texture(2)
    assert reward(_render_context(mesh, renderer, tex.detach(), cams)).value < -1e-3
    assert gradcheck(lambda im: reward(_render_context(mesh, renderer, im, cams)).value, (tex,), eps=1e-6, atol=1e-6, fast_mode=True)
    # cameras: both the current and the reference renders move with them
    azimuth = torch.tensor([0.0, 180.0], dtype=torch.float64)

    def value(elevation: torch.Tensor) -> torch.Tensor:
        moved = texkit.Cameras.from_angles(elevation, azimuth, dtype=torch.float64)
        return reward(_render_context(mesh, renderer, tex.detach(), moved)).value

    elevation = torch.tensor([-20.0, -35.0], dtype=torch.float64, requires_grad=True)
    grad = torch.autograd.grad(value(elevation), elevation)[0]
    step = 1e-3
    for i in range(2):
        delta = torch.zeros(2, dtype=torch.float64)
        delta[i] = step
        fd = (value(elevation.detach() + delta) - value(elevation.detach() - delta)) / (2 * step)
        assert abs(float(grad[i])) > 1e-7
        assert torch.isclose(grad[i], fd, rtol=0.05, atol=1e-7), (i, float(grad[i]), float(fd))


def test_reference_textured_mesh_through_renders(tmp_path, renderer, gourd):
    """A reference given as another textured mesh file (here the gourd exported with a texture)."""
    image = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(7))
    image = (image * 255).round() / 255  # exactly representable in the PNG inside the GLB
    gourd.export(tmp_path / "ref.glb", image)
    reward = Reference(mesh=str(tmp_path / "ref.glb"))
    assert reward.params.mode == "renders" and reward.needs_renders
    cams = texkit.Cameras.from_angles([-20.0, -10.0], [30.0, 200.0])
    same = reward(_render_context(gourd, renderer, image, cams, resolution=48)).value
    other_image = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(8), requires_grad=True)
    other = reward(_render_context(gourd, renderer, other_image, cams, resolution=48)).value
    print(f"reference mesh: same texture {float(same):.2e}, other texture {float(other.detach()):.2e}")
    assert abs(float(same)) < 1e-4
    assert other < 100 * same - 1e-3
    other.backward()
    assert other_image.grad.abs().sum() > 0


def test_reference_needs_a_texture_or_a_mesh():
    with pytest.raises(texkit.ConfigError, match="texture"):
        Reference()


def test_camera_pose_without_renders_needs_both_cameras_and_a_renderer(inner_registered, renderer, gourd):
    reward = CameraPose(reward="test_mean_render_colour", reward_params={"channel": 1})
    image = torch.rand(8, 8, 3)
    cams = texkit.Cameras.from_angles([0.0], [0.0])
    with pytest.raises(texkit.RewardError, match="camera_pose needs renders"):  # cameras, no renderer
        reward(texkit.RewardContext(mesh=gourd, texture=texkit.Texture(image), cameras=cams))
    with pytest.raises(texkit.RewardError, match="camera_pose needs renders"):  # renderer, no cameras
        reward(texkit.RewardContext(mesh=gourd, texture=texkit.Texture(image), render=lambda texture, c: renderer.render(gourd, texture, c, 16)))
