"""Do compiled gradients equal eager ones? The UNet's first up block, and a whole denoising call, on one device.

Found on the CPU (torch 2.13): with Inductor's layout optimisation on, compiling the tiny UNet gives
the eager forward but a zero gradient through its first up block (``UpBlock2D``: resnets, then
``Upsample2D``), so the adapter and latent gradients of a compiled training step were wrong there.
texkit now compiles with the layout optimisation off on the CPU
(`texkit_diffusers.compiled.inductor_options`). This script compiles with the options texkit uses on
the device (``--options torch`` for torch's own defaults) and prints one JSON line per check: the
largest gradient difference relative to the largest eager gradient, the gradient norms, and for the
whole call the directional derivative beside central finite differences. ``--memory-format
channels_last`` checks the layout Inductor is forced into with that generator option on CUDA.

    python benchmarks/gpu/check_compiled_grads.py --device cuda --memory-format channels_last
    python benchmarks/gpu/check_compiled_grads.py --model /tmp/sd15 --checkpointing on --memory-format channels_last
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from texkit_diffusers.compiled import inductor_options

import texkit


def _relative(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """Largest elementwise difference over the largest eager gradient."""
    scale = max(float(w.abs().max()) for w in want)
    return max(float((g - w).abs().max()) for g, w in zip(got, want)) / scale


def _norm_relative(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """``|got - want| / |want|`` over all tensors together (a spread-out difference the largest element hides)."""
    difference = torch.stack([(g - w).double().norm() for g, w in zip(got, want)]).norm()
    return float(difference / torch.stack([w.double().norm() for w in want]).norm())


def up_block_check(gen: Any, device: torch.device, options: dict[str, Any]) -> dict[str, Any]:
    """Gradients of the UNet's first up block (input, skip features, time embedding) compiled vs eager."""
    unet = gen.unet
    block = unet.up_blocks[0]
    seen: dict[str, Any] = {}

    def keep_inputs(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.setdefault("kwargs", kwargs)

    handle = block.register_forward_pre_hook(keep_inputs, with_kwargs=True)
    g = torch.Generator().manual_seed(3)
    size = gen.resolution // gen.vae_scale_factor
    latents = torch.randn(2, unet.config.in_channels, size, size, generator=g).to(device)
    embeds = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g).to(device)
    with torch.no_grad():
        unet(latents, torch.tensor(500, device=device), encoder_hidden_states=embeds, return_dict=False)
    handle.remove()
    kwargs = seen["kwargs"]
    hidden = kwargs["hidden_states"].detach().clone().requires_grad_(True)
    skips = tuple(s.detach().clone().requires_grad_(True) for s in kwargs["res_hidden_states_tuple"])
    temb = kwargs["temb"].detach().clone().requires_grad_(True)

    def call(hidden: torch.Tensor, skips: tuple[torch.Tensor, ...], temb: torch.Tensor) -> torch.Tensor:
        return block(hidden_states=hidden, res_hidden_states_tuple=skips, temb=temb)

    def grads(fn: Any) -> list[torch.Tensor]:
        out = fn(hidden, skips, temb)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(device)
        return list(torch.autograd.grad((out * weight).sum(), [hidden, *skips, temb]))

    want = grads(call)
    torch._dynamo.reset()
    got = grads(torch.compile(call, dynamic=False, **options))
    return {
        "check": "unet.up_blocks[0] (UpBlock2D)",
        "relative_difference": _relative(got, want),
        "norm_relative_difference": _norm_relative(got, want),
        "compiled_norm": float(torch.stack([g.norm() for g in got]).norm()),
        "eager_norm": float(torch.stack([w.norm() for w in want]).norm()),
    }


