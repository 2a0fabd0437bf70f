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
