"""The generator option ``cpp_wrapper``: compiled kernels launched from C++ (Inductor's ``cpp_wrapper``).

What the option changes is how the compiled graph is launched, never what it computes: the
compiled call with a C++ wrapper gives the eager values and gradients (here; the tiny UNet's up
block in test_compiled_gradients.py), and the option reaches ``torch.compile`` (and the name of a
precompiled artifact) on every device.
"""

from __future__ import annotations

import pytest
import torch
from diffusers_standins import linear_controlnet as _controlnet
from texkit_diffusers import compiled
from texkit_diffusers.compiled import inductor_options
from texkit_diffusers.generator import CPP_WRAPPER_WITH_CHECKPOINTING
from torch.utils.checkpoint import checkpoint

import texkit


def test_cpp_wrapper_is_an_inductor_option_on_every_device():
    assert inductor_options(False, torch.device("cpu"), cpp_wrapper=True) == {"options": {"layout_optimization": False, "cpp_wrapper": True}}
    assert inductor_options(False, torch.device("cuda"), cpp_wrapper=True) == {"options": {"cpp_wrapper": True}}
    assert inductor_options(True, torch.device("cuda"), cpp_wrapper=True) == {"options": {"force_layout_optimization": True, "cpp_wrapper": True}}
    assert inductor_options(False, torch.device("cuda"), cpp_wrapper=False) == {}


def test_the_option_reaches_torch_compile_and_a_change_starts_a_new_call(compile_kwargs):
    made = compile_kwargs
    gen = texkit.get_registry().make_generator("tiny", compile="on", cpp_wrapper=True)
    assert made == [{"dynamic": False, "options": {"layout_optimization": False, "cpp_wrapper": True}}]
    assert gen.denoiser.cpp_wrapper and gen.describe()["cpp_wrapper"] == "on"
    call = gen.denoiser
    gen.set_cpp_wrapper(True)  # no change: the denoising call (and its compiled shapes) is kept
    assert gen.denoiser is call and len(made) == 1
    gen.set_cpp_wrapper(False)
    assert gen.denoiser is not call and gen.denoiser.compile_mode == "on"
    assert made[-1] == {"dynamic": False, "options": {"layout_optimization": False}}
    assert gen.describe()["cpp_wrapper"] == "off"
    cuda_call = compiled.DenoiserCall(gen.unet, gen.controlnet, "on", "cuda", cpp_wrapper=True)
    assert cuda_call.compiled and made[-1] == {"dynamic": False, "options": {"cpp_wrapper": True}}


def test_with_checkpointing_on_the_cpp_wrapper_waits_for_it_to_be_off(compile_kwargs, caplog):
    """torch's C++ wrapper fails on checkpointed attention (the test below): not tried, said once, used once checkpointing is off."""
    made = compile_kwargs
    with caplog.at_level("WARNING", logger="texkit.diffusers"):
        gen = texkit.get_registry().make_generator("tiny", compile="on", cpp_wrapper=True, checkpointing=True)
    assert made == [{"dynamic": False, "options": {"layout_optimization": False}}] and not gen.denoiser.cpp_wrapper
    assert gen.describe()["cpp_wrapper"] == f"off: {CPP_WRAPPER_WITH_CHECKPOINTING}"
    assert [r.getMessage() for r in caplog.records] == [f"texkit-diffusers: cpp_wrapper not used: {CPP_WRAPPER_WITH_CHECKPOINTING}"]
    call = gen.denoiser
    gen.set_checkpointing(True)  # no change: the denoising call (and its compiled shapes) is kept
    assert gen.denoiser is call
    gen.set_checkpointing(False)
    assert gen.denoiser.cpp_wrapper and made[-1] == {"dynamic": False, "options": {"layout_optimization": False, "cpp_wrapper": True}}
    assert gen.describe()["cpp_wrapper"] == "on"
    gen.set_checkpointing(True)
    assert not gen.denoiser.cpp_wrapper and made[-1] == {"dynamic": False, "options": {"layout_optimization": False}}
    plain = texkit.get_registry().make_generator("tiny", compile="on", checkpointing=True)
    plain.set_checkpointing(False)  # no C++ wrapper asked for: it stays off
    assert not plain.denoiser.cpp_wrapper and plain.describe()["cpp_wrapper"] == "off"
    gen.set_checkpointing(False)
    gen.denoiser.cpp_wrapper = False  # as after a failed C++ wrapper (`DenoiserCall`'s fallback)
    assert gen.describe()["cpp_wrapper"] == "off (the C++ wrapper failed: see compile)"


def test_the_option_is_off_by_default_and_checked():
    assert texkit.get_registry().make_generator("tiny").cpp_wrapper is False
    with pytest.raises(texkit.ConfigError, match="cpp_wrapper"):
        texkit.get_registry().make_generator("tiny", cpp_wrapper="sometimes")


