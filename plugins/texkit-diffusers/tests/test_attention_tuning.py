"""Per-shape attention kernel choice (attention = "auto" on CUDA), checked on the CPU's two exact SDPA kernels.

On the CPU PyTorch has a flash-style SDPA kernel and the math reference; the tuner times both for
real (wall clock instead of CUDA events), exactly as it times flash / cuDNN / memory-efficient on a
GPU. The GPU timings themselves are in docs/performance.md.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from texkit_diffusers.attention import select_attention_backend
from texkit_diffusers.attention_tuning import (
    AttentionTable,
    TunedAttnProcessor,
    attention_table,
    time_attention_kernels,
)

CPU = torch.device("cpu")


def test_each_runnable_kernel_is_timed_and_one_that_cannot_run_is_left_out():
    timed = time_attention_kernels((2, 2, 16, 7, 8, "float32"), CPU, ("flash", "math", "cudnn"), repeats=2)
    assert set(timed) == {"flash", "math", "cudnn", "torch_default"}  # torch's own choice, for comparison
    assert "error" in timed["cudnn"]  # cuDNN attention needs a GPU: recorded why, never chosen
    for name in ("flash", "math", "torch_default"):
        assert timed[name]["forward_ms"] > 0 and timed[name]["train_ms"] > 0
    table = AttentionTable(CPU, ("flash", "math", "cudnn"))
    table.timings[(2, 2, 16, 7, 8, "float32")] = timed
    assert table.choice((2, 2, 16, 7, 8, "float32"), True) in ("flash", "math", "torch_default")  # never cudnn, which failed


def test_the_fastest_kernel_is_chosen_per_grad_mode():
    table = AttentionTable(CPU, ("flash", "math"))
    key = (1, 2, 4, 4, 8, "float32")
    table.timings[key] = {
        "flash": {"forward_ms": 1.0, "train_ms": 5.0},
        "math": {"forward_ms": 2.0, "train_ms": 3.0},
        "torch_default": {"forward_ms": 1.5, "train_ms": 6.0},  # torch's own choice, a candidate like the others
    }
    assert table.choice(key, training=False) == "flash" and table.choice(key, training=True) == "math"
    assert table.choice((9, 9, 9, 9, 9, "float32"), training=True) is None
    assert "1x2x4x4x8: forward flash, training math (2.00x torch's own choice)" in table.summary()
    row = table.as_records()[0]
    assert row["forward_choice"] == "flash" and row["training_choice"] == "math" and row["query_length"] == 4
    table.timings[key]["torch_default"]["forward_ms"] = 0.5  # torch's own choice is fastest: it is kept
    assert table.choice(key, training=False) == "torch_default"


def test_torch_own_choice_runs_without_a_kernel_context(monkeypatch):
    """When torch's own SDPA choice timed fastest, the processor calls SDPA with no sdpa_kernel context."""
    attn = _attention()
    table = AttentionTable(CPU, ("flash", "math"))
    x, context = torch.randn(2, 10, 16), torch.randn(2, 7, 12)
    table.timings[(2, 2, 10, 7, 8, "float32")] = {
        "flash": {"forward_ms": 2.0, "train_ms": 2.0},
        "math": {"forward_ms": 3.0, "train_ms": 3.0},
        "torch_default": {"forward_ms": 1.0, "train_ms": 1.0},
    }
    entered = []
    monkeypatch.setattr(torch.nn.attention, "sdpa_kernel", lambda *a, **k: entered.append(a) or contextlib.nullcontext())
    attn.set_processor(TunedAttnProcessor(table))
    with torch.no_grad():
        got = attn(x, context)
    attn.set_processor(AttnProcessor2_0())
    with torch.no_grad():
        torch.testing.assert_close(got, attn(x, context))
    assert entered == []
    table.timings[(2, 2, 10, 7, 8, "float32")]["torch_default"]["forward_ms"] = 9.0  # now flash is fastest
    attn.set_processor(TunedAttnProcessor(table))
    with torch.no_grad():
        attn(x, context)
    assert len(entered) == 1


def _attention(seed: int = 0) -> Attention:
    torch.manual_seed(seed)
    return Attention(query_dim=16, heads=2, dim_head=8, cross_attention_dim=12)


