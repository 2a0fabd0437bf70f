"""Time and peak memory of painting one view with the texkit diffusion generator.

Full-size SD 1.5 UNet + ControlNet (6-channel depth-aware inpainting condition) + VAE + CLIP text
encoder with *random* weights (same FLOPs and memory as the real model), 512 px, 10 DDIM steps,
CFG 7.5, LoRA rank 4, a third of the view kept (latent blending and the VAE encoding of the render
run). Runs: forward only; forward+backward with gradient checkpointing (UNet, ControlNet, VAE) on
and off, each with truncation 1 and all. Time is the mean over ``--repeats`` runs after one
warm-up; peak memory is ``torch.cuda.max_memory_allocated`` over those runs. Prints one JSON object.

    python benchmarks/gpu/bench_generator.py            # on a CUDA machine, fp16
    python benchmarks/gpu/bench_generator.py --tiny     # CPU smoke test with the tiny model
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import torch


def full_size_components(conditioning_channels: int = 6) -> dict[str, Any]:
    """SD 1.5-shaped components with random weights (configs of runwayml/stable-diffusion-v1-5)."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from texkit_diffusers.tiny import build_byte_tokenizer, build_text_encoder, sd15_ddim_scheduler

    tokenizer = build_byte_tokenizer()
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    controlnet = ControlNetModel(cross_attention_dim=768, attention_head_dim=8, conditioning_channels=conditioning_channels)
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
    )
    text_encoder = build_text_encoder(tokenizer, hidden_size=768, intermediate_size=3072, layers=12, heads=12)
    scheduler = sd15_ddim_scheduler()
    return {"unet": unet, "controlnet": controlnet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(gen: Any, backward: bool, checkpointing: bool, truncation: Any, repeats: int) -> dict[str, Any]:
    """Paint one view ``repeats`` times (after one warm-up) and report the mean time and peak memory."""
    gen.set_checkpointing(checkpointing)
    gen.options.truncation = truncation
    res = gen.resolution
    prompt = gen.encode_prompt(["a wooden chair, front view"], ["blurry"])
    image = torch.rand(1, 3, res, res, device=gen.device)
    depth = torch.rand(1, 1, res, res, device=gen.device)
    keep = torch.zeros(1, 1, res, res, device=gen.device)
    keep[..., : res // 3] = 1.0
    times = []
    if gen.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(gen.device)
    for i in range(repeats + 1):
        for p in gen.trainable_parameters():
            p.grad = None
        _sync(gen.device)
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out = gen.paint(prompt, image, depth, keep, torch.Generator(device=gen.device).manual_seed(i))
            if backward:
                out.float().mean().backward()
        _sync(gen.device)
        if i > 0:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(gen.device) / 2**30 if gen.device.type == "cuda" else None
    return {
        "backward": backward,
        "checkpointing": checkpointing,
        "truncation": truncation,
        "seconds": sum(times) / len(times),
        "peak_gib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random model on the CPU (smoke test)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    parser.add_argument("--attention", default="auto", choices=["auto", "xformers", "sdpa"])
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    args = parser.parse_args()

    from texkit_diffusers.generator import DTYPES, DiffusionGenerator
    from texkit_diffusers.sampler import SamplerOptions
    from texkit_diffusers.tiny import TINY_RESOLUTION, build_tiny_components

    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if args.tiny:
        dtype = torch.float32 if device.type == "cpu" else DTYPES[args.dtype]
        res, components = TINY_RESOLUTION, build_tiny_components(0)
    else:
        dtype, res = DTYPES[args.dtype], 512
        torch.manual_seed(0)
        with torch.device(device):  # random init on the GPU: much faster than on the CPU
            components = full_size_components()
    gen = DiffusionGenerator(components, SamplerOptions(steps=args.steps), resolution=res, device=device, dtype=dtype, attention=args.attention, name="bench")
    runs = [run_once(gen, False, False, "all", args.repeats)]
    for checkpointing in (False, True):
        for truncation in (1, "all"):
            try:
                runs.append(run_once(gen, True, checkpointing, truncation, args.repeats))
            except torch.OutOfMemoryError:
                runs.append({"backward": True, "checkpointing": checkpointing, "truncation": truncation, "error": "out of memory"})
                torch.cuda.empty_cache()
    print(
        json.dumps(
            {
                "config": "tiny" if args.tiny else "sd15-full-size-random",
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
                "torch": torch.__version__,
                "dtype": str(dtype).replace("torch.", ""),
                "resolution": res,
                "ddim_steps": args.steps,
                "guidance_scale": gen.options.guidance_scale,
                "attention_backend": gen.attention_backend,
                "attention_reason": gen.attention_reason,
                "lora_parameters": sum(p.numel() for p in gen.trainable_parameters()),
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