def denoising_call_check(gen: Any, device: torch.device, options: dict[str, Any]) -> dict[str, Any]:
    """A whole UNet + ControlNet call: adapter gradients compiled vs eager, and vs finite differences."""
    g = torch.Generator().manual_seed(3)
    params = gen.trainable_parameters()
    size = gen.resolution // gen.vae_scale_factor
    latents = torch.randn(2, gen.unet.config.in_channels, size, size, generator=g).to(device)
    condition = torch.rand(2, gen.controlnet.config.conditioning_channels, gen.resolution, gen.resolution, generator=g).to(device)
    embeds = torch.randn(2, 77, gen.unet.config.cross_attention_dim, generator=g).to(device)
    t = torch.tensor(500, device=device)
    direction = [torch.randn(p.shape, generator=g).to(device) for p in params]

    def loss_of(fn: Any) -> torch.Tensor:
        gen.merged_lora.refresh()
        out = fn(latents, t, embeds, condition, 1.0)
        return (out * torch.linspace(0, 1, out.shape[-1], device=device)).square().mean()

    def directional(fn: Any) -> tuple[float, list[torch.Tensor]]:
        grads = list(torch.autograd.grad(loss_of(fn), params))
        return sum(float((a * b).sum()) for a, b in zip(grads, direction)), grads

    eager_derivative, want = directional(gen.denoiser.eager)
    torch._dynamo.reset()
    compiled_derivative, got = directional(torch.compile(gen.denoiser.eager, dynamic=False, **options))
    eps = 3e-3
    with torch.no_grad():
        for p, d in zip(params, direction):
            p.add_(eps * d)
        up = float(loss_of(gen.denoiser.eager))
        for p, d in zip(params, direction):
            p.sub_(2 * eps * d)
        down = float(loss_of(gen.denoiser.eager))
        for p, d in zip(params, direction):
            p.add_(eps * d)
    return {
        "check": f"denoising call ({gen.name} UNet + ControlNet, {size}x{size} latents), adapter gradients",
        "relative_difference": _relative(got, want),
        "norm_relative_difference": _norm_relative(got, want),
        "directional_eager": eager_derivative,
        "directional_compiled": compiled_derivative,
        "directional_finite_differences": (up - down) / (2 * eps),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--memory-format", default="contiguous", help="generator option memory_format: contiguous or channels_last")
    parser.add_argument("--options", choices=("texkit", "torch"), default="texkit", help="Inductor options: texkit's for the device, or torch's defaults")
    parser.add_argument("--model", default=None, help="a saved full-size model folder with controlnet/ inside (bench_scaling.py --prepare); default: the tiny model")
    parser.add_argument("--checkpointing", choices=("on", "off"), default="off", help="gradient checkpointing inside UNet and ControlNet (training runs with it on)")
    parser.add_argument(
        "--lora-scale", type=float, default=None,
        help="standard deviation of the random adapter weights (default: 0.2 for the tiny model, 0.01 for a full-size one, "
        "where 0.2 makes the random model's loss rough at the scale of rounding, so no two gradients can agree)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    common = {"compile": "off", "checkpointing": args.checkpointing == "on", "device": str(device), "memory_format": args.memory_format}
    if args.model:  # fp32, so that a compiler bug is not hidden in half-precision rounding
        gen = texkit.get_registry().make_generator("stable-diffusion", model=args.model, controlnet=f"{args.model}/controlnet", dtype="fp32", **common)
    else:
        gen = texkit.get_registry().make_generator("tiny", steps=2, **common)
    options = inductor_options(args.memory_format == "channels_last", device) if args.options == "texkit" else {}
    lora_scale = args.lora_scale if args.lora_scale is not None else (0.01 if args.model else 0.2)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.copy_(lora_scale * torch.randn(p.shape, generator=g).to(p.device))
    rows = []
    for check in (up_block_check, denoising_call_check):
        row = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "memory_format": args.memory_format,
            "model": args.model or "tiny",
            "checkpointing": args.checkpointing,
            "lora_scale": lora_scale,
            "inductor_options": options.get("options", {}),
            **check(gen, device, options),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
