"""Compile once per machine: the second process that compiles the same denoising call loads it from the cache.

Each run is its own Python process (as two ``texkit train`` runs are), both pointed at one
``TEXKIT_COMPILE_CACHE_DIR``. The compiled call is `DenoiserCall` with ``compile="on"`` on the CPU
around small stand-in UNet/ControlNet functions, so Inductor really generates and builds C++
kernels (seconds); the tiny generator's UNet + ControlNet takes minutes to compile on a 2-core CPU
(docs/performance.md has that measurement, made with ``texkit warmup`` twice).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from diffusers_standins import env_with_standins

from texkit.compile_cache import CompileCacheCounts, compile_cache_dir, enable_compile_cache

RUN = r"""
import json, sys, torch
from texkit_diffusers.compiled import DenoiserCall
from diffusers_standins import smooth_controlnet as controlnet, smooth_unet as unet

torch.manual_seed(0)
call = DenoiserCall(unet, controlnet, "on")
x = torch.randn(2, 4, 8, 8, requires_grad=True)
out = call(x, torch.tensor(3.0), torch.randn(2, 5, 6), torch.randn(2, 4, 8, 8), 0.5)
out.sum().backward()
print(json.dumps({"hits": call.cache.hits, "misses": call.cache.misses, "describe": call.describe_cache(), "grad": x.grad.abs().sum().item()}))
"""


def _run(cache: Path) -> tuple[dict, str]:
    env = env_with_standins({**os.environ, "TEXKIT_COMPILE_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"})
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow
def test_second_process_loads_the_compiled_call_from_the_cache(tmp_path):
    cache = tmp_path / "compile"
    first, first_err = _run(cache)
    assert first["misses"] >= 1 and first["hits"] == 0, first
    assert "compiled (" in first["describe"] and str(cache) in first["describe"]
    assert "now cached" in first_err and "texkit-diffusers: note: denoising call for 2 latents (training) ready in" in first_err
    assert any(cache.rglob("*")), "nothing was written into the compile cache folder"

    second, second_err = _run(cache)
    assert second["hits"] >= 1 and second["misses"] == 0, second
    assert second["describe"].startswith("loaded from the compile cache")
    assert "loaded from the compile cache" in second_err
    ready = next(line for line in second_err.splitlines() if "ready in" in line)
    assert "(tracing " in ready and ", compiling or loading " in ready and ", the rest " in ready, ready
    assert "; first calls: 2 latents, training: " in second["describe"] and "(tracing " in second["describe"]  # in the run record too
    assert second["grad"] == pytest.approx(first["grad"])  # the cached code computes the same gradients


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TEXKIT_COMPILE_CACHE_DIR", raising=False)
    monkeypatch.setenv("TEXKIT_CACHE_DIR", str(tmp_path / "root"))
    assert compile_cache_dir() == tmp_path / "root" / "compile"
    monkeypatch.setenv("TEXKIT_COMPILE_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("TEXKIT_COMPILE_CACHE_DIR")
    monkeypatch.delenv("TEXKIT_CACHE_DIR")
    assert compile_cache_dir() == Path.home() / ".cache" / "texkit" / "compile"


def test_enable_points_inductor_at_the_folder_and_respects_a_users_choice(monkeypatch, tmp_path):
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("TEXKIT_COMPILE_CACHE_DIR", str(tmp_path / "texkit"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    with inductor_config.patch(fx_graph_cache=False):  # torch's patch: monkeypatch's undo would delete the entry
        assert enable_compile_cache() == tmp_path / "texkit"
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "texkit") and inductor_config.fx_graph_cache
    assert hasattr(inductor_config, "fx_graph_cache")
    assert (tmp_path / "texkit").is_dir()

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "users"))  # set by the user: kept
    assert enable_compile_cache() == tmp_path / "users"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "users")

    monkeypatch.setenv("TEXKIT_COMPILE_CACHE", "off")
    assert enable_compile_cache() is None


def test_first_call_is_split_into_tracing_backend_and_the_rest():
    from texkit_diffusers.compiled import describe_first_call

    before, after = {"tracing": 1.0, "backend": 2.0}, {"tracing": 7.0, "backend": 10.5}
    assert describe_first_call(15.4, before, after) == "15.4 s (tracing 6.0 s, compiling or loading 8.5 s, the rest 0.9 s)"
    assert describe_first_call(3.0, {}, {}) == "3.0 s"  # a torch without the metrics: the total only


def test_dynamo_phase_seconds_grow_when_a_function_is_traced():
    import torch
    from texkit_diffusers.compiled import dynamo_phase_seconds

    def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) * 3.0 + x.sin()

    seen = []

    def backend(gm, example_inputs):  # no Inductor: only Dynamo's tracing and this call are timed
        seen.append(len(gm.graph.nodes))
        return gm.forward

    torch._dynamo.reset()  # (clears torch's phase timings too: read them after it)
    before = dynamo_phase_seconds()
    x = torch.randn(5)
    assert torch.allclose(torch.compile(scaled_tanh, backend=backend)(x), scaled_tanh(x))
    after = dynamo_phase_seconds()
    assert seen, "the function was not compiled"
    assert after["tracing"] > before["tracing"] and after["backend"] > before["backend"]


def test_counts_describe_what_happened():
    assert CompileCacheCounts(aot_hits=1, fx_hits=2).describe() == "loaded from the compile cache (2 graphs)"
    assert CompileCacheCounts(aot_misses=1, fx_misses=2).describe() == "compiled (2 graphs, now cached)"
    assert CompileCacheCounts(fx_bypasses=1).describe() == "compiled without the cache (1 graph(s) bypassed it)"
    assert CompileCacheCounts().describe() == "no graph compiled"
    both = CompileCacheCounts(aot_hits=1, fx_hits=2) + CompileCacheCounts(aot_misses=1, fx_misses=2)
    assert (both.hits, both.misses) == (2, 2) and "2 hit(s), 2 miss(es)" in both.describe()
    assert (both - CompileCacheCounts(aot_misses=1, fx_misses=2)).misses == 0


PATTERNS = r"""
import json, sys, torch
from texkit_diffusers.compiled import DenoiserCall

