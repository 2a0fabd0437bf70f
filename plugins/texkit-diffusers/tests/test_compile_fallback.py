"""The compiled denoising call falls back to eager when compilation fails, and the run record says why."""

from __future__ import annotations

import torch
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
    assert compiled.resolve_compile_mode("auto", torch.device("cuda"))[0] is True
    assert compiled.resolve_compile_mode("off", torch.device("cuda"))[0] is False
