"""One record of issue 29's H100 measurements, read from the committed outputs of its device calls.

The eight calls of 2026-12-07 (`benchmarks/gpu/run_throughput.sh`, `debug_compile_cache.sh`,
`check_attention_timing.py`; outputs under ``benchmarks/results/h100_2026-12-07_issue29/callN``) each
did part of the plan, and several stopped short of it (a compile failure, a crash, a time limit, a bug
they found: the record's ``calls`` say which and why), so the numbers are read from their logs
rather than from one finished record. docs/performance.md's issue-29 tables
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
    "call4": (
        "cache_short",
        "`texkit warmup` compiled the B=1 training call into an empty cache (77.3 s for the forward graph); the "
        "following `texkit train` compiled it again (57.8 s, 'compiled (1 graph, now cached)'): the cache did not "
        "serve a second process on the GPU; the call's time limit stopped the train during its first step",
    ),
    "call5": (
        "debug_compile_cache.sh",
        "the tiny generator on CUDA, `texkit warmup` twice and `texkit train` once with torch's cache-key logs: the "
        "FX-graph cache bypassed every training graph ('Can't cache HigherOrderOperator: "
        "graphsafe_run_with_rng_state', the wrapper torch 2.11 puts around random ops recomputed under "
        "activation checkpointing, here SDPA's kernels), and one step compiled 3-4 graphs of the same shape that "
        "differed only in which inputs required grad (aot_key_diff_*.txt). Fixed: the older, cacheable RNG "
        "wrapper where the graph-safe one is not cacheable (texkit.compile_cache), and latents and condition "
        "always enter the compiled training call as requiring grad (texkit_diffusers.compiled)",
    ),
    "call6": (
        "cache_fixed",
        "with both fixes: `texkit warmup` compiled one forward graph (95.7 s) and its backward into an empty cache "
        "(stopped by the call's 200 s limit just after writing the cache entry); `texkit train` of the same "
        "config, a new process, loaded both graphs from the cache in 15.4 s and ran 3 steps; then `texkit "
        "generate --samples 8` eager and compiled. Its attention timings (0.56-1.01x torch's own choice) showed a "
        "bias in the tuner's timing, fixed for call 7",
    ),
    "call7": (
        "check_attention_timing.py",
        "the attention tuner's timings of SD 1.5's shapes at 512 px, batch 2 and 16, as it now times (blocks of 4 "
        "calls inside one kernel context, candidates taking turns); calls 1 and 6 timed one call per context "
        "enter, which charged forced kernels a host cost torch's own choice did not pay",
    ),
    "call8": (
        "profiles (BATCHES=1,11)",
        "the compiled step at batch 1, profiled (after 5 refused starts; H100s and H200s were not to be had for "
        "an hour); the batch-11 row was stopped by the call's time limit while compiling. Its profile summary "
        "counted the texkit:: ranges that torch.profiler repeats on the GPU timeline as kernels (12.2 s of "
        "'kernels', 10.0 s 'busy'); profile_summary.py is fixed and this record subtracts them (the kernels' "
        "own total, 4.36 s, is torch's 'Self CUDA time total' in the same log)",
    ),
    "call9": (
        "grads cudagraphs (commit d11514b)",
        "compiled vs eager gradients on CUDA (benchmarks/gpu/check_compiled_grads.py, the check written after the "
        "CPU's Inductor gave zero gradients through the tiny UNet's first up block): equal on the H100; then the "
        "compiled B=1 step with the generator option cuda_graphs (CUDA Graph Trees, reentrant view checkpointing, "
        "since removed): both graphs compiled (training 74.9 s, no-grad 60.8 s), then recording the backward graph "
        "inside the reentrant recomputation failed ('These storage data ptrs are not allocated in pool')",
    ),
    "call10": (
        "layout_compiled (LAYOUT_BATCH=8), then cudagraphs (GRAPHS_MODES=on VIEW_CHECKPOINTING=off, commit d11514b)",
        "the compiled B=8 step with memory_format contiguous, then channels_last, same process; then CUDA graphs "
        "without view checkpointing: torch warned 'Unable to hit fast path of CUDAGraphs because of pending, "
        "uninvoked backwards' (the denoising loop calls the same graph 60 times before the backward pass) and the "
        "step did not finish within the call's time limit",
    ),
    "call11": ("layout (LAYOUT_BATCH=1)", "the eager B=1 step, memory_format contiguous then channels_last, same process"),
    "call12": (
        "precompile_or_aot.sh",
        "the device's torch 2.11.0+cu130 has load_compiled_function but no aot_compile on a compiled function: the "
        "generator option precompile is unavailable there (aot.jsonl)",
    ),
    "call13": (
        "b1_levers",
        "the compiled B=1 step with UNet checkpointing off, alone in a fresh process; the C++-wrapper row after it "
        "was stopped by the call's time limit while compiling",
    ),
    "call14": (
        "b1_levers (UNET_CKPT=on,off CPP=off)",
        "UNet checkpointing on, then off, in one process; Dynamo compiled the off graph again inside the second "
        "row's warm-up (not reported as a first call then; set_checkpointing now starts a new denoising call), and "
        "that row ran 4.2 s slower than the same setting alone in call 13",
    ),
    "call15": ("b1_levers (CPP=off)", "the repeat of call 13 on another machine: UNet checkpointing off, alone in a fresh process"),
    "call16": ("b1_levers (UNET_CKPT=on CPP=off)", "the same machine as call 15 right after it: UNet checkpointing on, alone in a fresh process"),
    "call17": (
        "b1_levers (CPP=on)",
        "the same machine: UNet checkpointing off with the C++ wrapper; its first compiled call had not finished after "
        "more than 520 s of compiling when the call's time limit stopped it (169 s with the Python wrapper, call 15)",
    ),
}


def layout_rows(path: Path) -> dict[str, dict[str, Any]]:
    """A `run_throughput.sh layout` / `layout_compiled` record: step seconds and peak memory per memory format."""
    rows = json.loads(path.read_text())["results"]
    keep = ("seconds", "warmup_seconds", "peak_allocated_gib", "batch_size", "compile", "memory_format", "grad_norm")
    return {row["memory_format"].split(" ")[0]: {key: row[key] for key in keep} for row in rows}


def unet_checkpointing_rows(folder: Path) -> dict[str, Any]:
    """Calls 13-16: the compiled B=1 step with UNet (+ ControlNet) checkpointing on and off, each row's
    position in its process (a row measured second ran in a process that held the first row's graphs);
    calls 15 and 16 are one machine, each setting alone in a fresh process."""
    keep = ("seconds", "warmup_seconds", "peak_allocated_gib", "compile_seconds", "unet_checkpointing", "cpp_wrapper", "batch_size", "paint_views", "view_checkpointing")

    def rows(call: str) -> list[dict[str, Any]]:  # the err log's JSON lines (its progress bars hold other line breaks)
        text = (folder / call / "b1_levers.err").read_text()
        return [json.loads(line) for line in text.split("\n") if line.startswith('{"paint_path"')]

    def row(data: dict[str, Any], source: str) -> dict[str, Any]:
        return {**{key: data[key] for key in keep}, "source": source}

    (alone,), (first, second), (off, ), (on,) = rows("call13"), rows("call14"), rows("call15"), rows("call16")
    return {
        "off_alone": row(alone, "call13/b1_levers.err (first row of its process)"),
        "on_first": row(first, "call14/b1_levers.err (first row of its process)"),
        "off_second": row(second, "call14/b1_levers.err (second row, same process)"),
        "same_machine_off": row(off, "call15/b1_levers.err (alone in its process)"),
        "same_machine_on": row(on, "call16/b1_levers.err (alone in its process, same machine as call 15)"),
        "same_machine_speedup": on["seconds"] / off["seconds"],
        "setting": {key: json.loads((folder / "call15" / "b1_levers.json").read_text())[key] for key in ("ddim_steps", "truncation", "diffusion_resolution", "mixed_precision", "device")},
    }


def compiled_gradients(path: Path) -> list[dict[str, Any]]:
    """`check_compiled_grads.py`'s lines: compiled vs eager gradients on the device."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _rows(path: Path, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{") and key in line]


def _attention_rows(path: Path) -> list[dict[str, Any]]:
    """Call 7's per-shape timings as the docs table's rows, each choice made by the tuner's rule of now
    (`AttentionTable.choice`: the fastest of the forced kernels and torch's own choice; call 7 itself
    ran the rule before torch's own choice became a candidate)."""
    import torch
    from texkit_diffusers.attention_tuning import TORCH_DEFAULT, AttentionTable

    table = AttentionTable(torch.device("cpu"))
    rows = []
    for row in json.loads(path.read_text())["rows"]:
        batch, heads, q_len, kv_len, head_dim = row["shape"]
        key = (batch, heads, q_len, kv_len, head_dim, "float16")
        timed = table.timings[key] = {name: t for name, t in row["timings"].items() if "train_ms" in t}
        training = table.choice(key, training=True)
        rows.append(
            {
                "batch": batch,
                "heads": heads,
                "query_length": q_len,
                "key_length": kv_len,
                "head_dim": head_dim,
                "forward_kernel": table.choice(key, training=False),
                "training_kernel": training,
                "training_speedup_over_torch_choice": round(timed[TORCH_DEFAULT]["train_ms"] / timed[training]["train_ms"], 2),
                "train_ms": {name: round(t["train_ms"], 4) for name, t in timed.items()},
            }
        )
    return rows


def cache_on_h100(call: Path) -> dict[str, Any]:
    """Call 6: the cold warmup, then a second process's load and its steps (the first-step ratio)."""
    log = (call / "cache.log").read_text(errors="replace")
    cold = re.search(r"ready in ([\d.]+) s, compiled \((\d+) graph", log)
    hit = re.search(r"ready in ([\d.]+) s, loaded from the compile cache \((\d+) graphs\)", log)
    steps = [json.loads(line)["step_seconds"] for line in (call / "train_metrics.jsonl").read_text().splitlines() if line]
    steady = sum(steps[1:]) / len(steps[1:])
    return {
        "cold_forward_graph_seconds": float(cold.group(1)),
        "cold_graphs_compiled_by_the_first_call": int(cold.group(2)),
        "second_process_load_seconds": float(hit.group(1)),
        "second_process_graphs_loaded": int(hit.group(2)),
        "cache_size": re.search(r"compile cache: (\S+)", log).group(1),
        "train_step_seconds": steps,
        "steady_step_seconds": steady,
        "first_over_steady": steps[0] / steady,
        "source": "call6/cache.log, call6/train_metrics.jsonl (texkit train of the reference-equivalent config, compile auto, after texkit warmup)",
    }


def generate_on_h100(call: Path) -> dict[str, Any]:
    """Call 6: ``texkit generate --samples 8`` (Session.paint_samples), eager and compiled."""
    record = json.loads((call / "generate.json").read_text())
    return {
        row["compile"]: {key: row[key] for key in ("samples", "seconds", "textures_per_minute", "first_call_seconds", "peak_allocated_gib", "compile_seconds_so_far")}
        for row in record["results"]
    } | {"source": "call6/generate.json (bench_generate.py, reference-equivalent config)"}


def compiled_b1_profile(call: Path) -> dict[str, Any]:
    """Call 8's profiled compiled batch-1 step, with the GPU-side annotation ranges taken out of its summary."""
    err = (call / "profiles.err").read_text()
    row = next(r for r in _rows(call / "profiles.err", '"profile"') if r["compile"] == "on" and r["batch_size"] == 1)
    summary = row["profile"]["summary"]
    kernels = float(re.search(r"Self CUDA time total: ([\d.]+)s", err).group(1))
    annotations = summary["kernel_seconds"] - kernels  # the texkit:: ranges the old summary counted as kernels
    by_family = dict(summary["by_family"])
    by_family["other"] = max(0.0, by_family["other"] - annotations)
    by_phase = dict(summary["by_phase"])
    by_phase["unattributed"] = max(0.0, by_phase["unattributed"] - annotations)
    ready = re.search(r"ready in ([\d.]+) s \(tracing ([\d.]+) s, compiling or loading ([\d.]+) s, the rest ([\d.]+) s\)", err)
    return {
        "step_seconds": row["seconds"],
        "warmup_seconds": row["warmup_seconds"],
        "peak_allocated_gib": row["peak_allocated_gib"],
        "profiled_step_wall_seconds": summary["wall_seconds"],
        "kernel_seconds": kernels,
        "kernel_share_of_step": kernels / row["seconds"],
        "kernel_launches": summary["kernel_launches"],
        "by_family": {k: v for k, v in sorted(by_family.items(), key=lambda kv: -kv[1]) if v > 1e-3},
        "by_phase": {k: v for k, v in sorted(by_phase.items(), key=lambda kv: -kv[1]) if v > 1e-3},
        "layout_copy_share": by_family["layout_copy"] / kernels,
        "cold_compile": {
            "ready_seconds": float(ready.group(1)),
            "tracing_seconds": float(ready.group(2)),
            "compiling_seconds": float(ready.group(3)),
            "rest_seconds": float(ready.group(4)),
        },
        "source": "call8/profiles.err (bench_training.py via reference_equivalent.py --compile on --profile-at on@1; "
        "summary corrected for the GPU annotation ranges, see calls.call8)",
    }


def collect() -> dict[str, Any]:
    """The record (see the module docstring)."""
    call1, call3 = FOLDER / "call1", FOLDER / "call3"
    cache = cache_on_h100(FOLDER / "call6")
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
        "attention_choices": _attention_rows(FOLDER / "call7" / "attention_timing.json"),
        "attention_choices_source": "call7/attention_timing.json (the tuner's timing since call 7; calls 1 and 6 recorded the biased timing)",
        "compile_cache_h100": cache,
        "compiled_b1_step_seconds": cache["steady_step_seconds"],
        "generate_samples_8": generate_on_h100(FOLDER / "call6"),
        "compiled_b1_profile": compiled_b1_profile(FOLDER / "call8"),
        "compiled_gradients_h100": {"checks": compiled_gradients(FOLDER / "call9" / "grads.jsonl"), "source": "call9/grads.jsonl"},
        "layout_compiled_b8": {**layout_rows(FOLDER / "call10" / "layout_compiled.json"), "source": "call10/layout_compiled.json"},
        "layout_eager_b1": {**layout_rows(FOLDER / "call11" / "layout.json"), "source": "call11/layout.json"},
        "unet_checkpointing_b1": unet_checkpointing_rows(FOLDER),
        "precompile_on_device": json.loads((FOLDER / "call12" / "aot.jsonl").read_text().split("\n")[0]) | {"source": "call12/aot.jsonl"},
        "compile_b1_cold": {
            "forward_graph_seconds": float(ready.group(1)),
            "warmup_step_seconds": float(warm.group(2)),
            "cache_size": size.group(1),
            "source": "call3/cache.log (texkit warmup into an empty cache; that step also compiled 2-3 more graphs of the same shape, see call5)",
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
