"""Precompiled training calls (`texkit_diffusers.precompiled`): saved whole, loaded by the next run without tracing.

The two-process tests run `DenoiserCall` with ``compile="on"`` and ``precompile=True`` on the CPU around
small stand-in UNet/ControlNet functions (as test_compile_cache.py does), each process pointed at one
``TEXKIT_COMPILE_CACHE_DIR``; benchmarks/gpu/check_aot_compile.py does the same with the real models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from texkit_diffusers import compiled as compiled_module
from texkit_diffusers.compiled import DenoiserCall
from texkit_diffusers.precompiled import PrecompiledCalls, aot_compile_available, call_fingerprint, denoise, trace_state

import texkit
from texkit.errors import ConfigError

RUN = r"""
import json, torch
from texkit_diffusers.compiled import DenoiserCall, dynamo_phase_seconds

def controlnet(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
    return [torch.tanh(x * conditioning_scale + controlnet_cond)], encoder_hidden_states.mean() + t

def unet(x, t, encoder_hidden_states, down_block_additional_residuals, mid_block_additional_residual, return_dict):
    return (torch.sigmoid(x + down_block_additional_residuals[0]) * mid_block_additional_residual,)

torch.manual_seed(0)
call = DenoiserCall(unet, controlnet, "on", precompile=True)
x = torch.randn(2, 4, 8, 8, requires_grad=True)
out = call(x, torch.tensor(3.0), torch.randn(2, 5, 6), torch.randn(2, 4, 8, 8), 0.5)
out.sum().backward()
p = call.precompiled
print(json.dumps({"loaded": p.loaded, "saved": p.saved, "failed": p.failed, "describe": call.describe_cache(),
                  "tracing": dynamo_phase_seconds().get("tracing", 0.0), "grad": x.grad.abs().sum().item(), "out": out.sum().item()}))
"""


def _run(cache: Path) -> tuple[dict, str]:
    env = {**os.environ, "TEXKIT_COMPILE_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.pop("TEXKIT_COMPILE_CACHE", None)
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _controlnet(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
    return [torch.tanh(x * conditioning_scale + controlnet_cond)], encoder_hidden_states.mean() + t


def _unet(x, t, encoder_hidden_states, down_block_additional_residuals, mid_block_additional_residual, return_dict):
    return (torch.sigmoid(x + down_block_additional_residuals[0]) * mid_block_additional_residual,)


def _args(batch: int = 2, grad: bool = True) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 4, 8, 8, generator=g).requires_grad_(grad)
    return x, torch.tensor(3.0), torch.randn(batch, 5, 6, generator=g), torch.randn(batch, 4, 8, 8, generator=g)


@pytest.mark.slow
@pytest.mark.skipif(not aot_compile_available(), reason="this torch has no aot_compile")
def test_next_run_loads_the_whole_call_without_tracing_and_a_damaged_artifact_is_compiled_again(tmp_path):
    cache = tmp_path / "compile"
    first, first_err = _run(cache)
    assert (first["loaded"], first["saved"], first["failed"]) == (0, 1, ""), first
    artifacts = list((cache / "precompiled").glob("*.aot"))
    assert len(artifacts) == 1 and artifacts[0].stat().st_size > 0
    assert "whole call compiled ahead of time in" in first_err and "precompiled training calls: 0 loaded, 1 saved" in first["describe"]

    second, second_err = _run(cache)
    assert (second["loaded"], second["saved"], second["failed"]) == (1, 0, ""), second
    assert second["tracing"] == 0.0  # Dynamo traced nothing in this process
    ready = next(line for line in second_err.splitlines() if "ready in" in line)
    assert "whole call loaded from" in ready and "(no tracing)" in ready, ready
    assert second["grad"] == pytest.approx(first["grad"], rel=1e-6) and second["out"] == pytest.approx(first["out"], rel=1e-6)

    artifacts[0].write_bytes(b"not an artifact")  # damaged (e.g. a full disk): compiled again and rewritten
    third, third_err = _run(cache)
    assert (third["loaded"], third["saved"]) == (0, 1), third
    assert third["failed"].startswith(f"loading {artifacts[0].name} failed") and third["failed"].endswith("compiled again")
    assert third["grad"] == pytest.approx(first["grad"], rel=1e-6)
    assert artifacts[0].stat().st_size > len(b"not an artifact")


def test_the_fingerprint_names_everything_the_kept_guards_do_not_check():
    args, options = _args(), {"layout_optimization": False}
    base = call_fingerprint(_unet, _controlnet, args, 0.5, options, ())
    assert base == call_fingerprint(_unet, _controlnet, _args(), 0.5, dict(options), ())  # stable for the same setup
    assert len(base) == 32
    changed = [
        call_fingerprint(_unet, _controlnet, args, 1.0, options, ()),  # the scale is a constant in the graph
        call_fingerprint(_unet, _controlnet, _args(batch=4), 0.5, options, ()),
        call_fingerprint(_unet, _controlnet, _args(grad=False), 0.5, options, ()),
        call_fingerprint(_unet, _controlnet, (args[0].half(), *args[1:]), 0.5, options, ()),
        call_fingerprint(_unet, _controlnet, (args[0].contiguous(memory_format=torch.channels_last), *args[1:]), 0.5, options, ()),
        call_fingerprint(_unet, _controlnet, args, 0.5, {"layout_optimization": True}, ()),
        call_fingerprint(_unet, _controlnet, args, 0.5, options, ((False, True, ()),)),
        call_fingerprint(_controlnet, _unet, args, 0.5, options, ()),
    ]
    assert len(set(changed)) == len(changed) and base not in changed
    # the guard filter is a function (no stable text): it is left out of the name
    assert call_fingerprint(_unet, _controlnet, args, 0.5, {**options, "guard_filter_fn": print}, ()) == base


def test_the_trace_state_follows_merges_adapters_mode_and_checkpointing():
    gen = texkit.get_registry().make_generator("tiny", steps=1, checkpointing=True)
    before = trace_state(gen.unet, gen.controlnet)
    (unet_training, unet_checkpointing, unet_lora), controlnet_state = before
    assert (unet_training, unet_checkpointing) == (False, True) and controlnet_state == (False, True, ())
    assert len(unet_lora) == len(gen.merged_lora.layers) > 0 and not any(merged for _, merged in unet_lora)
    gen.merged_lora.refresh()
    merged = trace_state(gen.unet, gen.controlnet)
    assert all(merged for _, merged in merged[0][2]) and merged != before
    gen.unet.disable_adapters()
    assert all(off for off, _ in trace_state(gen.unet, gen.controlnet)[0][2])
    gen.unet.enable_adapters()
    gen.unet.train()
    assert trace_state(gen.unet, gen.controlnet)[0][0] is True
    gen.set_checkpointing(False)
    assert trace_state(gen.unet, gen.controlnet)[1][1] is False
    assert trace_state(_unet, None) == (None, None)  # stand-in functions have no state


def test_a_failed_guard_sends_the_call_back_and_other_errors_surface(tmp_path):
    calls = PrecompiledCalls(tmp_path)
    args = _args()
    fingerprint = calls._fingerprint(_unet, _controlnet, args, 0.5)

    def guard_fails(*_):
        raise RuntimeError("GuardManager check failed, reason: size mismatch")

    calls._calls[fingerprint] = guard_fails
    assert calls(_unet, _controlnet, *args, 0.5) is None

    def broken(*_):
        raise RuntimeError("CUDA error: an illegal memory access")

    calls._calls[fingerprint] = broken
    with pytest.raises(RuntimeError, match="illegal memory access"):
        calls(_unet, _controlnet, *args, 0.5)
    calls._calls[fingerprint] = lambda unet, controlnet, x, t, embeds, condition, scale: x * scale
    assert torch.equal(calls(_unet, _controlnet, *args, 0.5), args[0] * 0.5)
    assert calls.path(fingerprint) == tmp_path / f"{fingerprint}.aot"
    assert calls.describe() == f"precompiled training calls: 0 loaded, 0 saved in {tmp_path}"
    calls.failed = "saving x.aot failed (OSError: disk full); the next run compiles again"
    assert calls.describe().endswith("; saving x.aot failed (OSError: disk full); the next run compiles again")


def test_denoise_is_controlnet_then_unet():
    x, t, embeds, condition = _args()
    want = _unet(x, t, embeds, [torch.tanh(x * 0.5 + condition)], embeds.mean() + t, False)[0]
    assert torch.equal(denoise(_unet, _controlnet, x, t, embeds, condition, 0.5), want)
    assert torch.equal(DenoiserCall(_unet, _controlnet, "off").eager(x, t, embeds, condition, 0.5), want)


def test_precompile_says_why_it_is_not_used(monkeypatch, tmp_path):
    monkeypatch.setattr(compiled_module, "aot_compile_available", lambda: False)
    call = DenoiserCall(_unet, _controlnet, "on", precompile=True)
    assert call.precompiled is None and call.precompile_reason.startswith(f"precompile unavailable: torch {torch.__version__} has no aot_compile")
    assert call.describe_cache().endswith(f"; {call.precompile_reason}")

    monkeypatch.setattr(compiled_module, "aot_compile_available", lambda: True)
    monkeypatch.setattr(compiled_module, "active_cache_dir", lambda: None)
    call = DenoiserCall(_unet, _controlnet, "on", precompile=True)
    assert call.precompiled is None and call.precompile_reason == "precompile unavailable: the compile cache is off (TEXKIT_COMPILE_CACHE=off)"

    monkeypatch.setattr(compiled_module, "active_cache_dir", lambda: tmp_path)
    call = DenoiserCall(_unet, _controlnet, "on", precompile=True)
    assert call.precompile_reason == "" and call.precompiled.folder == tmp_path / "precompiled"
    assert "precompiled training calls: 0 loaded, 0 saved" in call.describe_cache()
    assert DenoiserCall(_unet, _controlnet, "on").precompiled is None  # off unless asked for
    assert DenoiserCall(_unet, _controlnet, "off", precompile=True).precompiled is None  # nothing compiles


def test_the_generator_option_reaches_the_denoising_call():
    gen = texkit.get_registry().make_generator("tiny", steps=1, precompile=True)
    assert gen.precompile is True and gen.denoiser.precompile is True and gen.describe()["precompile"] is True
    assert texkit.get_registry().make_generator("tiny", steps=1).describe()["precompile"] is False
    with pytest.raises(ConfigError, match="precompile"):
        texkit.get_registry().make_generator("tiny", steps=1, precompile="sometimes")


FINGERPRINT = r"""
import torch, texkit
from texkit_diffusers.precompiled import call_fingerprint, trace_state
gen = texkit.get_registry().make_generator("tiny", steps=1, checkpointing=True)
gen.merged_lora.refresh()
x = torch.zeros(2, 4, 8, 8, requires_grad=True)
args = (x, torch.tensor(1), torch.zeros(2, 77, 32), torch.zeros(2, 6, 64, 64))
print(call_fingerprint(gen.unet, gen.controlnet, args, 1.0, {}, trace_state(gen.unet, gen.controlnet)))
"""


def test_the_same_setup_gets_the_same_fingerprint_in_every_process():
    # peft keeps target_modules as a set: its order follows the string-hash seed, which differs per process
    prints = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-c", FINGERPRINT], capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr[-2000:]
        prints.add(done.stdout.strip().splitlines()[-1])
    assert len(prints) == 1, prints
