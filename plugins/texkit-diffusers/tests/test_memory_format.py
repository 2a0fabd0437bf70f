"""Channels-last convolution weights change the layout, not the painted view or the adapter's gradients."""

from __future__ import annotations

import pytest
import torch
from texkit_diffusers.layout import apply_memory_format, resolve_memory_format

import texkit


def _paint_loss_and_grads(memory_format: str, checkpointing: bool, random_adapter, paint_grads) -> tuple[torch.Tensor, list[torch.Tensor], object]:
    gen = random_adapter(texkit.get_registry().make_generator("tiny", steps=2, memory_format=memory_format, checkpointing=checkpointing))
    _, loss, grads = paint_grads(gen)
    return loss, grads, gen


@pytest.mark.parametrize("checkpointing", [False, True])
def test_channels_last_paints_the_same_view_with_the_same_gradients(checkpointing, random_adapter, paint_grads):
    want_loss, want_grads, plain = _paint_loss_and_grads("contiguous", checkpointing, random_adapter, paint_grads)
    loss, grads, gen = _paint_loss_and_grads("channels_last", checkpointing, random_adapter, paint_grads)
    conv = next(m for m in gen.unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    plain_conv = next(m for m in plain.unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert plain_conv.weight.is_contiguous()
    assert gen.describe()["memory_format"] == "channels_last" and plain.describe()["memory_format"] == "contiguous"
    assert texkit.get_registry().make_generator("tiny").describe()["memory_format"] == "contiguous"  # the default
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-6)
    scale = max(float(g.abs().max()) for g in want_grads)
    for got, want in zip(grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * scale)
    assert any(float(g.abs().sum()) > 0 for g in grads[:-1])


def test_auto_is_channels_last_on_cuda_and_contiguous_on_the_cpu():
    assert resolve_memory_format("auto", torch.device("cuda")) == "channels_last"
    assert resolve_memory_format("auto", torch.device("cpu")) == "contiguous"
    assert resolve_memory_format("contiguous", torch.device("cuda")) == "contiguous"
    with pytest.raises(ValueError, match="is not one of auto, channels_last, contiguous"):
        resolve_memory_format("nhwc", torch.device("cpu"))


def test_only_four_dimensional_weights_change_layout():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.GroupNorm(2, 8), torch.nn.Flatten(), torch.nn.LazyLinear(4))
    x = torch.randn(2, 3, 6, 6)
    want = model(x)
    line = apply_memory_format([model], "channels_last", torch.device("cpu"))
    assert line == "channels_last"  # cuDNN's search is a CUDA matter: not mentioned, not switched
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last) and not model[0].weight.is_contiguous()
    assert model[3].weight.is_contiguous() and model[1].weight.is_contiguous()
    torch.testing.assert_close(model(x), want)


def test_an_unknown_memory_format_is_a_config_error_in_one_line():
    with pytest.raises(texkit.ConfigError, match="memory_format"):
        texkit.get_registry().make_generator("tiny", memory_format="nhwc")


def test_channels_last_compiles_with_inductors_channels_last_layout(compile_kwargs):
    """Inductor would keep the UNet in NCHW (a convolution with out <= in / 2): channels-last forces its layout."""
    from texkit_diffusers import compiled

    made = compile_kwargs
    gen = texkit.get_registry().make_generator("tiny", compile="on")
    cpu = {"dynamic": False, "options": {"layout_optimization": False}}  # on the CPU: never (wrong gradients otherwise)
    assert made == [cpu]
    gen.set_memory_format("channels_last")
    assert made[-1] == cpu
    assert gen.denoiser.channels_last and gen.denoiser.compile_mode == "on"
    cuda_call = compiled.DenoiserCall(gen.unet, gen.controlnet, "on", "cuda", channels_last=True)
    assert cuda_call.compiled and made[-1] == {"dynamic": False, "options": {"force_layout_optimization": True}}
    compiled.DenoiserCall(gen.unet, gen.controlnet, "on", "cuda", channels_last=False)
    assert made[-1] == {"dynamic": False}  # contiguous on CUDA: Inductor's own choice
    conv = next(m for m in gen.vae.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    count = len(made)
    gen.set_memory_format("channels_last")  # no change: the denoising call (and its compiled shapes) is kept
    assert len(made) == count
    gen.set_memory_format("contiguous")
    assert made[-1] == cpu and not gen.denoiser.channels_last and conv.weight.is_contiguous()


def test_cudnn_search_is_on_with_channels_last_on_cuda_and_restored_after(monkeypatch):
    """No GPU needed: the layout change and the flag are what is checked (a CPU module, a CUDA device name)."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    model = torch.nn.Conv2d(3, 4, 3)
    assert apply_memory_format([model], "channels_last", torch.device("cuda")) == "channels_last (cuDNN algorithm search on)"
    assert torch.backends.cudnn.benchmark is True
    assert apply_memory_format([model], "auto", torch.device("cuda")).startswith("channels_last")
    assert apply_memory_format([model], "contiguous", torch.device("cuda")) == "contiguous"
    assert torch.backends.cudnn.benchmark is False and model.weight.is_contiguous()


@pytest.mark.slow
def test_channels_last_compiled_call_really_compiles_and_matches_eager():
    """The Inductor option is real (a misspelt one would fall back to eager): compiled output = eager output."""
    from texkit_diffusers.compiled import DenoiserCall

    torch.manual_seed(0)
    conv_in, conv_out = torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 3, padding=1)  # out <= in / 2
    apply_memory_format([conv_in, conv_out], "channels_last", torch.device("cpu"))

    def controlnet(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
        return [conv_in(x + controlnet_cond) * conditioning_scale], encoder_hidden_states.mean() + t

    def unet(x, t, encoder_hidden_states, down_block_additional_residuals, mid_block_additional_residual, return_dict):
        return (conv_out(torch.nn.functional.silu(down_block_additional_residuals[0])) + mid_block_additional_residual,)

    args = (torch.randn(2, 4, 8, 8), torch.tensor(3.0), torch.randn(2, 5, 6), torch.randn(2, 4, 8, 8), 0.5)
    call = DenoiserCall(unet, controlnet, "on", "cuda", channels_last=True)  # CUDA's options, run on CPU tensors
    with torch.no_grad():
        got = call(*args)
    assert call.compiled and call.reason == "torch.compile (static shapes)", call.reason
    torch.testing.assert_close(got, call.eager(*args), rtol=1e-4, atol=1e-5)