w = torch.nn.Parameter(torch.tensor(0.7))

def controlnet(x, t, encoder_hidden_states, controlnet_cond, conditioning_scale, guess_mode, return_dict):
    return [torch.tanh(w * x * conditioning_scale + controlnet_cond)], encoder_hidden_states.mean() + t

def unet(x, t, encoder_hidden_states, down_block_additional_residuals, mid_block_additional_residual, return_dict):
    return (torch.sigmoid(x + down_block_additional_residuals[0]) * mid_block_additional_residual,)

def step(call, x_grad, cond_grad):
    torch.manual_seed(0)
    x, cond = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    x0, c0 = x.clone().requires_grad_(True), cond.clone().requires_grad_(True)
    x_in, c_in = (x0 * 1.0 if x_grad else x), (c0 * 1.0 if cond_grad else cond)  # non-leaf with grad, as in a step
    w.grad = None
    call(x_in, torch.tensor(3.0), torch.randn(2, 5, 6), c_in, 0.5).square().sum().backward()
    return [w.grad.item(), x0.grad.abs().sum().item() if x_grad else None, c0.grad.abs().sum().item() if cond_grad else None]

compiled, eager = DenoiserCall(unet, controlnet, "on"), DenoiserCall(unet, controlnet, "off")
from torch._dynamo.utils import counters
rows = []
for x_grad, cond_grad in [(False, False), (True, False), (False, True), (True, True)]:
    rows.append({"compiled": step(compiled, x_grad, cond_grad), "eager": step(eager, x_grad, cond_grad)})
print(json.dumps({"graphs": counters["stats"]["unique_graphs"], "rows": rows}))
"""


@pytest.mark.slow
def test_which_inputs_need_grad_makes_no_new_graph(tmp_path):
    """Latents and condition with and without grad (as the views and steps of a training step have
    them) run through one compiled graph, with the eager call's gradients."""
    env = {**os.environ, "TEXKIT_COMPILE_CACHE_DIR": str(tmp_path / "compile"), "OMP_NUM_THREADS": "1"}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", PATTERNS], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["graphs"] == 1, result
    for row in result["rows"]:
        for got, want in zip(row["compiled"], row["eager"]):
            assert (got is None) == (want is None)
            if want is not None:
                assert got == pytest.approx(want, rel=1e-5)


def test_graphsafe_rng_wrapper_is_switched_off_only_where_it_blocks_the_cache(monkeypatch, tmp_path):
    """torch 2.11 cannot cache ``graphsafe_run_with_rng_state`` (checkpointed SDPA on CUDA): the older,
    cacheable wrappers are used there; a torch that caches all three keeps its setting."""
    import torch._functorch.config as functorch_config
    from torch._prims import rng_prims

    from texkit.compile_cache import graphsafe_rng_blocks_cache

    monkeypatch.setenv("TEXKIT_COMPILE_CACHE_DIR", str(tmp_path / "texkit"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    # torch's own patch, not monkeypatch: monkeypatch's undo deletes a config entry of torch's config
    # modules, and a later compile in the same process then fails on the missing entry
    with functorch_config.patch(graphsafe_rng_functionalization=True):
        monkeypatch.setattr(rng_prims.graphsafe_run_with_rng_state, "cacheable", lambda: True)
        assert not graphsafe_rng_blocks_cache()
        enable_compile_cache()
        assert functorch_config.graphsafe_rng_functionalization is True

        monkeypatch.setattr(rng_prims.graphsafe_run_with_rng_state, "cacheable", lambda: False)
        assert graphsafe_rng_blocks_cache()
        enable_compile_cache()
        assert functorch_config.graphsafe_rng_functionalization is False
        assert not graphsafe_rng_blocks_cache()  # already off: nothing left to switch
    assert hasattr(functorch_config, "graphsafe_rng_functionalization")  # left as it was
