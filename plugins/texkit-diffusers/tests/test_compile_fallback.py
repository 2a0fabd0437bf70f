"""When the denoising call compiles (``auto``/``on``/``off``), and its fallback to eager when compilation fails.

The CPU cannot run CUDA, so the ``auto`` tests on CUDA build `DenoiserCall` with ``device="cuda"``
around stand-in models on the CPU (nothing touches a GPU) and a recording stand-in for
``torch.compile``.
"""

from __future__ import annotations

import pytest
import torch
from diffusers_standins import linear_controlnet as _controlnet
from diffusers_standins import linear_unet as _unet
from diffusers_standins import standin_inputs as _inputs
from texkit_diffusers import compiled

import texkit


def test_compile_failure_at_call_time_falls_back_to_eager_with_the_same_result(monkeypatch, paint_view):
    registry = texkit.get_registry()
    eager = registry.make_generator("tiny", steps=2, compile="off")
    expected = paint_view(eager)

    def broken_compile(fn, **_):
        def run(*args, **kwargs):
            raise RuntimeError("inductor exploded: no C++ compiler")

        return run

    monkeypatch.setattr(compiled.torch, "compile", broken_compile)
    gen = registry.make_generator("tiny", steps=2, compile="on")
    assert gen.denoiser.compiled
    painted = paint_view(gen)  # the run continues
    torch.testing.assert_close(painted, expected)
    assert not gen.denoiser.compiled
    assert "compile failed, running eager" in gen.denoiser.reason and "inductor exploded" in gen.denoiser.reason
    assert "inductor exploded" in gen.describe()["compile"]


def test_compile_unavailable_at_build_time_falls_back(monkeypatch, paint_view):
    def unavailable(fn, **_):
        raise RuntimeError("torch.compile is not supported on this platform")

    monkeypatch.setattr(compiled.torch, "compile", unavailable)
    gen = texkit.get_registry().make_generator("tiny", steps=1, compile="on")
    assert not gen.denoiser.compiled and "not supported" in gen.denoiser.reason
    assert paint_view(gen).shape == (1, 3, 64, 64)


def test_auto_compiles_on_cuda_only():
    assert compiled.resolve_compile_mode("auto", torch.device("cpu"))[0] is False
    assert compiled.resolve_compile_mode("auto", torch.device("cuda")) == (True, compiled.AUTO_WAITING_REASON)
    assert compiled.resolve_compile_mode("on", torch.device("cpu")) == (True, "torch.compile (static shapes)")
    assert compiled.resolve_compile_mode("off", torch.device("cuda"))[0] is False


@pytest.mark.parametrize(
    ("mode", "device", "grad", "starts"),
    [
        ("auto", "cuda", True, True),
        ("auto", "cuda", False, False),
        ("auto", "cuda:1", True, True),
        ("auto", "cpu", True, False),
        ("auto", "cpu", False, False),
        ("on", "cpu", False, True),
        ("on", "cuda", False, True),
        ("off", "cuda", True, False),
        ("off", "cpu", True, False),
    ],
)
def test_a_call_starts_compiling_on_cuda_when_auto_sees_gradients(mode, device, grad, starts):
    assert compiled.starts_compiling(mode, torch.device(device), grad) is starts


def test_an_unknown_compile_mode_is_an_error():
    with pytest.raises(ValueError, match="'sometimes' is not one of auto, on, off"):
        compiled.DenoiserCall(_unet, _controlnet, "sometimes")


# -- DenoiserCall around stand-in models (CPU tensors; the device argument only steers the decision)


class RecordingCompile:
    """Stands in for ``torch.compile``: records each wrapper it creates and the grad mode of each call through one."""

    def __init__(self) -> None:
        self.created: list[dict] = []
        self.calls: list[bool] = []

    def __call__(self, fn, **kwargs):
        self.created.append(kwargs)

        def run(*args):
            self.calls.append(torch.is_grad_enabled())
            return fn(*args)

        return run


@pytest.fixture
def recording_compile(monkeypatch) -> RecordingCompile:
    fake = RecordingCompile()
    monkeypatch.setattr(compiled.torch, "compile", fake)
    return fake


