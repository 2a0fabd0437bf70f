"""The diffusion generator: conformance with diffusers, LoRA gradients, truncation, adapters, memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from texkit_diffusers.attention import select_attention_backend

import texkit
from texkit.errors import ConfigError, WeightsError

STEPS = 3


@pytest.fixture(scope="module")
def generator():
    return texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0)


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 1, 64, 64, generator=g)


def test_sampler_matches_diffusers_pipeline(generator):
    prompt = generator.encode_prompt(["a red vase, front view"], ["blurry"])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        ours = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(42))
        pipe = generator.pipeline()
        pipe.set_progress_bar_config(disable=True)
        theirs = pipe(
            prompt_embeds=prompt.cond,
            negative_prompt_embeds=prompt.uncond,
            image=generator.condition(image, depth, keep),
            height=64,
            width=64,
            num_inference_steps=STEPS,
            guidance_scale=generator.options.guidance_scale,
            eta=generator.options.eta,
            controlnet_conditioning_scale=generator.options.conditioning_scale,
            generator=torch.Generator().manual_seed(42),
            output_type="pt",
        ).images
    assert ours.shape == theirs.shape == (1, 3, 64, 64)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_keep_region_is_kept(generator):
    prompt = generator.encode_prompt(["a vase"], [""])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    keep[..., :, :32] = 1.0
    with torch.no_grad():
        out = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(0))
    assert torch.allclose(out[..., :32], image[..., :32], atol=1e-6)
    assert not torch.allclose(out[..., 32:], image[..., 32:], atol=1e-2)


def test_inpaint_condition_follows_controlnet_inpaint_convention(generator):
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    keep[..., :, :20] = 1.0
    cond = generator.condition(image, depth, keep)
    assert cond.shape == (1, 6, 64, 64)
    assert torch.equal(cond[:, :3, :, :20], image[..., :20])  # kept: the render itself, in [0, 1]
    assert torch.all(cond[:, :3, :, 20:] == -1.0)  # to paint: -1
    assert torch.equal(cond[:, 3:], depth.expand(-1, 3, -1, -1))


def test_latent_is_blended_with_the_noised_render_before_every_step(generator):
    from texkit_diffusers.sampler import draw_noise

    prompt = generator.encode_prompt(["a vase"], [""])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    keep[..., :, :32] = 1.0  # latent columns 0-3 kept exactly, 4-7 painted
    seen: list[torch.Tensor] = []
    handle = generator.controlnet.register_forward_pre_hook(lambda module, args: seen.append(args[0][:1].clone()))
    try:
        with torch.no_grad():
            generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(5))
            render_latents = generator.encode_image(image)
    finally:
        handle.remove()
    noise = draw_noise((1, 4, 8, 8), generator.options, generator.scheduler, torch.Generator().manual_seed(5), torch.device("cpu"), torch.float32)
    alphas = generator.scheduler.alphas_cumprod
    assert len(seen) == STEPS
    for i, t in enumerate(generator.scheduler.timesteps):
        a = alphas[t]
        expected = a.sqrt() * render_latents + (1 - a).sqrt() * noise.blend[i]
        assert torch.allclose(seen[i][..., :4], expected[..., :4], atol=1e-5), i
        assert not torch.allclose(seen[i][..., 4:], expected[..., 4:], atol=1e-2), i


def test_gradients_reach_the_render_and_the_soft_keep_mask(generator):
    prompt = generator.encode_prompt(["a vase"], [""])
    image, depth = _inputs()
    image.requires_grad_(True)
    keep = torch.zeros(1, 1, 64, 64)
    keep[..., :, :32] = 1.0
    keep.requires_grad_(True)
    out = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(0))
    out.mean().backward()
    # painted pixels see the render only through its VAE encoding, the latent blending and the UNet
    assert image.grad[..., 40:].abs().sum() > 0
    assert keep.grad.abs().sum() > 0


def test_same_seed_same_view_and_prompt_broadcast(generator):
    prompt = generator.encode_prompt(["a vase"], [""])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        first = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(9))
        again = generator.paint(prompt, image, depth, keep, torch.Generator().manual_seed(9))
        batch = generator.paint(prompt, image.expand(2, -1, -1, -1), depth.expand(2, -1, -1, -1), keep.expand(2, -1, -1, -1), torch.Generator().manual_seed(9))
    assert torch.equal(first, again)  # a recomputation with the same seed sees the same noise
    assert batch.shape == (2, 3, 64, 64) and not torch.allclose(batch[0], batch[1])


def test_condition_must_match_the_controlnet():
    from texkit_diffusers.generator import DiffusionGenerator
    from texkit_diffusers.tiny import build_tiny_components

    with pytest.raises(ConfigError, match="condition='inpaint'"):
        DiffusionGenerator(build_tiny_components(0, conditioning_channels=6), resolution=64, condition="depth")
    with pytest.raises(ConfigError, match="option 'condition': Input should be 'inpaint' or 'depth'"):
        texkit.get_registry().make_generator("tiny", condition="canny")
    depth_gen = texkit.get_registry().make_generator("tiny", condition="depth", steps=1)
    image, depth = _inputs()
    with torch.no_grad():
        out = depth_gen.paint(depth_gen.encode_prompt(["a"], [""]), image, depth, torch.zeros(1, 1, 64, 64))
    assert out.shape == (1, 3, 64, 64) and 0.0 <= out.min() and out.max() <= 1.0


def _lora_grads(gen, truncation):
    gen.options.truncation = truncation
    prompt = gen.encode_prompt(["a vase"], [""])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)
    keep[..., :16] = 1.0
    for p in gen.trainable_parameters():
        p.grad = None
    out = gen.paint(prompt, image, depth, keep, torch.Generator().manual_seed(0))
    reward = (out[:, 0] - out[:, 2]).mean()  # a differentiable "redness" reward
    reward.backward()
    return {id(p): (p.grad.clone() if p.grad is not None else None) for p in gen.trainable_parameters()}


def test_reward_gradients_reach_every_lora_matrix_and_nothing_frozen():
    gen = texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0)
    # LoRA starts with B = 0 (the model is unchanged), so A gets no gradient until B moves: one step first
    _lora_grads(gen, "all")
    with torch.no_grad():
        for p in gen.trainable_parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad.sign() * 0.05
    grads = _lora_grads(gen, "all")
    assert len(grads) == 64  # A and B of q, k, v, out in 8 attention blocks
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())
    for module in (gen.unet, gen.controlnet, gen.vae, gen.text_encoder):
        for name, p in module.named_parameters():
            if "lora_" not in name:
                assert p.grad is None and not p.requires_grad, name


def test_truncation_changes_which_steps_carry_gradient():
    gen = texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0)
    calls: list[bool] = []
    handle = gen.unet.register_forward_pre_hook(lambda module, args: calls.append(torch.is_grad_enabled()))
    try:
        full = _lora_grads(gen, "all")
        assert calls == [True] * STEPS
        calls.clear()
        last = _lora_grads(gen, 1)
        assert calls == [False] * (STEPS - 1) + [True]
    finally:
        handle.remove()
    diff = sum((full[k] - last[k]).abs().sum().item() for k in full if full[k] is not None)
    assert diff > 0  # dropping the early steps' paths changes the gradient


def test_checkpointing_gives_the_same_gradients():
    gen = texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0, checkpointing=False)
    with torch.no_grad():  # move B off zero so every matrix gets a gradient
        for p in gen.trainable_parameters():
            p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(p.numel()))
    plain = _lora_grads(gen, "all")
    gen.set_checkpointing(True)
    checkpointed = _lora_grads(gen, "all")
    for key, grad in plain.items():
        assert grad is not None and grad.abs().sum() > 0
        assert torch.allclose(checkpointed[key], grad, rtol=1e-4, atol=1e-7)


def test_saved_adapter_loads_into_plain_diffusers_pipeline(tmp_path):
    trained = texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0)
    with torch.no_grad():
        for p in trained.trainable_parameters():
            p.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(p.numel()))
    trained.save_adapter(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "pytorch_lora_weights.safetensors").exists()

    from diffusers import StableDiffusionControlNetPipeline
    from texkit_diffusers.tiny import build_tiny_components

    plain = build_tiny_components(seed=0)  # the same base weights, no texkit code around them
    pipe = StableDiffusionControlNetPipeline(**plain, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    prompt = trained.encode_prompt(["a vase"], [""])
    image, depth = _inputs()
    keep = torch.zeros(1, 1, 64, 64)

    def run_pipe():
        return pipe(
            prompt_embeds=prompt.cond,
            negative_prompt_embeds=prompt.uncond,
            image=trained.condition(image, depth, keep),
            height=64,
            width=64,
            num_inference_steps=STEPS,
            eta=1.0,
            generator=torch.Generator().manual_seed(3),
            output_type="pt",
        ).images

    with torch.no_grad():
        base = run_pipe()
        pipe.load_lora_weights(str(tmp_path / "adapter"), adapter_name="loaded")
        loaded = run_pipe()
        ours = trained.paint(prompt, image, depth, keep, torch.Generator().manual_seed(3))
    assert (loaded - base).abs().max() > 1e-3  # the adapter changes the output ...
    assert (loaded - ours).abs().max() < 1e-4  # ... exactly as it does in texkit

    # and our own loader restores it
    again = texkit.get_registry().make_generator("tiny", steps=STEPS, seed=0)
    again.load_adapter(tmp_path / "adapter")
    with torch.no_grad():
        restored = again.paint(prompt, image, depth, keep, torch.Generator().manual_seed(3))
    assert (restored - ours).abs().max() < 1e-5


def test_missing_adapter_and_weights_give_one_line_errors(tmp_path):
    gen = texkit.get_registry().make_generator("tiny", steps=1)
    with pytest.raises(WeightsError, match="no LoRA adapter"):
        gen.load_adapter(tmp_path)
    gen.save_adapter(tmp_path / "rank4")
    with pytest.raises(WeightsError, match="lora_rank"):
        texkit.get_registry().make_generator("tiny", steps=1, lora_rank=2).load_adapter(tmp_path / "rank4")
    with pytest.raises(WeightsError) as info:
        texkit.get_registry().make_generator("stable-diffusion", model=str(tmp_path / "sd15"), controlnet=str(tmp_path / "cn"), device="cpu", dtype="fp32")
    assert "sd15" in str(info.value) and "\n" not in str(info.value)


def test_attention_falls_back_to_sdpa_without_xformers(generator):
    assert generator.attention_backend == "sdpa"  # CPU: xformers kernels cannot run
    assert select_attention_backend([generator.unet], torch.device("cpu"), prefer="xformers") == "sdpa"


def _peak_cpu_bytes(gen, size: int) -> int:
    """Peak bytes held by tensors during one paint forward + backward, from torch.profiler's allocation events."""
    from torch.profiler import ProfilerActivity, profile

    prompt = gen.encode_prompt(["a vase"], [""])
    image, depth = torch.rand(1, 3, size, size), torch.rand(1, 1, size, size)
    keep = torch.zeros(1, 1, size, size)
    keep[..., : size // 3] = 1.0
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = gen.paint(prompt, image, depth, keep, torch.Generator().manual_seed(0))
        out.mean().backward()
        del out
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    live = peak = 0
    for event in events:  # self memory: allocations minus frees made by the op itself
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


@pytest.mark.slow
def test_checkpointing_lowers_peak_memory():
    gen = texkit.get_registry().make_generator("tiny", steps=2, checkpointing=False)
    without = _peak_cpu_bytes(gen, 64)
    gen.set_checkpointing(True)
    with_checkpointing = _peak_cpu_bytes(gen, 64)
    print(f"tiny, 64 px, 2 steps, fwd+bwd peak: {without / 2**20:.1f} MiB without, {with_checkpointing / 2**20:.1f} MiB with checkpointing")
    assert with_checkpointing < 0.75 * without


def test_gpu_benchmark_script_smoke(tmp_path):
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu" / "bench_generator.py"
    proc = subprocess.run([sys.executable, str(script), "--tiny", "--steps", "2", "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["config"] == "tiny" and len(data["runs"]) >= 4
    assert all(run["seconds"] > 0 for run in data["runs"])
    assert data["attention_backend"] == "sdpa" and data["lora_parameters"] > 0
