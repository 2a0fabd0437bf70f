"""Merged LoRA weights (one matmul per layer) give peft's output and gradients, and never go stale."""

from __future__ import annotations

import pytest
import torch
from texkit_diffusers import compiled

import texkit


def _trained_generator(merge_lora: bool, checkpointing: bool = False, compile: str | None = None):
    """A tiny generator whose adapter has non-zero B (a merged weight differs from the base).

    ``compile`` (``"on"``/``"off"``) is passed to the generator when given; by default the tiny
    generator's own default applies.
    """
    options = {} if compile is None else {"compile": compile}
    registry = texkit.get_registry()
    gen = registry.make_generator("tiny", steps=2, merge_lora=merge_lora, checkpointing=checkpointing, **options)
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


def test_a_call_with_extra_arguments_runs_peft_forward():
    """A keyword argument the merged matmul cannot honour goes to peft's own forward: peft's mixed-batch
    ``adapter_names`` with its ``"__base__"`` entry runs those rows without the adapter."""
    gen = _trained_generator(merge_lora=True)
    gen.merged_lora.refresh()
    layer = gen.merged_lora.layers[0]
    x = torch.randn(2, layer.base_layer.in_features)
    with torch.no_grad():
        adapted = layer(x)
        assert not torch.allclose(adapted, layer.base_layer(x))
        torch.testing.assert_close(layer(x, adapter_names=["__base__", "__base__"]), layer.base_layer(x))


# -- the compiled denoising call ------------------------------------------------------------------


LossAndGrads = tuple[torch.Tensor, list[torch.Tensor]]


def _assert_same_loss_and_grads(got: LossAndGrads, want: LossAndGrads) -> None:
    """The tolerances of `test_merged_forward_matches_peft_output_and_gradients`."""
    loss, grads = got
    want_loss, want_grads = want
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-6)
    scale = max(g.abs().max() for g in want_grads)
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(scale))


@pytest.fixture
def counting_compile(monkeypatch):
    """Make `DenoiserCall` compile with a fast counting backend and ``fullgraph=True``; yield the graphs.

    The backend runs the traced FX graph as it is (no inductor: seconds on the CPU); every graph
    dynamo hands it is appended to the yielded list, so its length counts (re)compilations.
    ``fullgraph=True`` turns any graph break into an error (which `DenoiserCall` answers by falling
    back to eager, so the tests also check ``gen.denoiser.compiled``). Dynamo's caches are reset
    before and after.
    """
    graphs: list[torch.fx.GraphModule] = []
    real_compile = torch.compile

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    def compile_counting(fn, **_):
        return real_compile(fn, backend=counting_backend, fullgraph=True, dynamic=False)

    monkeypatch.setattr(compiled.torch, "compile", compile_counting)
    torch._dynamo.reset()
    try:
        yield graphs
    finally:
        torch._dynamo.reset()


def _graph_inputs(gm: torch.fx.GraphModule) -> list[str]:
    return [node.name for node in gm.graph.nodes if node.op == "placeholder"]


@pytest.mark.parametrize("checkpointing", [False, True], ids=["no-checkpointing", "unet-checkpointing"])
def test_compiled_denoiser_traces_the_merged_forward_in_one_graph(counting_compile, checkpointing):
    """The compiled denoising call traces UNet + ControlNet with merged LoRA layers as ONE graph.

    No graph break (``fullgraph=True`` would raise and the call would fall back to eager), with and
    without gradient checkpointing in the UNet: the in-place-version check of the merged forward is
    not traced. The merged weights are graph inputs (peft's ``lora_A``/``lora_B`` are not), both
    denoising steps of a painted view reuse the graph, and loss and gradients of a painted view
    equal those of the eager peft forward.
    """
    graphs = counting_compile
    want = _paint_loss_and_grads(_trained_generator(merge_lora=False, checkpointing=checkpointing, compile="off"))
    gen = _trained_generator(merge_lora=True, checkpointing=checkpointing, compile="on")
    assert gen.denoiser.compiled
    got = _paint_loss_and_grads(gen)
    assert gen.denoiser.compiled, gen.denoiser.reason  # no fallback to eager: the graph did not break
    assert len(graphs) == 1  # one graph for the whole call, shared by both steps
    inputs = _graph_inputs(graphs[0])
    assert sum("texkit_merged" in name for name in inputs) == len(gen.merged_lora.layers)
    assert not any("lora_a" in name.lower() or "lora_b" in name.lower() for name in inputs)
    _assert_same_loss_and_grads(got, want)
    assert any(g.abs().sum() > 0 for g in got[1][:-1])  # the adapter gets a gradient through the graph


def test_compiled_denoiser_does_not_recompile_when_the_adapter_changes(counting_compile):
    """An in-place change of the LoRA matrices (an optimiser step) does not recompile the denoising call.

    The next painted view refreshes the merge (new merged tensors, same shapes): the compiled graph
    is reused (the backend is called no more), and the view's loss and gradients equal those of an
    eager peft generator whose adapter changed the same way, so the graph does not hold the old
    adapter as a constant.
    """
    graphs = counting_compile
    reference = _trained_generator(merge_lora=False, compile="off")
    gen = _trained_generator(merge_lora=True, compile="on")
    _paint_loss_and_grads(gen)
    assert gen.denoiser.compiled, gen.denoiser.reason
    compilations = len(graphs)
    assert compilations == 1
    with torch.no_grad():
        for model in (reference, gen):
            for p in model.trainable_parameters():
                p.add_(0.01)  # an optimiser step, in place
    got = _paint_loss_and_grads(gen)
    assert gen.denoiser.compiled, gen.denoiser.reason
    assert len(graphs) == compilations
    _assert_same_loss_and_grads(got, _paint_loss_and_grads(reference))


