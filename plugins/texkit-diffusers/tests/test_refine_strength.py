"""Refinement (SDEdit) in the diffusion generator: ``paint(..., strength=s)``.

With strength s < 1 a view starts from the render's VAE latent noised to step ``K - int(K s)``
of the schedule and runs the remaining steps, as diffusers' img2img pipelines do; the random
draws are those of a full run, so a recomputation repeats them.
"""

from __future__ import annotations

import types

import pytest
import torch
from texkit_diffusers.sampler import refine_start

import texkit

STEPS = 4


@pytest.fixture(scope="module")
def generator():
    return texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0, eta=0.0)


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 1, 64, 64, generator=g)


@pytest.mark.parametrize("strength", [0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 1.0])
def test_start_step_is_diffusers_img2img(strength):
    from diffusers import StableDiffusionImg2ImgPipeline
    from texkit_diffusers.tiny import sd15_ddim_scheduler

    for steps in (4, 10):
        scheduler = sd15_ddim_scheduler()
        scheduler.set_timesteps(steps)
        timesteps, count = StableDiffusionImg2ImgPipeline.get_timesteps(types.SimpleNamespace(scheduler=scheduler), steps, strength, "cpu")
        assert refine_start(steps, strength) == steps - count
        assert torch.equal(timesteps, scheduler.timesteps[refine_start(steps, strength):])


def test_refine_matches_the_diffusers_controlnet_img2img_pipeline(generator):
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    prompt = generator.encode_prompt(["a red vase, front view"], ["blurry"])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        ours = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(42), strength=0.5)
        parts = {k: getattr(generator, k) for k in ("vae", "text_encoder", "tokenizer", "unet", "controlnet", "scheduler")}
        pipe = StableDiffusionControlNetImg2ImgPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        theirs = pipe(
            prompt_embeds=prompt.cond,
            negative_prompt_embeds=prompt.uncond,
            image=generator.encode_image(image),  # latents: not encoded again (no VAE sampling draw)
            control_image=generator.condition(image, depth, keep),
            strength=0.5,
            height=64,
            width=64,
            num_inference_steps=STEPS,
            guidance_scale=generator.options.guidance_scale,
            eta=0.0,
            controlnet_conditioning_scale=generator.options.conditioning_scale,
            generator=torch.Generator().manual_seed(42),
            output_type="pt",
        ).images
    assert ours.shape == theirs.shape == (1, 3, 64, 64)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_strength_1_is_the_plain_paint_and_0_returns_the_render(generator):
    prompt = generator.encode_prompt(["a vase"], [""])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        plain = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(3))
        full = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(3), strength=1.0)
        assert torch.equal(plain, full)
        for nothing in (0.0, 1.0 / STEPS - 0.01):  # no step to run: the render itself, no VAE round trip
            assert torch.equal(generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(3), strength=nothing), image)
        half = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(3), strength=0.5)
        again = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(3), strength=0.5)
    assert torch.equal(half, again) and not torch.allclose(half, plain)
    with pytest.raises(ValueError, match="strength"):
        generator.paint(prompt, image, depth, keep, strength=1.5)


def test_refine_is_differentiable_in_lora_and_render():
    gen = texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0)
    for p in gen.trainable_parameters():  # B matrices start at zero: give them a value so A gets gradients too
        torch.nn.init.normal_(p, std=0.01)
    image, depth = _inputs()
    image.requires_grad_(True)
    keep = torch.zeros(1, 1, 64, 64)
    keep[..., :16] = 1.0
    out = gen.paint(gen.encode_prompt(["a vase"], [""]), image, depth, keep, torch.Generator().manual_seed(2), strength=0.5)
    out[..., 16:].mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.trainable_parameters())
    assert image.grad is not None and image.grad[..., 16:].abs().sum() > 0  # through the VAE encoding it starts from
