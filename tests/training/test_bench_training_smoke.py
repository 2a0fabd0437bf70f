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
        if "warmup_seconds" in row:  # the warm-up step's loss and gradient norm, before that row's optimizer steps
            assert math.isfinite(row["warmup_loss"]) and row["warmup_grad_norm"] >= 0
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


def test_the_committed_h200_record_is_the_documented_merge(monkeypatch, capsys):
    """training_h200.json = `--merge` of the committed outputs, logs of stopped runs included (docs/performance.md)."""
    import json

    bench = _load()
    folder = SCRIPT.parents[1] / "results" / "h200_2026-11-30" / "session3"
    monkeypatch.chdir(folder)
    names = ["training_h200_session2.json", "table_gpu0.log", "table_gpu1.json", "fill_gpu0.json", "fill_gpu1.log", "fill_rabbit.json"]
    record = bench.main(["--merge", *names, "--notes-file", "notes.txt"])
    capsys.readouterr()
    assert record == json.loads((SCRIPT.parents[1] / "results" / "training_h200.json").read_text())
    from_logs = [r for r in record["results"] if r["source"].endswith(".log")]
    assert {r["source"] for r in from_logs} == {"table_gpu0.log", "fill_gpu1.log"}
    assert all("samples_per_second" in r for r in from_logs)
    assert sum("read from its log" in note for note in record["notes"]) == 2


def test_a_log_alone_cannot_be_merged(tmp_path):
    bench = _load()
    log = tmp_path / "run.log"
    log.write_text('renderer torch (ok)\n{"paint_path": "front_short", "view_checkpointing": true, "batch_size": 1, "seconds": 1.0}\n')
    with pytest.raises(SystemExit, match="no record header"):
        bench.read_records([str(log)])
