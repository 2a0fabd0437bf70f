"""Nested compile regions (`texkit_diffusers.regions`): blocks traced once per shape, the eager gradients kept."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from texkit_diffusers.compiled import inductor_options
from texkit_diffusers.regions import REGION_CLASSES, mark_nested_regions, unmark_nested_regions

import texkit


def _tiny(**options):
    return texkit.get_registry().make_generator("tiny", steps=2, **options)


def _call_inputs(seed: int = 0):
    """A training call of the tiny denoiser: latents (2, 4, 8, 8) and condition (2, 6, 64, 64) requiring grad."""
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, 8, 8, generator=g).requires_grad_(True)
    condition = torch.rand(2, 6, 64, 64, generator=g).requires_grad_(True)
    return latents, torch.tensor(981), torch.randn(2, 77, 32, generator=g), condition, 1.0


class _Recording:
    """A backend that keeps Dynamo's graph and hands it to AOTAutograd (no Inductor: seconds, not minutes)."""

    def __init__(self) -> None:
        self.graphs: list[torch.fx.GraphModule] = []

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        return torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)

    def invoke_subgraph(self) -> tuple[int, int]:
        """Calls of ``invoke_subgraph`` in the graphs (checkpointed bodies included) and distinct bodies they call."""
        graphs = [m for gm in self.graphs for m in gm.modules() if isinstance(m, torch.fx.GraphModule)]
        calls = [n for gm in graphs for n in gm.graph.nodes if n.target is torch.ops.higher_order.invoke_subgraph]
        return len(calls), len({n.args[1] for n in calls})


def _grads(fn, gen, inputs):
    out = fn(*inputs)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    params = gen.trainable_parameters()
    return out.detach(), torch.autograd.grad((out * weight).sum(), params + [inputs[0], inputs[3]])


def test_marking_swaps_the_class_of_each_block_only_and_is_undone():
    gen = _tiny(checkpointing=True)
    inputs = _call_inputs()
    want = gen.denoiser.eager(*inputs)
    counts = mark_nested_regions((gen.unet, gen.controlnet), ("Transformer2DModel", "ResnetBlock2D"))
    assert counts == {"Transformer2DModel": 6, "ResnetBlock2D": 12}  # UNet 4 + ControlNet 2, UNet 8 + ControlNet 4
    blocks = [m for m in gen.unet.modules() if isinstance(m, Transformer2DModel)]
    controlnet_block = next(m for m in gen.controlnet.modules() if isinstance(m, Transformer2DModel))
    assert all(type(b) is not Transformer2DModel and type(b).__name__ == "Transformer2DModel" for b in blocks + [controlnet_block])
    assert type(blocks[0]) is type(blocks[1])  # same structure (LoRA in both): one region
    assert type(controlnet_block) is not type(blocks[0])  # no LoRA in the ControlNet: its own region
    assert type(Transformer2DModel(num_attention_heads=1, attention_head_dim=8, in_channels=8, norm_num_groups=4)) is Transformer2DModel
    assert mark_nested_regions((gen.unet,), ("Transformer2DModel",)) == {"Transformer2DModel": 4}  # marking twice: no change
    torch.testing.assert_close(gen.denoiser.eager(*inputs), want, rtol=0, atol=0)  # eager: a plain call
    assert unmark_nested_regions((gen.unet, gen.controlnet)) == 18
    assert all(type(m) in (Transformer2DModel, ResnetBlock2D) for model in (gen.unet, gen.controlnet) for m in model.modules() if type(m).__name__ in REGION_CLASSES)


def _compare_with_eager(classes, backend, **compile_options):
    """The tiny denoising call (checkpointing on, a random adapter) eager and compiled with regions: values, gradients."""
    torch._dynamo.reset()
    gen = _tiny(checkpointing=True)
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        for p in gen.trainable_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    gen.merged_lora.refresh()
    inputs = _call_inputs()
    want, want_grads = _grads(gen.denoiser.eager, gen, inputs)
    gen.merged_lora.refresh()
    mark_nested_regions((gen.unet, gen.controlnet), classes)
    got, grads = _grads(torch.compile(gen.denoiser.eager, backend=backend, dynamic=False, **compile_options), gen, inputs)
    torch._dynamo.reset()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    scale = max(float(g.abs().max()) for g in want_grads)
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)
    assert any(float(g.abs().sum()) > 0 for g in grads[:-2])  # the adapter gets a gradient
    assert float(grads[-2].abs().sum()) > 0  # so do the latents (the condition's is 0: the ControlNet's zero convolutions)


@pytest.mark.parametrize("classes", [REGION_CLASSES, ("BasicTransformerBlock",)])
def test_regions_are_traced_once_and_give_the_eager_gradients(classes):
    """AOTAutograd (no Inductor): one graph, bodies reused, the eager values and gradients."""
    backend = _Recording()
    _compare_with_eager(classes, backend)
    assert len(backend.graphs) == 1  # no graph break
    calls, bodies = backend.invoke_subgraph()
    assert calls > bodies >= 1


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="torch 2.13, CPU: Inductor's compiled regions give the eager values but wrong gradients in the tiny UNet + "
    "ControlNet (a chain of three ResNet blocks alone is right; AOTAutograd with the decompositions and the min-cut "
    "partitioner, backend aot_eager_decomp_partition, is right too); why regions are not a generator option",
)
def test_regions_compiled_by_inductor_give_the_eager_gradients():
    """Inductor with texkit's CPU options (`inductor_options`): the eager values and gradients (not yet: see the mark)."""
    _compare_with_eager(REGION_CLASSES, "inductor", **inductor_options(False, torch.device("cpu")))
