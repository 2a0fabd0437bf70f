"""Precompiled training calls (`texkit_diffusers.precompiled`): saved whole, loaded by the next run without tracing.

The two-process tests run `DenoiserCall` with ``compile="on"`` and ``precompile=True`` on the CPU around
small stand-in UNet/ControlNet functions (as test_compile_cache.py does), each process pointed at one
``TEXKIT_COMPILE_CACHE_DIR``; benchmarks/gpu/check_aot_compile.py does the same with the real models.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from diffusers_standins import env_with_standins
from diffusers_standins import smooth_controlnet as _controlnet
from diffusers_standins import smooth_unet as _unet
from texkit_diffusers import compiled as compiled_module
from texkit_diffusers.compiled import DenoiserCall
from texkit_diffusers.precompiled import (
    PrecompiledCalls,
    _first_line,
    _package_version,
    aot_compile_available,
    call_fingerprint,
    denoise,
    describe_error,
    trace_state,
)

import texkit
from texkit.errors import ConfigError

RUN = r"""
import json, torch
from texkit_diffusers.compiled import DenoiserCall, dynamo_phase_seconds
from diffusers_standins import smooth_controlnet as controlnet, smooth_unet as unet

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
    env = env_with_standins({**os.environ, "TEXKIT_COMPILE_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"})
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.pop("TEXKIT_COMPILE_CACHE", None)
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


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


def _eager_backend(monkeypatch) -> None:
    """``torch.compile`` with Dynamo's ``eager`` backend in place of Inductor: the real trace, ``aot_compile``,
    kept guards, save and load, in about a second (no Inductor compile; the slow test above runs Inductor)."""
    real = torch.compile

    def compile_eagerly(fn, *, options=None, **kwargs):  # Inductor's options dropped, the guard filter kept
        kept = {"guard_filter_fn": options["guard_filter_fn"]} if options and "guard_filter_fn" in options else None
        return real(fn, backend="eager", options=kept, **kwargs)

    monkeypatch.setattr(torch, "compile", compile_eagerly)


def _seconds(event: str) -> float:
    return float(event.split(" in ")[-1].split(" s")[0])


@pytest.mark.skipif(not aot_compile_available(), reason="this torch has no aot_compile")
def test_a_call_is_saved_loaded_by_the_next_process_and_damaged_or_unsaved_artifacts_are_reported(monkeypatch, tmp_path):
    _eager_backend(monkeypatch)
    folder = tmp_path / "compile" / "precompiled"  # neither folder exists yet
    args = _args()
    want = denoise(_unet, _controlnet, *args, 0.5)

    first = PrecompiledCalls(folder)
    assert torch.equal(first(_unet, _controlnet, *args, 0.5), want)
    (artifact,) = folder.glob("*.aot")
    assert (first.loaded, first.saved, first.failed) == (0, 1, "")
    assert first.last_event.startswith("whole call compiled ahead of time in ") and first.last_event.endswith(f" s, saved to {artifact}")
    assert 0.0 <= _seconds(first.last_event) < 120.0
    assert first.describe() == f"precompiled training calls: 0 loaded, 1 saved in {folder}"

    second = PrecompiledCalls(folder)  # the next run: loaded, not compiled
    out = second(_unet, _controlnet, *args, 0.5)
    assert torch.equal(out, want) and (second.loaded, second.saved, second.failed) == (1, 0, "")
    assert second.last_event == f"whole call loaded from {artifact} in {second.last_event.split(' in ')[-1]}" and second.last_event.endswith(" s (no tracing)")
    assert 0.0 <= _seconds(second.last_event) < 120.0
    (grad,) = torch.autograd.grad(out.sum(), args[0])
    (want_grad,) = torch.autograd.grad(want.sum(), args[0])
    torch.testing.assert_close(grad, want_grad)

    # the saved call is specialised to its shapes (dynamic=False); another batch has its own fingerprint and artifact
    other = _args(batch=3)
    with pytest.raises(RuntimeError, match="GuardManager check failed"):
        second._calls[second._fingerprint(_unet, _controlnet, args, 0.5)](_unet, _controlnet, *other, 0.5)
    assert torch.equal(second(_unet, _controlnet, *other, 0.5), denoise(_unet, _controlnet, *other, 0.5))
    assert (second.loaded, second.saved) == (1, 1) and len(list(folder.glob("*.aot"))) == 2  # the existing folder is reused
    with torch.no_grad():  # a kept guard (grad mode) fails: torch.compile's path serves the call
        assert second(_unet, _controlnet, *args, 0.5) is None

    artifact.write_bytes(b"not an artifact")  # damaged: compiled again and saved over
    third = PrecompiledCalls(folder)
    assert torch.equal(third(_unet, _controlnet, *args, 0.5), want) and (third.loaded, third.saved) == (0, 1)
    reason = f"loading {artifact.name} failed ("
    assert third.failed.startswith(reason) and third.failed.endswith("); compiled again"), third.failed
    error = third.failed[len(reason) : -len("); compiled again")]
    assert error.split(": ", 1)[0].isidentifier() and error.split(": ", 1)[1].strip(), error  # "UnpicklingError: could not find MARK"
    assert artifact.stat().st_size > len(b"not an artifact")

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    unsaved = PrecompiledCalls(blocked / "precompiled")  # cannot be saved: this run still uses the compiled call
    assert torch.equal(unsaved(_unet, _controlnet, *args, 0.5), want) and (unsaved.loaded, unsaved.saved) == (0, 0)
    assert unsaved.failed.startswith("saving ") and " failed (" in unsaved.failed and unsaved.failed.endswith("); the next run compiles again")
    assert unsaved.last_event.startswith("whole call compiled ahead of time in ") and unsaved.last_event.endswith(" s, not saved")
    assert 0.0 <= _seconds(unsaved.last_event) < 120.0