def test_auto_on_cuda_stays_eager_until_the_first_training_call_then_compiles(recording_compile):
    """No-grad calls stay eager; the first call with grad mode on compiles, and every later call is compiled."""
    args = _inputs()
    expected = compiled.DenoiserCall(_unet, _controlnet, "off").eager(*args)
    denoiser = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cuda")
    assert not denoiser.compiled and denoiser.waiting
    assert denoiser.reason == "compile auto: eager until the first training call (compiles then, on CUDA)"
    with torch.no_grad():
        for _ in range(3):  # a generation: eager, nothing compiled yet
            torch.testing.assert_close(denoiser(*args), expected)
    assert recording_compile.created == [] and recording_compile.calls == []
    assert not denoiser.compiled and denoiser.waiting and denoiser.compile_seconds == 0
    assert "compiling" not in denoiser.reason

    torch.testing.assert_close(denoiser(*args), expected)  # grad mode on (no input requires grad): a training call
    assert recording_compile.created == [{"dynamic": False}]
    assert recording_compile.calls == [True]
    assert denoiser.compiled and not denoiser.waiting
    assert denoiser.reason == "torch.compile (static shapes)"
    assert denoiser.compile_seconds > 0

    denoiser(*args)
    assert recording_compile.calls == [True, True]
    assert len(recording_compile.created) == 1  # created once


def test_auto_compiles_a_no_grad_shape_only_once_it_repeats(recording_compile):
    """After training started, a one-off generation stays eager; a no-grad shape called every step compiles."""
    args = _inputs()
    expected = compiled.DenoiserCall(_unet, _controlnet, "off").eager(*args)
    denoiser = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cuda")
    denoiser(*args)  # a training call: compiling starts
    assert recording_compile.calls == [True]
    with torch.no_grad():
        for _ in range(compiled.AUTO_NO_GRAD_EAGER_CALLS):  # e.g. the 'after' generation at the end of a run
            torch.testing.assert_close(denoiser(*args), expected)
        assert recording_compile.calls == [True]
        denoiser(*args)  # the shape keeps coming back (denoising steps outside the truncation window)
        denoiser(*args)
    assert recording_compile.calls == [True, False, False]
    denoiser(*args)
    assert recording_compile.calls == [True, False, False, True]


def test_auto_on_the_cpu_never_compiles_even_when_trained(recording_compile):
    denoiser = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cpu")
    assert not denoiser.compiled and not denoiser.waiting and "CUDA only" in denoiser.reason
    x, t, embeds, condition, scale = _inputs()
    out = denoiser(x.requires_grad_(), t, embeds, condition, scale)
    out.sum().backward()
    with torch.no_grad():
        denoiser(x, t, embeds, condition, scale)
    assert recording_compile.created == [] and recording_compile.calls == []
    assert not denoiser.compiled and "CUDA only" in denoiser.reason and denoiser.compile_seconds == 0


def test_auto_tiny_generator_on_the_cpu_trains_eagerly(recording_compile, paint_view):
    """The generator's default (``auto``) on the CPU: neither a generation nor a training pass compiles."""
    gen = texkit.get_registry().make_generator("tiny", steps=1)
    assert gen.denoiser.compile_mode == "auto"
    paint_view(gen)
    g = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 64, 64, generator=g, requires_grad=True)
    depth, keep = torch.rand(1, 1, 64, 64, generator=g), torch.ones(1, 1, 64, 64)
    painted = gen.paint(gen.encode_prompt(["a vase"], [""]), image, depth, keep, torch.Generator().manual_seed(9))
    painted.mean().backward()
    assert recording_compile.created == []
    assert not gen.denoiser.compiled and "CUDA only" in gen.describe()["compile"]


def test_on_compiles_from_the_first_call_and_off_never(recording_compile):
    on = compiled.DenoiserCall(_unet, _controlnet, "on", device="cpu")
    assert on.compiled and not on.waiting and on.reason == "torch.compile (static shapes)"
    assert len(recording_compile.created) == 1
    with torch.no_grad():
        on(*_inputs())
    assert recording_compile.calls == [False]

    off = compiled.DenoiserCall(_unet, _controlnet, "off", device="cuda")
    off(*_inputs())
    assert not off.compiled and not off.waiting and "compile off" in off.reason
    assert len(recording_compile.created) == 1 and recording_compile.calls == [False]