def test_tuned_processor_gives_the_default_processors_output_and_gradients():
    attn = _attention()
    x = torch.randn(2, 16, 10, requires_grad=True).transpose(1, 2)  # (B, S, C) as the UNet's transformer blocks pass it
    context = torch.randn(2, 7, 12)
    attn.set_processor(AttnProcessor2_0())
    expected = attn(x, context)
    (grad_expected,) = torch.autograd.grad(expected.square().sum(), x)
    table = AttentionTable(CPU, ("flash", "math"))
    attn.set_processor(TunedAttnProcessor(table))
    got = attn(x, context)
    (grad_got,) = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_got, grad_expected, rtol=1e-4, atol=1e-5)
    assert list(table.timings) == [(2, 2, 10, 7, 8, "float32")]  # (batch, heads, query, key, head dim): timed once
    attn(x, context)
    assert len(table.timings) == 1


def test_compiled_call_bakes_the_choice_in_without_guarding_on_the_table():
    """fullgraph inside a checkpointed block; a shape timed later does not make the graph recompile."""
    attn = _attention(1)
    table = AttentionTable(CPU, ("flash", "math"))
    attn.set_processor(TunedAttnProcessor(table))
    graphs = []

    def count(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    def block(x, context):
        return torch.utils.checkpoint.checkpoint(attn, x, context, use_reentrant=False)

    compiled = torch.compile(block, backend=count, fullgraph=True)
    x, context = torch.randn(1, 6, 16, requires_grad=True), torch.randn(1, 7, 12)
    out = compiled(x, context)
    out.sum().backward()
    assert len(graphs) == 1 and (1, 2, 6, 7, 8, "float32") in table.timings  # timed while Dynamo traced
    attn(torch.randn(3, 5, 16), context)  # eager: another shape joins the table
    assert len(table.timings) == 2
    compiled(x, context)
    assert len(graphs) == 1  # no recompilation
    torch._dynamo.reset()


def test_auto_is_tuned_on_cuda_only(monkeypatch):
    from texkit_diffusers import attention
    from texkit_diffusers.tiny import build_tiny_components

    models = [build_tiny_components(0)["unet"]]
    assert select_attention_backend(models, CPU, "auto") == "sdpa"
    assert all(isinstance(p, AttnProcessor2_0) for p in models[0].attn_processors.values())
    monkeypatch.setattr(attention, "xformers_available", lambda device: (False, "xformers not installed"))
    assert select_attention_backend(models, torch.device("cuda"), "auto") == "tuned"  # no kernel runs until a call
    assert attention_table(models[0]).candidates == ("flash", "cudnn", "efficient")
    assert "fastest of flash, cudnn, efficient per shape" in attention.last_attention_reason()


FAKE_XFORMERS = {
    "__init__.py": """
        import logging
        __version__ = "0.0.99"
        from . import _cpp_lib
        _has_cpp_library = _cpp_lib._cpp_library_load_exception is None
    """,
    "_cpp_lib.py": """
        # what xformers 0.0.35 does on a torch it was not built for: one multi-line warning on import
        import logging
        logger = logging.getLogger("xformers")

        class _Info:
            torch_version = "2.10.0+cu128"
            cuda_version = 1208

        class xFormersInvalidLibException(Exception):
            build_info = _Info()

        logger.warning("WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:\\n"
                       "    PyTorch 2.10.0+cu128 with CUDA 1208 (you have 2.11.0)\\n  Please reinstall xformers\\n"
                       "  Set XFORMERS_MORE_DETAILS=1 for more details")
        _cpp_library_load_exception = xFormersInvalidLibException()
    """,
    "ops.py": "",
}


def test_an_xformers_that_cannot_load_prints_nothing_and_reports_one_line(tmp_path):
    package = tmp_path / "xformers"
    package.mkdir()
    for name, text in FAKE_XFORMERS.items():
        (package / name).write_text(textwrap.dedent(text))
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "import texkit_diffusers;"
        "from texkit_diffusers.attention import xformers_status;"
        "from texkit_diffusers.plugin import check_attention;"
        "print(json.dumps([xformers_status(), check_attention().detail]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING[XFORMERS]" not in done.stderr and "reinstall" not in done.stderr
    status, doctor = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == "xformers 0.0.99 installed but its C++/CUDA kernels do not load (built for torch 2.10.0+cu128 / CUDA 1208; this is torch " + torch.__version__ + ")"
    assert "\n" not in doctor and "PyTorch SDPA (xformers not used: xformers kernels need a CUDA device)" == doctor


@pytest.mark.parametrize("shape", [(2, 16, 10)])
def test_vae_style_attention_with_4d_input_keys_by_pixels(shape):
    """The VAE's attention takes (B, C, H, W): the query length is H x W, one head of C channels."""
    torch.manual_seed(3)
    attn = Attention(query_dim=8, heads=1, dim_head=8, residual_connection=True, bias=True, upcast_softmax=True, _from_deprecated_attn_block=True, norm_num_groups=4)
    table = AttentionTable(CPU, ("flash", "math"))
    attn.set_processor(TunedAttnProcessor(table))
    attn(torch.randn(2, 8, 4, 5))
    assert list(table.timings) == [(2, 1, 20, 20, 8, "float32")]


@pytest.mark.slow
def test_compiled_denoiser_with_tuned_attention_is_one_graph_under_unet_checkpointing(monkeypatch):
    """The tiny generator's UNet + ControlNet with tuned attention compile to one graph (fullgraph), with
    the same loss and gradients as eager: choosing a kernel while Dynamo traces breaks nothing, also
    inside the checkpointed blocks."""
    import importlib.util
    from pathlib import Path

    from texkit_diffusers import compiled

    spec = importlib.util.spec_from_file_location("merged_lora_helpers", Path(__file__).with_name("test_merged_lora.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    _assert_same_loss_and_grads, _paint_loss_and_grads, _trained_generator = helpers._assert_same_loss_and_grads, helpers._paint_loss_and_grads, helpers._trained_generator

    graphs = []
    real_compile = torch.compile

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    monkeypatch.setattr(compiled.torch, "compile", lambda fn, **_: real_compile(fn, backend=counting_backend, fullgraph=True, dynamic=False))
    torch._dynamo.reset()

    def tuned(gen):
        table = AttentionTable(CPU, ("flash", "math"))
        for model in (gen.unet, gen.controlnet):
            model.set_attn_processor(TunedAttnProcessor(table))
        return table

    try:
        want = _paint_loss_and_grads(_trained_generator(merge_lora=True, checkpointing=True, compile="off"))
        gen = _trained_generator(merge_lora=True, checkpointing=True, compile="on")
        table = tuned(gen)
        got = _paint_loss_and_grads(gen)
        assert gen.denoiser.compiled, gen.denoiser.reason  # no graph break: no fallback to eager
        assert len(graphs) == 1
        assert table.timings  # shapes were timed while tracing
        _assert_same_loss_and_grads(got, want)
    finally:
        torch._dynamo.reset()


def test_timing_inside_a_checkpointed_block_leaves_the_checkpoint_intact():
    """A shape first seen inside an activation-checkpointed region (the view loop's per-view checkpoint)
    is timed there; the timing's own autograd work must not be counted into the region's saved tensors
    (its recomputation times nothing, and a different count fails the backward pass)."""
    torch.manual_seed(4)
    attn = Attention(query_dim=16, heads=2, dim_head=8)  # self-attention
    table = AttentionTable(CPU, ("flash", "math"))
    attn.set_processor(TunedAttnProcessor(table))
    x = torch.randn(1, 6, 16, requires_grad=True)
    out = torch.utils.checkpoint.checkpoint(attn, x, use_reentrant=False)
    out.sum().backward()  # raised CheckpointError ("a different number of tensors was saved") before
    assert x.grad is not None and len(table.timings) == 1


def test_timings_are_kept_on_disk_and_a_file_timed_the_old_way_is_timed_again(tmp_path, monkeypatch):
    """The next run on this machine reads the timings back (same choices, same compiled graphs);
    a file written by an older timing method, or an unreadable one, is timed again and replaced."""
    import texkit_diffusers.attention_tuning as tuning

    path = tmp_path / "attention-cpu.json"
    key = (1, 2, 4, 4, 8, "float32")
    fake = {"flash": {"forward_ms": 1.0, "train_ms": 2.0}, "math": {"forward_ms": 3.0, "train_ms": 1.0}}
    timed_calls = []
    monkeypatch.setattr(tuning, "time_attention_kernels", lambda k, d, c: timed_calls.append(k) or fake)
    first = AttentionTable(CPU, ("flash", "math"), path=path)
    first.measure(key)
    stored = json.loads(path.read_text())
    assert stored["timing"] == tuning.TIMING_METHOD and stored["timings"] == {"1,2,4,4,8,float32": fake}

    second = AttentionTable(CPU, ("flash", "math"), path=path)
    second.measure(key)  # read back, not timed again
    assert timed_calls == [key] and second.choice(key, True) == "math" and second.choice(key, False) == "flash"

    path.write_text(json.dumps({**stored, "timing": tuning.TIMING_METHOD - 1}))
    third = AttentionTable(CPU, ("flash", "math"), path=path)
    assert third.timings == {}
    third.measure(key)
    assert timed_calls == [key, key] and json.loads(path.read_text())["timing"] == tuning.TIMING_METHOD

    path.write_text("{not json")
    assert AttentionTable(CPU, ("flash", "math"), path=path).timings == {}
