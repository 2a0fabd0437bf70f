"""Merged LoRA weights (one matmul per layer) give peft's output and gradients, and never go stale."""

from __future__ import annotations

import torch

import texkit


def _trained_generator(merge_lora: bool, checkpointing: bool = False):
    """A tiny generator whose adapter has non-zero B (a merged weight differs from the base)."""
    gen = texkit.get_registry().make_generator("tiny", steps=2, merge_lora=merge_lora, checkpointing=checkpointing)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return gen


def _paint_loss_and_grads(gen) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, 64, 64, generator=g, requires_grad=True)
    depth = torch.rand(1, 1, 64, 64, generator=g)
    keep = (torch.rand(1, 1, 64, 64, generator=g) > 0.5).float()
    painted = gen.paint(gen.encode_prompt(["a vase"], [""]), image, depth, keep, torch.Generator().manual_seed(9))
    loss = (painted * torch.linspace(0, 1, 64)).square().mean()
    params = gen.trainable_parameters()
    grads = torch.autograd.grad(loss, params + [image])
    return loss.detach(), list(grads)


def test_merged_forward_matches_peft_output_and_gradients():
    peft_loss, peft_grads = _paint_loss_and_grads(_trained_generator(merge_lora=False))
    merged = _trained_generator(merge_lora=True)
    assert merged.describe()["lora_forward"].startswith("merged")
    loss, grads = _paint_loss_and_grads(merged)
    torch.testing.assert_close(loss, peft_loss, rtol=1e-5, atol=1e-6)
    scale = max(g.abs().max() for g in peft_grads)
    for got, want in zip(grads, peft_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(scale))
    assert any(g.abs().sum() > 0 for g in grads[:-1])  # the adapter does get a gradient


def test_merged_forward_under_unet_checkpointing_matches_peft():
    """Blocks recomputed in the backward pass see the merged weights their forward pass saw."""
    _, want = _paint_loss_and_grads(_trained_generator(merge_lora=False, checkpointing=True))
    _, got = _paint_loss_and_grads(_trained_generator(merge_lora=True, checkpointing=True))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_stale_merge_is_never_used():
    gen = _trained_generator(merge_lora=True)
    layer = gen.merged_lora.layers[0]
    gen.merged_lora.refresh()
    x = torch.randn(2, layer.base_layer.in_features)
    with torch.no_grad():
        before = layer(x)
        layer.lora_B["texkit"].weight.add_(1.0)  # an optimiser step changes B in place
        after = layer(x)  # peft's forward with the new B, not the old merge
        gen.merged_lora.clear()
        expected = layer(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)


def test_a_disabled_adapter_runs_the_base_layer():
    gen = _trained_generator(merge_lora=True)
    gen.merged_lora.refresh()
    layer = gen.merged_lora.layers[0]
    x = torch.randn(2, layer.base_layer.in_features)
    gen.set_lora_enabled(False)
    try:
        with torch.no_grad():
            torch.testing.assert_close(layer(x), layer.base_layer(x))
    finally:
        gen.set_lora_enabled(True)