def test_auto_falls_back_to_eager_when_compile_is_unavailable_at_the_first_training_call(monkeypatch):
    created: list[bool] = []

    def unavailable(fn, **_):
        created.append(True)
        raise RuntimeError("torch.compile is not supported on this platform")

    monkeypatch.setattr(compiled.torch, "compile", unavailable)
    args = _inputs()
    expected = compiled.DenoiserCall(_unet, _controlnet, "off").eager(*args)
    denoiser = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cuda")
    assert not created and denoiser.reason == compiled.AUTO_WAITING_REASON  # nothing tried before training
    torch.testing.assert_close(denoiser(*args), expected)
    assert created == [True]
    assert not denoiser.compiled and not denoiser.waiting
    assert "compile failed, running eager" in denoiser.reason and "not supported" in denoiser.reason
    torch.testing.assert_close(denoiser(*args), expected)  # not tried again
    assert created == [True]


def test_auto_falls_back_to_eager_when_the_first_compiled_training_call_fails(monkeypatch):
    calls: list[bool] = []

    def broken_compile(fn, **_):
        def run(*args):
            calls.append(True)
            raise RuntimeError("inductor exploded: no C++ compiler")

        return run

    monkeypatch.setattr(compiled.torch, "compile", broken_compile)
    args = _inputs()
    expected = compiled.DenoiserCall(_unet, _controlnet, "off").eager(*args)
    denoiser = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cuda")
    torch.testing.assert_close(denoiser(*args), expected)  # the training call continues eagerly
    assert calls == [True]
    assert not denoiser.compiled and "inductor exploded" in denoiser.reason and denoiser.compile_seconds == 0
    denoiser(*args)
    assert calls == [True]


def test_the_plugin_option_defaults_to_auto():
    from texkit_diffusers.plugin import StableDiffusionParams, TinyParams

    for params in (TinyParams, StableDiffusionParams):
        field = params.model_fields["compile"]
        assert field.default == "auto"
        assert "first call with gradients enabled" in field.description


def test_set_compile_switches_the_built_generator_and_keeps_a_same_mode_call():
    gen = texkit.get_registry().make_generator("tiny", steps=1, compile="off")
    kept = gen.denoiser
    gen.set_compile("off")
    assert gen.denoiser is kept
    gen.set_compile("auto")
    assert gen.denoiser is not kept and gen.denoiser.compile_mode == "auto"
    assert gen.denoiser.before_compiled_call == gen._drop_stale_merges  # follows whatever merge the generator holds


def test_a_backward_that_fails_to_compile_falls_back_at_the_call_not_in_the_backward_pass(monkeypatch):
    """Real Dynamo + AOTAutograd with a backward compiler that raises. AOTAutograd compiles a backward at its
    first backward call by default, where the error would stop ``loss.backward()``; the compiled call has it
    compiled with the forward, so the call falls back to eager and the backward pass runs."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    real_compile = torch.compile

    def fails_to_compile_backward(gm, example_inputs):
        raise RuntimeError("no backward for you\nsecond line")

    def compile_with_a_broken_backward(fn, **_):
        backend = aot_autograd(fw_compiler=lambda gm, example_inputs: make_boxed_func(gm.forward), bw_compiler=fails_to_compile_backward)
        return real_compile(fn, backend=backend, dynamic=False)

    monkeypatch.setattr(compiled.torch, "compile", compile_with_a_broken_backward)
    call = compiled.DenoiserCall(_unet, _controlnet, "on", "cpu")
    x, t, embeds, condition, scale = _inputs()
    x.requires_grad_(True)
    torch._dynamo.reset()
    out = call(x, t, embeds, condition, scale)
    torch._dynamo.reset()
    assert not call.compiled
    assert call.reason == "compile failed, running eager (BackendCompilerFailed: RuntimeError: no backward for you)"
    (grad,) = torch.autograd.grad((out * out).sum(), x)  # the eager call's backward
    want = call.eager(x, t, embeds, condition, scale)
    torch.testing.assert_close(grad, torch.autograd.grad((want * want).sum(), x)[0])
    import torch._functorch.config as functorch_config

    assert functorch_config.force_non_lazy_backward_lowering is False  # only inside the call
