"""One record of issue 29's H100 measurements, read from the committed outputs of its device calls.

The three calls of 2026-12-07 (`benchmarks/gpu/run_throughput.sh`, outputs under
``benchmarks/results/h100_2026-12-07_issue29/call{1,2,3}``) each stopped short of their plan (a
compile failure, a crash, a time limit: the record's ``calls`` say which and why), so the numbers are
read from their logs rather than from one finished record. docs/performance.md's issue-29 tables
quote this record (tests/test_docs_measured_tables.py checks both).

    python benchmarks/gpu/collect_throughput.py > benchmarks/results/throughput_h100.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"
FOLDER = RESULTS / "h100_2026-12-07_issue29"

#: What each call ran (``run_throughput.sh`` step) and how it ended, in words.
CALLS = {
    "call1": (
        "cache_and_b1",
        "the compiled call fell back to eager: Dynamo in torch 2.11 refused the attention table object as an "
        "assume_constant_result argument (fixed: the table is passed by number); `texkit warmup` then failed "
        "with a CheckpointError (attention timing inside the per-view checkpoint; fixed: timing runs in its own "
        "thread); the eager B=1 row and the FLOPs per view completed; the benchmark was stopped at its time limit "
        "in the profile of the (eager) 'compiled' row",
    ),
    "call2": ("cache_b1_generate", "every stage failed at once: torch.cuda.set_device('cuda') is refused by torch 2.11 (fixed)"),
    "call3": (
        "cache_short",
        "`texkit warmup` compiled and cached the B=1 training call; the following `texkit train` was refused "
        "because call 2 had left its run folder on the same (still warm) machine, and the compiled benchmark "
        "row that followed was stopped at the call's time limit, about 78 s into its first compiled call",
    ),
}


def _rows(path: Path, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{") and key in line]


def attention_choices(summary: str) -> list[dict[str, Any]]:
    """Per-shape choices from the generator's attention description (``B x H x Sq x Skv x D: forward K, training K (R x torch's own choice)``)."""
    out = []
    for match in re.finditer(r"(\d+)x(\d+)x(\d+)x(\d+)x(\d+): forward (\w+), training (\w+) \(([\d.]+)x torch's own choice\)", summary):
        batch, heads, q_len, kv_len, head_dim = (int(match.group(i)) for i in range(1, 6))
        out.append(
            {
                "batch": batch,
                "heads": heads,
                "query_length": q_len,
                "key_length": kv_len,
                "head_dim": head_dim,
                "forward_kernel": match.group(6),
                "training_kernel": match.group(7),
                "training_speedup_over_torch_choice": float(match.group(8)),
            }
        )
    return out


def collect() -> dict[str, Any]:
    """The record (see the module docstring)."""
    call1, call3 = FOLDER / "call1", FOLDER / "call3"
    eager = next(r for r in _rows(call1 / "reference.err", '"paint_path"') if r["compile"] == "off")
    per_view = _rows(call1 / "reference.err", '"view_flops"')[0]
    log3 = (call3 / "cache.log").read_text()
    ready = re.search(r"ready in ([\d.]+) s, compiled \((\d+) graph", log3)
    warm = re.search(r"warmup: one training step at batch size (\d+) took ([\d.]+) s", log3)
    size = re.search(r"compile cache: (\S+)", log3)
    train_eager = [json.loads(line)["step_seconds"] for line in (call1 / "train_metrics.jsonl").read_text().splitlines() if line]
    cpu_log = (RESULTS / "compile_cache_cpu_tiny.log").read_text()
    cpu_steps = [float(x) for x in re.findall(r"^\d+ ([\d.]+)$", cpu_log, flags=re.MULTILINE)]
    cpu_cold = re.search(r"ready in ([\d.]+) s, compiled", cpu_log)
    cpu_hit = re.search(r"ready in ([\d.]+) s, loaded from the compile cache \((\d+) graphs\)", cpu_log)
    views = eager["paint_views"]
    return {
        "benchmark": "throughput_issue29",
        "device": (call1 / "gpu.csv").read_text().splitlines()[1].split(",")[0],
        "torch": (call1 / "gpu.csv").read_text().splitlines()[2],
        "date": "2026-12-07",
        "calls": {name: {"step": step, "outcome": outcome} for name, (step, outcome) in CALLS.items()},
        "config": "reference-equivalent (benchmarks/gpu/reference_equivalent.py): rabbit.obj, 6 front_short views, 10 DDIM steps, CFG 7.5, 512 px, 1024 px texture, fp16, view + UNet + ControlNet + VAE checkpointing, batch 1, random full-size SD 1.5 + 6-channel ControlNet, nvdiffrast, attention auto (tuned per shape)",
        "eager_b1": {
            "seconds": eager["seconds"],
            "warmup_seconds": eager["warmup_seconds"],
            "peak_allocated_gib": eager["peak_allocated_gib"],
            "attention": eager["generator"]["attention"],
            "source": "call1/reference.err",
        },
        "flops_per_painted_view": {
            "executed": per_view["executed_per_view"],
            "needed": per_view["needed_per_view"],
            "executed_over_needed": per_view["ratio"],
            "step_executed": per_view["executed_per_view"] * views,
            "step_needed": per_view["needed_per_view"] * views,
            "how": "GlobalFlopCounter over one eager step with 1 painted view: as run (view + UNet + VAE checkpointing) and with all checkpointing off (forward + backward, nothing recomputed)",
            "source": "call1/reference.err",
        },
        "attention_choices": attention_choices(eager["generator"]["attention"]),
        "compile_b1_cold": {
            "forward_graph_seconds": float(ready.group(1)),
            "warmup_step_seconds": float(warm.group(2)),
            "cache_size": size.group(1),
            "source": "call3/cache.log (texkit warmup into an empty cache)",
        },
        "train_eager_fallback_step_seconds": train_eager,
        "cpu_tiny_cache": {
            "cold_forward_graph_seconds": float(cpu_cold.group(1)),
            "second_process_load_seconds": float(cpu_hit.group(1)),
            "second_process_graphs_loaded": int(cpu_hit.group(2)),
            "train_step_seconds": cpu_steps,
            "source": "compile_cache_cpu_tiny.log (texkit warmup, then texkit train of the same config, compile = on, 2-core VM at load 11-17)",
        },
    }


def main() -> None:
    json.dump(collect(), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