def _attending_unet(checkpointing: bool):
    """A stand-in UNet with one attention whose result stays inside the (optionally checkpointed) block,
    so that AOTAutograd recomputes the attention, a random op to it, in the backward."""

    def block(a: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(a, a, a).tanh() * a

    def unet(x, t, encoder_hidden_states, down_block_additional_residuals, mid_block_additional_residual, return_dict):
        heads = (x + down_block_additional_residuals[0] + mid_block_additional_residual).flatten(2).unsqueeze(1)  # (B, 1, 4, h*w)
        out = checkpoint(block, heads, use_reentrant=False) if checkpointing else block(heads)
        return (out.view_as(x),)

    return unet


@pytest.mark.parametrize("checkpointing", [False, True])
def test_a_call_compiled_with_a_cpp_wrapper_gives_the_eager_values_and_gradients(checkpointing):
    """Real Inductor (CPU). With checkpointing, AOTAutograd wraps the attention it recomputes (SDPA counts as
    random) in random-state operators that torch 2.13's C++ wrapper cannot launch: the call is compiled again
    with the Python wrapper, not run eagerly, and the reason says so."""
    unet = _attending_unet(checkpointing)
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 4, 8, 8, generator=g, requires_grad=True)
    args = (torch.tensor(3.0), torch.randn(2, 5, 6, generator=g), torch.randn(2, 4, 8, 8, generator=g), 0.5)
    weight = torch.randn(2, 4, 8, 8, generator=g)

    def values_and_grads(call):
        out = call(latents, *args)
        return out.detach(), torch.autograd.grad((out * weight).sum(), latents)[0]

    want, want_grad = values_and_grads(compiled.DenoiserCall(unet, _controlnet, "off").eager)
    torch._dynamo.reset()
    call = compiled.DenoiserCall(unet, _controlnet, "on", "cpu", cpp_wrapper=True)
    got, got_grad = values_and_grads(call)
    torch._dynamo.reset()
    assert call.compiled, call.reason  # never eager: a failed C++ wrapper compiles with the Python one
    if checkpointing:
        assert not call.cpp_wrapper and "cpp_wrapper failed, Python wrapper used (InductorError" in call.reason, call.reason
    else:
        assert call.cpp_wrapper and call.reason == compiled.COMPILED_REASON, call.reason
    assert float(want_grad.abs().max()) > 0
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)


def test_a_failed_cpp_wrapper_compiles_again_with_the_python_wrapper(monkeypatch, caplog):
    """No Inductor: a stand-in ``torch.compile`` whose C++-wrapped function raises at its first call, as torch's does."""
    made = []

    def compile_failing_with_cpp(fn, **kwargs):
        made.append(kwargs)
        if kwargs.get("options", {}).get("cpp_wrapper"):

            def failing(*args):
                raise RuntimeError(f"{first_line}\nsecond line")

            return failing
        return fn

    first_line = "C++ wrapper cannot launch this: " + "x" * 300  # the reason keeps its first 200 characters
    monkeypatch.setattr(compiled.torch, "compile", compile_failing_with_cpp)
    unet = _attending_unet(checkpointing=False)
    g = torch.Generator().manual_seed(1)
    args = (torch.randn(2, 4, 8, 8, generator=g), torch.tensor(3.0), torch.randn(2, 5, 6, generator=g), torch.randn(2, 4, 8, 8, generator=g), 0.5)
    call = compiled.DenoiserCall(unet, _controlnet, "on", "cuda", cpp_wrapper=True)
    with caplog.at_level("WARNING", logger="texkit.diffusers"):
        out = call(*args)
    assert made == [{"dynamic": False, "options": {"cpp_wrapper": True}}, {"dynamic": False}]
    assert call.compiled and not call.cpp_wrapper
    assert call.reason == f"{compiled.COMPILED_REASON}; cpp_wrapper failed, Python wrapper used (RuntimeError: {first_line[:200]})"
    assert [r.getMessage() for r in caplog.records] == [f"texkit-diffusers: cpp_wrapper failed, compiling with the Python wrapper (RuntimeError: {first_line[:200]})"]
    torch.testing.assert_close(out, call.eager(*args))
    assert len(call.first_calls) == 1  # the call that ran is noted once
    out_again = call(*args)  # later calls run the Python-wrapped function and compile nothing more
    assert len(made) == 2 and torch.equal(out_again, out)


def test_switching_checkpointing_starts_a_new_denoising_call_whose_first_call_is_noted(compile_kwargs):
    """The compiled graph differs with checkpointing: a switch is a compilation the run record reports
    (H100 call 14 had Dynamo recompile unseen inside a row already counted as warm)."""
    gen = texkit.get_registry().make_generator("tiny", compile="on", checkpointing=True, steps=2)
    prompt = gen.encode_prompt(["a chair"], [""])
    view = torch.rand(1, 3, 64, 64)
    gen.paint(prompt, view, view[:, :1], torch.zeros(1, 1, 64, 64), torch.Generator().manual_seed(0))
    call = gen.denoiser
    assert len(call.first_calls) == 1
    gen.set_checkpointing(True)  # no change: the call and its compiled shapes are kept
    assert gen.denoiser is call
    gen.set_checkpointing(False)
    assert gen.denoiser is not call and gen.denoiser.first_calls == [] and len(compile_kwargs) == 2
    gen.paint(prompt, view, view[:, :1], torch.zeros(1, 1, 64, 64), torch.Generator().manual_seed(0))
    assert len(gen.denoiser.first_calls) == 1
