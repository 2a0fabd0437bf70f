"""The aesthetic reward: gradients w.r.t. the image, frozen CLIP, weight loading and errors."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_image.aesthetic import AestheticReward, aesthetic_scores
from texkit_rewards_image.aesthetic_head import AestheticHead
from texkit_rewards_image.aesthetic_weights import tiny_aesthetic_head, tiny_clip_vision
from texkit_rewards_image.preprocess import clip_pixel_values, composite_over_background

import texkit
from texkit.geometry.primitives import cube
from texkit.types import RenderOutput, RewardContext, Texture


def _renders(rgb: torch.Tensor, alpha: torch.Tensor) -> RenderOutput:
    n, h, w, _ = rgb.shape
    zeros = torch.zeros(n, h, w, 1, dtype=rgb.dtype)
    return RenderOutput(
        rgb=rgb,
        alpha=alpha,
        depth=zeros,
        normal=torch.zeros(n, h, w, 3, dtype=rgb.dtype),
        uv=torch.zeros(n, h, w, 2, dtype=rgb.dtype),
        face_id=torch.zeros(n, h, w, dtype=torch.long),
        view_cos=zeros,
    )


def _ctx(rgb: torch.Tensor, alpha: torch.Tensor) -> RewardContext:
    return RewardContext(mesh=cube(), texture=Texture.constant(4), renders=_renders(rgb, alpha))


@pytest.fixture(scope="module")
def small_models():
    """A 32-pixel tiny CLIP (16 patches of 8) and its head in float64: cheap enough for gradcheck."""
    clip = tiny_clip_vision(seed=3, image_size=32, patch_size=8).double()
    head = tiny_aesthetic_head(int(clip.config.projection_dim), seed=3).double()
    return clip, head


def test_gradcheck_scores_wrt_image_and_alpha(small_models):
    clip, head = small_models
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 5, 5, 3, generator=gen, dtype=torch.float64) * 0.8 + 0.1
    alpha = torch.rand(2, 5, 5, 1, generator=gen, dtype=torch.float64) * 0.8 + 0.1
    rgb = (rgb * alpha).requires_grad_(True)
    alpha.requires_grad_(True)

    def scores(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return aesthetic_scores(x, a, clip, head, background=(0.9, 0.8, 0.7))

    assert torch.autograd.gradcheck(scores, (rgb, alpha), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_reward_directional_derivative_matches_finite_difference(directional):
    """Full 224-pixel path of the reward in float64: d/dt r(x + t d) by autograd and by central differences."""
    reward = AestheticReward(tiny=True, seed=1)
    reward.models("cpu", torch.float64)
    gen = torch.Generator().manual_seed(1)
    rgb = torch.rand(2, 16, 16, 3, generator=gen, dtype=torch.float64) * 0.8 + 0.1
    alpha = torch.ones(2, 16, 16, 1, dtype=torch.float64)
    direction = torch.randn(rgb.shape, generator=gen, dtype=torch.float64)
    analytic, numeric = directional(lambda x: reward(_ctx(x, alpha)).value, rgb, direction)
    assert analytic != 0.0
    assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-9)


def test_clip_and_head_are_frozen_gradients_reach_only_the_image():
    reward = AestheticReward(tiny=True)
    rgb = torch.rand(1, 8, 8, 3, requires_grad=True)
    reward(_ctx(rgb, torch.ones(1, 8, 8, 1))).value.backward()
    clip, head = reward.models()
    params = list(clip.parameters()) + list(head.parameters())
    assert all(not p.requires_grad and p.grad is None for p in params)
    assert not clip.training and not head.training
    assert rgb.grad is not None and rgb.grad.abs().sum() > 0


def test_value_is_mean_of_per_view_scores():
    reward = AestheticReward(tiny=True)
    gen = torch.Generator().manual_seed(2)
    rgb = torch.rand(3, 8, 8, 3, generator=gen)
    alpha = torch.ones(3, 8, 8, 1)
    whole = reward(_ctx(rgb, alpha))
    singles = torch.stack([reward(_ctx(rgb[i : i + 1], alpha[i : i + 1])).value for i in range(3)])
    torch.testing.assert_close(whole.value, singles.mean(), rtol=1e-5, atol=1e-6)
    assert whole.metrics["aesthetic_min"] == pytest.approx(float(singles.min()), rel=1e-5, abs=1e-6)
    assert whole.metrics["aesthetic_max"] == pytest.approx(float(singles.max()), rel=1e-5, abs=1e-6)


def test_empty_render_scores_like_the_background_colour():
    reward = AestheticReward(tiny=True, background=(0.2, 0.4, 0.6))
    empty = reward(_ctx(torch.zeros(1, 8, 8, 3), torch.zeros(1, 8, 8, 1))).value
    flat = reward(_ctx(torch.tensor([0.2, 0.4, 0.6]).expand(1, 8, 8, 3).clone(), torch.ones(1, 8, 8, 1))).value
    torch.testing.assert_close(empty, flat)
    composite = composite_over_background(torch.zeros(1, 2, 2, 3), torch.full((1, 2, 2, 1), 0.25), (1.0, 1.0, 1.0))
    torch.testing.assert_close(composite, torch.full((1, 2, 2, 3), 0.75))


def test_clip_pixel_values_normalise_with_clip_statistics():
    grey = torch.full((1, 10, 10, 3), 0.5)
    pixels = clip_pixel_values(grey, 224)
    assert pixels.shape == (1, 3, 224, 224)
    expected = (0.5 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor([0.26862954, 0.26130258, 0.27577711])
    torch.testing.assert_close(pixels[0, :, 100, 100], expected)


def test_gradients_reach_texture_and_cameras_through_the_renderer():
    torch_renderer = texkit.get_registry().make_renderer("torch")
    reward = AestheticReward(tiny=True)
    gen = torch.Generator().manual_seed(4)
    image = torch.rand(16, 16, 3, generator=gen).requires_grad_(True)
    cameras = texkit.Cameras.from_angles([-20.0, -10.0], [30.0, -60.0])
    cameras.azimuth.requires_grad_(True)
    mesh = cube()
    renders = torch_renderer.render(mesh, Texture(image), cameras, 32)
    out = reward(RewardContext(mesh=mesh, texture=Texture(image), cameras=cameras, renders=renders))
    out.value.backward()
    assert image.grad.abs().sum() > 0
    assert cameras.azimuth.grad is not None and cameras.azimuth.grad.abs().sum() > 0


def _save_tiny_weights(tmp_path, head_format: str):
    clip = tiny_clip_vision(seed=5)
    head = tiny_aesthetic_head(int(clip.config.projection_dim), seed=5)
    clip_dir = tmp_path / "clip"
    clip.save_pretrained(str(clip_dir))
    if head_format == "safetensors":
        from safetensors.torch import save_file

        head_path = tmp_path / "head.safetensors"
        save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(head_path))
    else:
        head_path = tmp_path / "head.pth"
        torch.save(head.state_dict(), str(head_path))
    return clip_dir, head_path


@pytest.mark.parametrize("head_format", ["safetensors", "pth"])
def test_weights_load_from_local_paths_and_give_the_same_scores(tmp_path, head_format):
    clip_dir, head_path = _save_tiny_weights(tmp_path, head_format)
    loaded = AestheticReward(clip_path=str(clip_dir), head_path=str(head_path))
    in_code = AestheticReward(tiny=True, seed=5)
    gen = torch.Generator().manual_seed(6)
    ctx = _ctx(torch.rand(2, 12, 12, 3, generator=gen), torch.ones(2, 12, 12, 1))
    torch.testing.assert_close(loaded(ctx).value, in_code(ctx).value)
    clip, head = loaded.models()
    assert not any(p.requires_grad for p in list(clip.parameters()) + list(head.parameters()))


def test_laion_state_dict_layout_loads_into_head():
    """The published predictor's keys (layers.0/2/4/6/7) and shapes (768-1024-128-64-16-1)."""
    shapes = {0: (1024, 768), 2: (128, 1024), 4: (64, 128), 6: (16, 64), 7: (1, 16)}
    state = {}
    for index, (out_dim, in_dim) in shapes.items():
        state[f"layers.{index}.weight"] = torch.randn(out_dim, in_dim)
        state[f"layers.{index}.bias"] = torch.randn(out_dim)
    head = AestheticHead(768)
    head.load_state_dict(state)
    head.eval()
    x = torch.randn(3, 768, dtype=torch.float64)
    expected = x
    for index in shapes:
        expected = expected @ state[f"layers.{index}.weight"].double().T + state[f"layers.{index}.bias"].double()
    torch.testing.assert_close(head.double()(x), expected.squeeze(-1))