@pytest.mark.skipif(not aot_compile_available(), reason="this torch has no aot_compile")
def test_a_call_with_a_graph_break_is_left_to_torch_compile(monkeypatch, tmp_path):
    _eager_backend(monkeypatch)

    def breaking(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
        torch._dynamo.graph_break()
        return _controlnet(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict)

    calls = PrecompiledCalls(tmp_path)
    args = _args()
    assert calls(_unet, breaking, *args, 0.5) is None and calls(_unet, breaking, *args, 0.5) is None
    assert calls.failed.startswith("compiling ahead of time failed (Unsupported: ") and calls.failed.endswith("; torch.compile instead")
    assert (calls.loaded, calls.saved) == (0, 0) and not list(tmp_path.glob("*.aot"))


@pytest.mark.skipif(not aot_compile_available(), reason="this torch has no aot_compile")
def test_a_backend_that_fails_ahead_of_time_is_named_by_its_error_and_first_line(monkeypatch, tmp_path):
    """torch 2.13's aot_compile raises the compiler's own error; where Dynamo wraps it in ``BackendCompilerFailed``
    the wrapped error is named too (`describe_error`, the test below)."""
    real = torch.compile

    def failing_backend(gm, example_inputs):
        raise RuntimeError("no kernel for this shape\nsecond line")

    monkeypatch.setattr(torch, "compile", lambda fn, *, options=None, **kwargs: real(fn, backend=failing_backend, **kwargs))
    calls = PrecompiledCalls(tmp_path)
    assert calls(_unet, _controlnet, *_args(), 0.5) is None
    assert calls.failed == "compiling ahead of time failed (RuntimeError: no kernel for this shape); torch.compile instead"


def test_aot_compile_is_available_only_with_all_three_apis(monkeypatch):
    assert aot_compile_available() is all(hasattr(torch.compiler, name) for name in ("load_compiled_function", "keep_portable_guards_unsafe"))
    for name in ("load_compiled_function", "keep_portable_guards_unsafe"):
        with monkeypatch.context() as patch:
            patch.delattr(torch.compiler, name, raising=False)
            assert aot_compile_available() is False, name


def test_the_fingerprint_names_the_gpu_the_device_and_python_and_not_the_key_order(monkeypatch):
    args, options = _args(), {}
    cpu = call_fingerprint(_unet, _controlnet, args, 0.5, options, ())
    on_meta = call_fingerprint(_unet, _controlnet, (args[0].to("meta"), *args[1:]), 0.5, options, ())  # the latents' device
    assert on_meta != cpu

    gpu = {"name": "NVIDIA H100 80GB HBM3", "capability": (9, 0)}
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: gpu["name"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: gpu["capability"])
    x = args[0]
    on_cuda = SimpleNamespace(device=torch.device("cuda", 0), shape=x.shape, dtype=x.dtype, stride=x.stride, requires_grad=True)
    names = [call_fingerprint(_unet, _controlnet, (on_cuda, *args[1:]), 0.5, options, ())]
    gpu["name"] = "NVIDIA H200"
    names.append(call_fingerprint(_unet, _controlnet, (on_cuda, *args[1:]), 0.5, options, ()))
    gpu["capability"] = (10, 0)
    names.append(call_fingerprint(_unet, _controlnet, (on_cuda, *args[1:]), 0.5, options, ()))
    assert len({*names, cpu}) == 4

    monkeypatch.setattr(sys, "version", sys.version.replace(sys.version.split()[0], "3.99.0", 1))
    assert call_fingerprint(_unet, _controlnet, args, 0.5, options, ()) != cpu  # another Python
    monkeypatch.undo()

    # a config read back from disk may list its keys in another order: the same artifact
    first, second = SimpleNamespace(config={"in_channels": 4, "sample_size": 64}), SimpleNamespace(config={"sample_size": 64, "in_channels": 4})
    assert call_fingerprint(first, _controlnet, args, 0.5, options, ()) == call_fingerprint(second, _controlnet, args, 0.5, options, ())
    assert call_fingerprint(first, _controlnet, args, 0.5, options, ()) != call_fingerprint(SimpleNamespace(config={"in_channels": 4, "sample_size": 32}), _controlnet, args, 0.5, options, ())
    assert _package_version("texkit-no-such-package") == "none" and _package_version("torch") == torch.__version__


def test_the_trace_state_of_plain_modules_counts_adapters_on_and_no_checkpointing():
    class HandWrittenLoRA(torch.nn.Module):  # has lora_A, but none of peft's attributes
        def __init__(self):
            super().__init__()
            self.lora_A = torch.nn.Linear(2, 1, bias=False)

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), HandWrittenLoRA())
    assert trace_state(model) == ((True, False, ((False, False),)),)
    model.eval()
    assert trace_state(model) == ((False, False, ((False, False),)),)