def test_compiled_denoiser_never_uses_a_stale_merge(counting_compile, paint_view):
    """The compiled call does not use a merge whose ``B`` changed in place since `MergedLoRA.refresh`.

    The compiled graph cannot check version counters itself; `DenoiserCall` runs
    `MergedLoRA.drop_stale` before each compiled call, so after an in-place change of ``lora_B``
    without a refresh the compiled call gives peft's output with the new ``B`` (the eager call with
    the merges cleared), not the output with the old merge, and it is still compiled. Only half the
    layers change, so the call mixes merged layers with peft's forward in the stale ones.
    """
    gen = _trained_generator(merge_lora=True, compile="on")
    calls: list[tuple] = []
    denoiser = gen.denoiser

    def recording(*args):
        calls.append(args)
        return denoiser(*args)

    gen.denoiser = recording  # the sampler calls gen.denoiser: record the inputs of a real step
    try:
        paint_view(gen)
    finally:
        gen.denoiser = denoiser
    assert calls and denoiser.compiled, denoiser.reason
    inputs = calls[-1]
    with torch.no_grad():
        gen.merged_lora.refresh()
        before = denoiser(*inputs)
        for layer in gen.merged_lora.layers[::2]:  # half the layers: the others keep a current merge
            layer.lora_B["texkit"].weight.add_(0.05)  # an optimiser step changes B in place, no refresh
        after = denoiser(*inputs)
        assert denoiser.compiled, denoiser.reason  # the compiled call ran, not the eager fallback
        gen.merged_lora.clear()
        expected = denoiser.eager(*inputs)  # peft's forward with the new B
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-6)


# -- lora_alpha != rank ----------------------------------------------------------------------------


def _adapted(lora_rank: int, lora_alpha: float | None, merge_lora: bool = True):
    """A tiny generator with a non-zero adapter (seeded B) of the given rank and alpha."""
    registry = texkit.get_registry()
    gen = registry.make_generator("tiny", steps=2, merge_lora=merge_lora, lora_rank=lora_rank, lora_alpha=lora_alpha)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return gen


@pytest.mark.parametrize("rank, alpha", [(4, 8.0), (4, 1.0), (2, 3.0)])
def test_merged_forward_at_alpha_other_than_rank_equals_peft(rank, alpha):
    """Each merged layer computes W x + (alpha / rank) B A x, what peft's own forward computes."""
    gen = _adapted(rank, alpha)
    gen.merged_lora.refresh()
    with torch.no_grad():
        for layer in gen.merged_lora.layers:
            x_in = torch.randn(3, layer.base_layer.in_features, generator=torch.Generator().manual_seed(2))
            merged = layer(x_in)
            peft = type(layer).forward(layer, x_in)  # the class forward: peft's base(x) + s B(A(x))
            torch.testing.assert_close(merged, peft, rtol=1e-5, atol=1e-6)
            down, up = layer.lora_A["texkit"].weight, layer.lora_B["texkit"].weight
            by_hand = layer.base_layer(x_in) + (alpha / rank) * (x_in @ down.T @ up.T)
            torch.testing.assert_close(merged, by_hand, rtol=1e-5, atol=1e-6)


def test_alpha_scales_the_adapter_in_the_painted_image():
    """A painted view at lora_alpha = 2 x rank differs from one at alpha = rank (same weights), and the merged
    and peft generators agree at that alpha."""
    a2_merged, _ = _paint_loss_and_grads(_adapted(4, 8.0))
    a2_peft, _ = _paint_loss_and_grads(_adapted(4, 8.0, merge_lora=False))
    a1_merged, _ = _paint_loss_and_grads(_adapted(4, None))
    torch.testing.assert_close(a2_merged, a2_peft, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a2_merged, a1_merged, rtol=1e-4, atol=1e-7)


def test_a_merge_made_without_grad_is_not_used_with_grad():
    """Weights merged under no_grad carry no graph to A and B: a forward with gradients on runs peft's
    forward instead, so the adapter still gets its gradient (equal to peft's)."""
    gen = _trained_generator(merge_lora=True)
    layer = gen.merged_lora.layers[0]
    with torch.no_grad():
        gen.merged_lora.refresh()
    x = torch.randn(2, layer.base_layer.in_features, generator=torch.Generator().manual_seed(1))
    down, up = layer.lora_A["texkit"].weight, layer.lora_B["texkit"].weight
    got = torch.autograd.grad(layer(x).square().sum(), [down, up])
    gen.merged_lora.clear()
    want = torch.autograd.grad(layer(x).square().sum(), [down, up])
    assert all(float(g.abs().sum()) > 0 for g in want)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_clear_returns_every_layer_to_peft_forward():
    """After `clear` a layer computes peft's W x + s B (A x) again, bit for bit (the merged (W + s B A) x
    rounds differently, so the two are told apart exactly)."""
    gen = _trained_generator(merge_lora=True)
    x = torch.randn(4, gen.merged_lora.layers[0].base_layer.in_features, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        gen.merged_lora.refresh()
        merged = [layer(x) for layer in gen.merged_lora.layers if layer.base_layer.in_features == x.shape[1]]
        peft = [type(layer).forward(layer, x) for layer in gen.merged_lora.layers if layer.base_layer.in_features == x.shape[1]]
        assert any(not torch.equal(m, p) for m, p in zip(merged, peft))  # rounding tells them apart
        gen.merged_lora.clear()
        cleared = [layer(x) for layer in gen.merged_lora.layers if layer.base_layer.in_features == x.shape[1]]
    assert len(cleared) >= 2 and all(torch.equal(c, p) for c, p in zip(cleared, peft))
