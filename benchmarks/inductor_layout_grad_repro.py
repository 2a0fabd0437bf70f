"""Pure-torch reproduction of the CPU Inductor gradient bug that `texkit_diffusers.compiled.inductor_options` avoids.

A ResNet block (GroupNorm, SiLU, convolution, time-embedding add, 1x1 shortcut, the sum divided by
diffusers' ``output_scale_factor`` of 1.0) followed by a nearest-neighbour upsampling and a
convolution, the shape of a diffusion UNet's up block. Compiled on the CPU with Inductor's layout
optimisation on (torch's default), the forward matches eager but the gradient of the inputs is zero;
with ``layout_optimization = False`` it matches (torch 2.13.0+cpu; the division by 1.0 is needed to
trigger it). The texkit-sized evidence is benchmarks/results/compiled_grads_cpu.jsonl. Prints one
line per setting; for an upstream report.

    python benchmarks/inductor_layout_grad_repro.py
"""

from __future__ import annotations

import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F
from torch import nn


def build(channels: int = 128, out: int = 64, time_dim: int = 128) -> nn.ModuleDict:
    """Frozen layers of one up block (random weights)."""
    torch.manual_seed(0)
    layers = nn.ModuleDict(
        {
            "norm1": nn.GroupNorm(8, channels, eps=1e-6),
            "conv1": nn.Conv2d(channels, out, 3, padding=1),
            "time": nn.Linear(time_dim, out),
            "norm2": nn.GroupNorm(8, out, eps=1e-6),
            "conv2": nn.Conv2d(out, out, 3, padding=1),
            "shortcut": nn.Conv2d(channels, out, 1),
            "up_conv": nn.Conv2d(out, out, 3, padding=1),
        }
    )
    return layers.requires_grad_(False)


def up_block(layers: nn.ModuleDict, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W), (B, T) -> (B, O, 2H, 2W)``: ResNet block, then upsample x2 and convolve."""
    h = layers["conv1"](F.silu(layers["norm1"](x)))
    h = h + layers["time"](F.silu(temb))[:, :, None, None]
    h = layers["conv2"](F.silu(layers["norm2"](h)))
    h = (layers["shortcut"](x) + h) / 1.0  # diffusers: (input + hidden) / output_scale_factor
    return layers["up_conv"](F.interpolate(h, scale_factor=2.0, mode="nearest"))


def compare(layout_optimization: bool) -> str:
    """One line: forward difference and the largest input-gradient difference relative to eager's."""
    layers = build()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 128, 4, 4, generator=g, requires_grad=True)
    temb = torch.randn(2, 128, generator=g, requires_grad=True)
    weight = torch.randn(2, 64, 8, 8, generator=g)

    def fn(x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return up_block(layers, x, temb)

    out = fn(x, temb)
    want = torch.autograd.grad((out * weight).sum(), (x, temb))
    torch._dynamo.reset()
    with inductor_config.patch(layout_optimization=layout_optimization):
        compiled_out = torch.compile(fn)(x, temb)
        got = torch.autograd.grad((compiled_out * weight).sum(), (x, temb))
    gap = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(got, want))
    return (
        f"torch {torch.__version__}, layout_optimization={layout_optimization}: forward difference "
        f"{float((out - compiled_out).abs().max()):.1e}, gradient difference / largest gradient {gap:.3g}, "
        f"compiled gradient norm {float(got[0].norm()):.4g} (eager {float(want[0].norm()):.4g})"
    )


if __name__ == "__main__":
    for setting in (True, False):
        print(compare(setting), flush=True)