def test_denoise_adds_the_controlnets_plain_residuals_to_the_real_unet():
    gen = texkit.get_registry().make_generator("tiny", steps=1)
    unet, controlnet = gen.unet, copy.deepcopy(gen.controlnet)
    torch.manual_seed(1)
    with torch.no_grad():  # the zero convolutions of a fresh ControlNet add nothing: give them weights
        for block in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            block.weight.normal_(0, 0.1)
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 4, 8, 8, generator=g), torch.tensor(10)
    embeds = torch.randn(2, 7, unet.config.cross_attention_dim, generator=g)
    condition = torch.rand(2, controlnet.config.conditioning_channels, 64, 64, generator=g)
    with torch.no_grad():
        residuals = controlnet(x, t, encoder_hidden_states=embeds, controlnet_cond=condition, conditioning_scale=0.5)  # diffusers' defaults: no guess mode
        want = unet(x, t, encoder_hidden_states=embeds, down_block_additional_residuals=residuals.down_block_res_samples, mid_block_additional_residual=residuals.mid_block_res_sample).sample
        out = denoise(unet, controlnet, x, t, embeds, condition, 0.5)
        assert torch.equal(out, want)
        assert not torch.allclose(out, unet(x, t, encoder_hidden_states=embeds).sample)  # the residuals count


def test_a_compiler_error_is_described_by_its_type_and_first_line_and_a_wrapped_one_by_both():
    """`describe_error`, used by the precompiled call's messages and by `DenoiserCall`'s fallback."""

    class BackendCompilerFailed(Exception):
        def __init__(self, inner: BaseException) -> None:
            super().__init__("backend='inductor' raised:\nmore")
            self.inner_exception = inner

    assert describe_error(ValueError("  bad graph\nsecond")) == "ValueError: bad graph"
    assert describe_error(BackendCompilerFailed(KeyError("x" * 250))) == f"BackendCompilerFailed: KeyError: '{'x' * 199}"
    assert describe_error(BackendCompilerFailed(None)) == "BackendCompilerFailed: backend='inductor' raised:"  # type: ignore[arg-type]


