"""The clip_score reward: parity with transformers' CLIPModel, gradients (image, LoRA), weights from the hub cache, errors."""

from __future__ import annotations

import pytest
import torch
from texkit_rewards_image.clip_score import ClipScore, clip_cosines, clip_image_embeddings, clip_text_embeddings
from texkit_rewards_image.clip_weights import tiny_clip_model
from texkit_rewards_image.preprocess import clip_pixel_values, composite_over_background

import texkit
from texkit.geometry.primitives import cube
from texkit.hub import cache_snapshot_folder
from texkit.types import RenderOutput, RewardContext, Texture

PROMPT = "a glazed ceramic gourd"
REV = "e" * 40


def _renders(rgb: torch.Tensor, alpha: torch.Tensor) -> RenderOutput:
    n, h, w, _ = rgb.shape
    zeros = torch.zeros(n, h, w, 1, dtype=rgb.dtype)
    return RenderOutput(
        rgb=rgb, alpha=alpha, depth=zeros, normal=torch.zeros(n, h, w, 3, dtype=rgb.dtype), uv=torch.zeros(n, h, w, 2, dtype=rgb.dtype),
        face_id=torch.zeros(n, h, w, dtype=torch.long), view_cos=zeros,
    )


def _views(seed: int = 0, views: int = 3, size: int = 16, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Premultiplied random renders with partial coverage: ``(rgb, alpha)``."""
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(views, size, size, 1, generator=gen, dtype=dtype)
    rgb = torch.rand(views, size, size, 3, generator=gen, dtype=dtype) * alpha
    return rgb, alpha


def _ctx(rgb: torch.Tensor, alpha: torch.Tensor, prompt: str = PROMPT) -> RewardContext:
    return RewardContext(mesh=cube(), texture=Texture.constant(4), renders=_renders(rgb, alpha), prompt=prompt)


def _transformers_cosines(model, tokenizer, rgb, alpha, text, background=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """Image-text cosines from CLIPModel.forward: logits_per_image / exp(logit_scale), same pixels and tokens."""
    tokens = tokenizer([text], padding=True, return_tensors="pt")
    pixels = clip_pixel_values(composite_over_background(rgb, alpha, background), int(model.config.vision_config.image_size))
    with torch.no_grad():
        out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=pixels)
    return out.logits_per_image[:, 0] / model.logit_scale.exp()


@pytest.mark.parametrize("seed", [0, 7])
def test_value_is_transformers_clip_image_text_cosine(seed):
    reward = ClipScore(tiny=True, seed=seed, background=(0.9, 0.8, 0.7))
    rgb, alpha = _views(seed)
    out = reward(_ctx(rgb, alpha))
    model, tokenizer = reward.models()
    expected = _transformers_cosines(model, tokenizer, rgb, alpha, PROMPT, background=(0.9, 0.8, 0.7))
    assert (out.value - expected.mean()).abs() <= 1e-5
    assert out.metrics["clip_score_min"] == pytest.approx(float(expected.min()), abs=1e-5)
    assert out.metrics["clip_score_max"] == pytest.approx(float(expected.max()), abs=1e-5)
    # the per-view cosines themselves, not only their mean
    cosines = clip_cosines(clip_image_embeddings(rgb, alpha, model, (0.9, 0.8, 0.7)), clip_text_embeddings([PROMPT], model, tokenizer))
    assert (cosines - expected).abs().max() <= 1e-5


def test_text_is_the_prompt_unless_given():
    rgb, alpha = _views(1)
    by_prompt = ClipScore(tiny=True)
    fixed = ClipScore(tiny=True, text="a wooden cow")
    a = by_prompt(_ctx(rgb, alpha, prompt=PROMPT)).value
    b = by_prompt(_ctx(rgb, alpha, prompt="a wooden cow")).value
    assert not torch.isclose(a, b)
    assert fixed(_ctx(rgb, alpha, prompt=PROMPT)).value == b
    model, tokenizer = fixed.models()
    assert (fixed(_ctx(rgb, alpha)).value - _transformers_cosines(model, tokenizer, rgb, alpha, "a wooden cow").mean()).abs() <= 1e-5


def test_directional_derivative_matches_finite_difference(directional):
    """Full 224-pixel path in float64: d/dt r(x + t d) by autograd and by central differences.

    Colours c alpha with c in [0.1, 0.9] over a grey background keep the bicubic upsampling inside
    [0, 1], away from the clamp's kinks."""
    reward = ClipScore(tiny=True, seed=3, background=(0.5, 0.5, 0.5))
    model, _ = reward.models("cpu", torch.float64)
    gen = torch.Generator().manual_seed(2)
    alpha = torch.rand(2, 16, 16, 1, generator=gen, dtype=torch.float64)
    rgb = (torch.rand(2, 16, 16, 3, generator=gen, dtype=torch.float64) * 0.8 + 0.1) * alpha
    direction = torch.randn(rgb.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    analytic, numeric = directional(lambda x: reward(_ctx(x, alpha)).value, rgb, direction)
    assert analytic != 0.0
    assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-9)
    assert all(not p.requires_grad and p.grad is None for p in model.parameters()) and not model.training


def _tiny_run_config(out, rewards: dict) -> dict:
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase"], "prefix": "a photo of ", "view_suffix": True},
        "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20, 10], "azimuth": [30, -30]}},
        "texture": {"size": 64, "render_size": 64},
        "rewards": rewards,
        "training": {"steps": 1, "lr": 3e-3, "before_after": False},
        "output": {"dir": str(out), "grid_views": 2},
        "device": "cpu",
    }


