"""CPU smoke test of benchmarks/gpu/bench_training.py: the full training step with the tiny generator."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "bench_training.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dense_peak_table():
    bench = _load()
    assert bench.dense_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.dense_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.dense_peak_tflops("NVIDIA H200") == 989.0
    assert bench.dense_peak_tflops("Some Other GPU") is None


@pytest.mark.slow
def test_tiny_training_step_benchmark(capsys):
    bench = _load()
    record = bench.main(["--tiny", "--steps", "1", "--mesh", "demo", "--texture-size", "64", "--paths", "front_short"])
    assert capsys.readouterr().out.strip().startswith("{")
    if not torch.cuda.is_available():
        assert record["renderer"] == "torch" and "nvdiffrast" in record["renderer_reason"]
    rows = {row["view_checkpointing"]: row for row in record["results"]}
    assert set(rows) == {True, False}
    for row in rows.values():
        assert "error" not in row, row
        assert row["paint_views"] == 6 and row["reward_views"] == 6
        assert row["seconds"] > 0 and math.isfinite(row["loss"]) and row["flops"] > 0
    # view checkpointing recomputes each painted view's forward pass in backward: more FLOPs, less than twice
    assert rows[False]["flops"] < rows[True]["flops"] < 2 * rows[False]["flops"]


def test_global_flop_counter_matches_flop_counter_mode():
    """The memory-light counter of the GPU benchmark counts what torch's FlopCounterMode counts."""
    from torch.utils.flop_counter import FlopCounterMode

    bench = _load()
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    proj = torch.nn.Linear(8, 8)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)

    def step():
        h = conv(x).flatten(2).transpose(1, 2)  # (2, 64, 8) tokens
        q = proj(h).unflatten(-1, (2, 4)).transpose(1, 2)  # (2, heads 2, 64, 4)
        att = torch.nn.functional.scaled_dot_product_attention(q, q, q)
        (att.square().mean() + torch.bmm(h, h.transpose(1, 2)).mean()).backward()

    reference = FlopCounterMode(display=False)
    with reference:
        step()
    counter = bench.GlobalFlopCounter()
    with counter:
        step()
    # conv fwd 2*2*64*8*27 (+ its weight/input grads), linear fwd/bwd, SDPA fwd/bwd, bmm fwd/bwd: all counted
    assert counter.total == reference.get_total_flops() > 2 * 2 * 64 * 8 * 27