def test_missing_weights_raise_weights_error(tmp_path):
    with pytest.raises(texkit.WeightsError, match="clip_path and head_path"):
        AestheticReward()
    with pytest.raises(texkit.WeightsError, match="head_path"):
        AestheticReward(clip_path=str(tmp_path))
    with pytest.raises(texkit.WeightsError, match="not a folder"):
        AestheticReward(clip_path=str(tmp_path / "nope"), head_path=str(tmp_path / "head.pth"))
    with pytest.raises(texkit.WeightsError, match="not found"):
        AestheticReward(clip_path=str(tmp_path), head_path=str(tmp_path / "head.pth"))


def test_unloadable_weights_raise_weights_error(tmp_path):
    bad_head = tmp_path / "head.pth"
    torch.save({"weight": torch.zeros(2)}, str(bad_head))
    (tmp_path / "clip").mkdir()
    reward = AestheticReward(clip_path=str(tmp_path / "clip"), head_path=str(bad_head))
    with pytest.raises(texkit.WeightsError, match="could not load CLIP"):
        reward.models()
    clip_dir, _ = _save_tiny_weights(tmp_path / "good", "pth")
    reward = AestheticReward(clip_path=str(clip_dir), head_path=str(bad_head))
    with pytest.raises(texkit.WeightsError, match="not a LAION aesthetic head"):
        reward.models()


def test_renders_missing_and_unknown_parameter_are_user_errors():
    with pytest.raises(texkit.RewardError, match="renders"):
        AestheticReward(tiny=True)(RewardContext(mesh=cube(), texture=Texture.constant(4)))
    with pytest.raises(texkit.ConfigError, match="clip_pth"):
        AestheticReward(tiny=True, clip_pth="x")


@pytest.mark.parametrize("size", [224, 448, 300, 128])
def test_preprocessing_conforms_to_the_transformers_clip_processor(size):
    """Same pixel values as CLIPImageProcessor: exact at 224, within 8-bit rounding after resizing."""
    from transformers import CLIPImageProcessor

    base = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(size))
    smooth = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    pixels_u8 = (smooth[0].permute(1, 2, 0) * 255).round().to(torch.uint8)
    reference = CLIPImageProcessor()(images=pixels_u8.numpy(), return_tensors="pt")["pixel_values"]
    ours = clip_pixel_values((pixels_u8.float() / 255).unsqueeze(0))
    one_level = 1.0 / 255 / min(0.26862954, 0.26130258, 0.27577711)  # one 8-bit step in normalised units
    tolerance = 1e-6 if size == 224 else 1.1 * one_level
    assert (reference - ours).abs().max() <= tolerance
