"""CPU benchmarks of the tiny diffusion generator (the demo's and the tests' default).

Run with ``make bench`` or
``.venv/bin/python -m pytest benchmarks/test_generator_benchmark.py --benchmark-only``.
The workload is one painted view at the tiny generator's defaults: 64 px, 4 DDIM steps, eta 1,
classifier-free guidance (batch 2 per UNet/ControlNet call), a third of the view kept (so the
keep-region blending and the VAE encoding of the render run), LoRA rank 4. The demo paints 6 such
views per training step, so one forward + backward must stay well under 0.5 s on 2 cores.
"""

from __future__ import annotations

import pytest
import torch

import texkit


@pytest.fixture(scope="module", params=[False, True], ids=["no-checkpointing", "checkpointing"])
def view(request):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    gen = texkit.get_registry().make_generator("tiny", checkpointing=request.param)
    prompt = gen.encode_prompt(["a wooden vase, front view"], ["blurry"])
    g = torch.Generator().manual_seed(0)
    image, depth = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 1, 64, 64, generator=g)
    keep = torch.zeros(1, 1, 64, 64)
    keep[..., :21] = 1.0
    return gen, prompt, image, depth, keep


def test_tiny_paint_forward(benchmark, view):
    gen, prompt, image, depth, keep = view

    def paint():
        with torch.no_grad():
            return gen.paint(prompt, image, depth, keep, torch.Generator().manual_seed(0))

    out = benchmark(paint)
    assert out.shape == (1, 3, 64, 64)


def test_tiny_paint_forward_backward(benchmark, view):
    gen, prompt, image, depth, keep = view

    def step():
        for p in gen.trainable_parameters():
            p.grad = None
        out = gen.paint(prompt, image, depth, keep, torch.Generator().manual_seed(0))
        out.mean().backward()
        return gen.trainable_parameters()[1].grad  # a lora_B matrix: non-zero from the first step

    grad = benchmark(step)
    assert grad is not None and grad.abs().sum() > 0
