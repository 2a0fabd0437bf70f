"""A compiled denoising call gives the eager gradients on the CPU (Inductor for real, not a test backend).

With Inductor's layout optimisation on (torch 2.13, CPU), the compiled backward of the UNet's first
up block (ResNet blocks, then a nearest-neighbour upsampling and a convolution) is zero while its
forward is right: compiled training took wrong adapter gradients. `inductor_options` turns the
layout optimisation off on the CPU; these tests hold that path to the eager gradients.
"""

from __future__ import annotations

import pytest
import torch
from texkit_diffusers.compiled import inductor_options

import texkit


def _tiny(**options):
    return texkit.get_registry().make_generator("tiny", steps=2, checkpointing=False, **options)


def test_the_layout_optimisation_is_off_on_the_cpu_only():
    assert inductor_options(False, torch.device("cpu")) == {"options": {"layout_optimization": False}}
    assert inductor_options(True, torch.device("cpu")) == {"options": {"layout_optimization": False}}
    assert inductor_options(True, torch.device("cuda")) == {"options": {"force_layout_optimization": True}}
    assert inductor_options(False, torch.device("cuda")) == {}


@pytest.mark.parametrize("cpp_wrapper", [False, True])
def test_compiled_up_block_gives_the_eager_gradients(cpp_wrapper):
    """The block where the layout optimisation zeroed the gradient, compiled with texkit's CPU options, with
    Inductor's Python wrapper and with its C++ wrapper (generator option ``cpp_wrapper``)."""
    unet = _tiny().unet
    block = unet.up_blocks[0]
    g = torch.Generator().manual_seed(0)
    channels = block.resnets[0].conv1.in_channels - block.resnets[0].conv1.out_channels
    hidden = torch.randn(2, channels, 4, 4, generator=g, requires_grad=True)
    skips = tuple(torch.randn(2, block.resnets[i].conv1.in_channels - channels, 4, 4, generator=g, requires_grad=True) for i in (1, 0))
    temb = torch.randn(2, block.resnets[0].time_emb_proj.in_features, generator=g, requires_grad=True)
    inputs = (hidden, *skips, temb)

    def call(hidden, skip_a, skip_b, temb):
        return block(hidden_states=hidden, res_hidden_states_tuple=(skip_a, skip_b), temb=temb)

    def grads(fn):
        out = fn(*inputs)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        return torch.autograd.grad((out * weight).sum(), inputs)

    want = grads(call)
    torch._dynamo.reset()
    got = grads(torch.compile(call, dynamic=False, **inductor_options(False, torch.device("cpu"), cpp_wrapper)))
    torch._dynamo.reset()
    for a, b in zip(got, want):
        assert float(a.norm()) > 0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


@pytest.mark.slow
def test_compiled_painted_view_gives_the_eager_adapter_gradients(random_adapter, paint_grads):
    """The generator's compiled denoising call (``compile = "on"``) end to end: same view, same gradients."""

    def paint(compile_mode):
        torch._dynamo.reset()
        gen = random_adapter(_tiny(compile=compile_mode))
        painted, _, grads = paint_grads(gen)
        return painted, grads, gen

    want, want_grads, _ = paint("off")
    got, grads, gen = paint("on")
    torch._dynamo.reset()
    assert gen.denoiser.compiled, gen.denoiser.reason
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    scale = max(float(g.abs().max()) for g in want_grads)
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * scale)