def test_an_errors_first_line_names_it():
    assert _first_line(ValueError("  disk full\nsecond line")) == "disk full"
    assert _first_line(ValueError("")) == ""
    assert _first_line(ValueError("x" * 250)) == "x" * 200


@pytest.mark.skipif(not aot_compile_available(), reason="this torch has no aot_compile")
def test_training_calls_go_through_the_precompiled_call_and_no_grad_calls_do_not(monkeypatch, tmp_path):
    _eager_backend(monkeypatch)
    monkeypatch.setattr(compiled_module, "active_cache_dir", lambda: tmp_path)
    folder = tmp_path / "precompiled"
    args = _args()
    want = denoise(_unet, _controlnet, *args, 0.5)

    call = DenoiserCall(_unet, _controlnet, "on", precompile=True)
    with torch.no_grad():  # a sampling call: torch.compile's own guarded path, nothing saved
        assert torch.equal(call(*args, 0.5), want)
    assert call.precompiled.saved == 0 and not folder.exists()
    assert call.first_calls[-1].startswith("2 latents, no gradients: ") and "whole call" not in call.first_calls[-1]

    out = call(*args, 0.5)  # a training call: compiled ahead of time and saved
    assert torch.equal(out, want) and (call.precompiled.loaded, call.precompiled.saved) == (0, 1)
    (artifact,) = folder.glob("*.aot")
    assert call.first_calls[-1].startswith("2 latents, training: ") and call.first_calls[-1].endswith(f" s, saved to {artifact}")
    (grad,) = torch.autograd.grad(out.sum(), args[0])
    torch.testing.assert_close(grad, torch.autograd.grad(want.sum(), args[0])[0])

    later = DenoiserCall(_unet, _controlnet, "on", precompile=True)  # the next run loads it
    assert torch.equal(later(*args, 0.5), want) and (later.precompiled.loaded, later.precompiled.saved) == (1, 0)
    assert f"whole call loaded from {artifact} in " in later.first_calls[-1]
    assert "precompiled training calls: 1 loaded, 0 saved" in later.describe_cache()


def test_precompile_warns_why_it_is_unused_and_is_silent_when_used(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(compiled_module, "aot_compile_available", lambda: True)
    monkeypatch.setattr(compiled_module, "active_cache_dir", lambda: tmp_path)
    with caplog.at_level(logging.WARNING, logger="texkit.diffusers"):
        DenoiserCall(_unet, _controlnet, "on", precompile=True)
    assert not [r for r in caplog.records if r.name == "texkit.diffusers"]
    monkeypatch.setattr(compiled_module, "active_cache_dir", lambda: None)
    with caplog.at_level(logging.WARNING, logger="texkit.diffusers"):
        call = DenoiserCall(_unet, _controlnet, "on", precompile=True)
    assert [r.getMessage() for r in caplog.records if r.name == "texkit.diffusers"] == [f"texkit-diffusers: {call.precompile_reason}"]

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


def test_the_fingerprint_is_the_same_whatever_the_order_of_sets_and_where_a_model_came_from():
    first, second = {1, 9}, {9, 1}  # equal sets that iterate in another order (1 and 9 share a slot)
    assert list(first) != list(second)
    args = _args()

    def named(config):
        return call_fingerprint(SimpleNamespace(config=config), _controlnet, args, 0.5, {}, ())

    assert named({"targets": first}) == named({"targets": second})
    assert named({"nested": {"targets": first}}) == named({"nested": {"targets": second}})
    assert named({"pairs": (first, 2)}) == named({"pairs": (second, 2)})
    assert named({"targets": frozenset(first)}) == named({"targets": frozenset(second)})
    assert named({"targets": {1, 9}}) != named({"targets": {1, 8}})
    here = {"in_channels": 4, "_name_or_path": "/models/sd15", "_use_default_values": ["a"]}
    assert named(here) == named({**here, "_name_or_path": "/elsewhere/sd15", "_use_default_values": []}) == named({"in_channels": 4})
    assert named(here) != named({**here, "in_channels": 9})