@pytest.mark.slow
def test_gradient_reaches_lora_in_a_tiny_training_step(tmp_path, monkeypatch):
    """One painting + scoring step of the trainer with the tiny generator: clip_score's gradient reaches the LoRA
    weights, through the renders, the texture and the generator; the text is the bare prompt."""
    from texkit.config import parse_config
    from texkit.training import Trainer

    seen: list[str] = []
    original = ClipScore.text_embedding

    def recording(self, text, device="cpu", dtype=torch.float32):
        seen.append(text)
        return original(self, text, device, dtype)

    monkeypatch.setattr(ClipScore, "text_embedding", recording)
    trainer = Trainer(parse_config(_tiny_run_config(tmp_path, {"clip_score": {"tiny": True}})), tmp_path)
    prompt, seeds = trainer.session.draw(0)
    texture = trainer.session.paint(prompt, seeds)
    total, metrics = trainer.session.score(texture, prompt)
    (-total).backward()
    lora = trainer.session.generator.trainable_parameters()
    reached = sum(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)
    assert reached >= len(lora) // 2, (reached, len(lora))  # B matrices (A waits for B != 0)
    assert set(seen) == {"a vase"}  # no prefix, no view suffix
    assert -1.0 <= float(total.detach()) <= 1.0


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hugging Face cache laid out here with a tiny CLIPModel and its tokenizer as ``org/tiny-clip-full``; offline."""
    cache = tmp_path / "hf" / "hub"
    model, tokenizer = tiny_clip_model(seed=5)
    folder = cache_snapshot_folder(cache, "org/tiny-clip-full", REV)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_id_and_local_folder_score_like_the_model_built_in_code(hub_cache, tmp_path):
    rgb, alpha = _views(3)
    in_code = ClipScore(tiny=True, seed=5)(_ctx(rgb, alpha)).value
    from_hub = ClipScore(clip_path="org/tiny-clip-full")(_ctx(rgb, alpha)).value
    torch.testing.assert_close(from_hub, in_code)
    folder = cache_snapshot_folder(hub_cache, "org/tiny-clip-full", REV)
    from_folder = ClipScore(clip_path=str(folder))(_ctx(rgb, alpha)).value
    torch.testing.assert_close(from_folder, in_code)


def test_the_aesthetic_reward_reads_the_same_folder(hub_cache):
    """One CLIPModel folder serves both rewards: aesthetic loads its image tower through the shared loader."""
    from texkit_rewards_image.aesthetic_weights import load_clip_vision

    vision = load_clip_vision("org/tiny-clip-full")
    model, _ = tiny_clip_model(seed=5)
    pixels = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    expected = model.get_image_features(pixel_values=pixels)
    expected = expected if isinstance(expected, torch.Tensor) else expected.pooler_output
    torch.testing.assert_close(vision(pixel_values=pixels).image_embeds, expected)


def test_weights_errors_are_one_line_and_say_what_to_do(hub_cache, tmp_path):
    with pytest.raises(texkit.WeightsError, match="clip_path"):
        ClipScore()
    with pytest.raises(texkit.WeightsError, match="not a folder or a hub id"):
        ClipScore(clip_path=str(tmp_path / "nope"))
    reward = ClipScore(clip_path="openai/clip-vit-large-patch14")
    with pytest.raises(texkit.WeightsError) as info:
        reward.models()
    message = str(info.value)
    assert "offline (HF_HUB_OFFLINE is set)" in message and "openai/clip-vit-large-patch14" in message and "\n" not in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(texkit.WeightsError, match="could not load CLIP"):
        ClipScore(clip_path=str(tmp_path / "empty")).models()


def test_missing_renders_prompt_and_unknown_parameter_are_user_errors():
    with pytest.raises(texkit.RewardError, match="renders"):
        ClipScore(tiny=True)(RewardContext(mesh=cube(), texture=Texture.constant(4)))
    rgb, alpha = _views(0)
    with pytest.raises(texkit.RewardError, match="no prompt"):
        ClipScore(tiny=True)(_ctx(rgb, alpha, prompt=" "))
    with pytest.raises(texkit.ConfigError, match="txt"):
        ClipScore(tiny=True, txt="a cow")


def test_registered_under_its_own_entry_point():
    entry = texkit.get_registry().get("rewards", "clip_score")
    assert entry.distribution == "texkit-rewards-image"
    reward = texkit.get_registry().make_reward("clip_score", {"tiny": True})
    assert reward.differentiable and reward.needs_renders
