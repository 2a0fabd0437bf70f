"""The option ``cuda_graphs``: what it asks of torch.compile, the weights it passes in as graph inputs,
and the reentrant per-view checkpointing it brings (same texture, same gradients).

CUDA graphs themselves need a GPU (Inductor skips them on the CPU); the timings are in
docs/performance.md. These tests check what can be checked here: the options, that the merged LoRA
weights are not taken for fixed addresses, and that the compiled path paints the same view.
"""

from __future__ import annotations

import pytest
import torch
from texkit_diffusers.compiled import inductor_options

import texkit
from texkit.cameras import Cameras
from texkit.geometry.primitives import demo_mesh
from texkit.view_loop import PaintSettings, paint_texture


def _tiny(**options):
    gen = texkit.get_registry().make_generator("tiny", steps=2, **options)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return gen


def test_inductor_options_ask_for_cuda_graphs_and_the_layout_together():
    assert inductor_options(False, False) == {}
    assert inductor_options(False, True) == {"options": {"triton.cudagraphs": True}}
    assert inductor_options(True, True) == {"options": {"force_layout_optimization": True, "triton.cudagraphs": True}}


def test_the_option_reaches_the_compiled_call_and_the_record(monkeypatch):
    from texkit_diffusers import compiled

    made = []
    monkeypatch.setattr(compiled.torch, "compile", lambda fn, **kwargs: made.append(kwargs) or fn)
    gen = _tiny(compile="on", cuda_graphs=True)
    assert made[-1] == {"dynamic": False, "options": {"triton.cudagraphs": True}}
    assert gen.reentrant_view_checkpointing and gen.describe()["cuda_graphs"] == "on"
    assert gen.denoiser.graph_weights is gen.merged_lora
    gen.set_cuda_graphs(False)
    assert made[-1] == {"dynamic": False} and not gen.reentrant_view_checkpointing and gen.denoiser.graph_weights is None
    assert _tiny().describe()["cuda_graphs"] == "off"  # the default


def _static_flags_of_merged_weights(gen, pass_weights: bool) -> set:
    """Dynamo's static-address marks on the merged LoRA weights as they enter the compiled graph."""
    gen.merged_lora.refresh()
    pointers = {layer._texkit_merged.data_ptr() for layer in gen.merged_lora.layers}
    flags: list = []

    def inspect(graph_module, example_inputs):
        flags.extend(getattr(x, "_dynamo_static_input_type", None) for x in example_inputs if isinstance(x, torch.Tensor) and x.data_ptr() in pointers)
        return graph_module.forward

    torch._dynamo.reset()
    fn = torch.compile(gen.denoiser._graph_call, backend=inspect, dynamic=False)
    x, cond = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 64, 64)
    embeds = torch.randn(2, 77, gen.unet.config.cross_attention_dim)
    with torch.no_grad():
        fn(x, torch.tensor(500), embeds, cond, 1.0, gen.merged_lora.current() if pass_weights else None)
    torch._dynamo.reset()
    assert len(flags) == len(gen.merged_lora.layers) > 0
    return set(flags)


def test_merged_weights_enter_the_graph_as_arguments_not_as_fixed_addresses():
    """Read from the layers, Dynamo marks them static (CUDA graphs would record again at every view)."""
    gen = _tiny(cuda_graphs=True)
    assert _static_flags_of_merged_weights(gen, pass_weights=False) == {"unguarded"}
    assert _static_flags_of_merged_weights(gen, pass_weights=True) == {None}


def _texture_and_grads(reentrant: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    gen = _tiny(cuda_graphs=reentrant)
    assert gen.reentrant_view_checkpointing is reentrant
    renderer = texkit.get_registry().make_renderer("torch")
    mesh = demo_mesh(16, 8)
    cameras = Cameras(
        torch.tensor([0.0, 90.0], requires_grad=True), torch.tensor([10.0, 20.0], requires_grad=True), torch.tensor([2.5, 2.5]), torch.tensor([45.0, 45.0])
    )
    prompts = [gen.encode_prompt(["a vase"], [""])] * 2
    settings = PaintSettings(texture_size=32, checkpoint_views=True)
    state = paint_texture(gen, renderer, mesh, cameras, prompts, [4, 5], settings)
    texture = state.texture().image
    (texture * torch.linspace(0, 1, texture.shape[-1])).square().mean().backward()
    grads = [p.grad.clone() for p in gen.trainable_parameters()] + [cameras.azimuth.grad.clone(), cameras.elevation.grad.clone()]
    return texture.detach(), grads


def test_reentrant_view_checkpointing_paints_the_same_texture_with_the_same_gradients():
    want_texture, want_grads = _texture_and_grads(reentrant=False)
    texture, grads = _texture_and_grads(reentrant=True)
    torch.testing.assert_close(texture, want_texture, rtol=1e-5, atol=1e-6)
    scale = max(float(g.abs().max()) for g in want_grads)
    for got, want in zip(grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * scale)
    assert float(grads[0].abs().sum()) > 0 and float(grads[-2].abs().sum()) > 0  # LoRA and camera angles get gradients


@pytest.mark.slow
def test_compiled_call_with_graph_weights_paints_the_same_view():
    """Inductor for real (CUDA graphs are skipped on the CPU): binding the weights inside the graph
    gives the eager view and the eager adapter gradients."""

    def paint(compile_mode):
        gen = _tiny(compile=compile_mode, cuda_graphs=True)
        g = torch.Generator().manual_seed(5)
        image = torch.rand(1, 3, 64, 64, generator=g)
        depth = torch.rand(1, 1, 64, 64, generator=g)
        keep = (torch.rand(1, 1, 64, 64, generator=g) > 0.5).float()
        painted = gen.paint(gen.encode_prompt(["a vase"], [""]), image, depth, keep, torch.Generator().manual_seed(9))
        loss = (painted * torch.linspace(0, 1, 64)).square().mean()
        return painted.detach(), torch.autograd.grad(loss, gen.trainable_parameters()), gen

    want, want_grads, _ = paint("off")
    got, grads, gen = paint("on")
    assert gen.denoiser.compiled, gen.denoiser.reason
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    scale = max(float(g.abs().max()) for g in want_grads)
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * scale)
