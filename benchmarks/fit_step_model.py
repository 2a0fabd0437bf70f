"""Fit texkit's step-cost model (texkit/planning.py) to measured training-step benchmarks.

    python benchmarks/fit_step_model.py benchmarks/results/training_h200.json benchmarks/results/training_cpu_tiny.json \
        benchmarks/results/throughput_h100.json

Reads records of ``benchmarks/gpu/bench_training.py`` and writes ``texkit/data/step_model.json``:
per (model family, device kind, view checkpointing, compiled or eager denoising call) the seconds per
step as ``max(floor, s0 + s1 B)`` in the batch size B (a host-bound floor at small B, then a line;
`floor_and_line`) and (on CUDA) a least-squares line of the peak allocated memory, over the rows
measured with the default settings (VAE checkpointing on, merged LoRA forward where measured, the
record's main mesh). A setting needs two batch sizes to be fitted. From the issue-29 record
(``benchmarks/gpu/collect_throughput.py``) it takes what turning UNet checkpointing off changes
(`unet_checkpointing_effect`), which the planner adds to any fit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "texkit" / "data" / "step_model.json"


def least_squares(points: list[tuple[float, float]]) -> tuple[float, float]:
    """``(intercept, slope)`` of the least-squares line through ``(x, y)`` points (one point: slope 0)."""
    n = len(points)
    if n == 1:
        return points[0][1], 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - slope * mx, slope


def floor_and_line(points: list[tuple[float, float]]) -> tuple[float, tuple[float, float]]:
    """``(floor, (s0, s1))`` minimising the squared error of ``max(floor, s0 + s1 x)`` over the points.

    The points sorted by x are split in two: the first k (k = 0 .. n - 2) set the floor (their mean;
    0 when k = 0), the rest the least-squares line; the split with the least error wins. A training
    step at small batches costs the host's time to issue its calls whatever B is (the floor); past
    that, the GPU's work grows with B (the line).
    """
    points = sorted(points)
    best: tuple[float, float, tuple[float, float]] | None = None
    for k in range(0, len(points) - 1):
        floor = sum(y for _, y in points[:k]) / k if k else 0.0
        line = least_squares(points[k:])
        error = sum((max(floor, line[0] + line[1] * x) - y) ** 2 for x, y in points)
        if best is None or error < best[0] - 1e-12:
            best = (error, floor, line)
    assert best is not None
    return best[1], best[2]


def fit_record(record: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The fits of one benchmark record."""
    family = "tiny" if record["config"] == "tiny" else "sd15"
    device_kind = "cuda" if record.get("dense_fp16_peak_tflops") or "NVIDIA" in record["device"] else "cpu"
    fits = []
    # the generator's default LoRA forward (merged weights) when the record measured it; older records ran peft's
    merged = "on" if any(r.get("merge_lora") == "on" for r in record["results"]) else "off"
    for compiled in (False, True):
        for checkpointing in (True, False):
            rows = [
                r
                for r in record["results"]
                if "seconds" in r
                and r["view_checkpointing"] is checkpointing
                and r.get("vae_checkpointing", "on") == "on"
                and (r.get("compile", "off") != "off") is compiled
                and r.get("merge_lora", "off") == merged
                and r.get("unet_checkpointing", "on") == "on"
                and r.get("mesh", record.get("mesh")) == record.get("mesh")
            ]
            if len({r.get("batch_size", 1) for r in rows}) < 2:
                continue  # one batch size gives no slope: the planner falls back to another setting's fit
            floor, line = floor_and_line([(r.get("batch_size", 1), r["seconds"]) for r in rows])
            fit = {
                "family": family,
                "device_kind": device_kind,
                "device": record["device"],
                "view_checkpointing": checkpointing,
                "compiled": compiled,
                "views": rows[0]["paint_views"],
                "steps": record["ddim_steps"],
                "seconds": line,
                "floor_seconds": floor,
                "measured": [
                    {"batch_size": r.get("batch_size", 1), "seconds": r["seconds"], "peak_gib": r.get("peak_allocated_gib")} for r in rows
                ],
                "source": source,
            }
            if compiled:
                fit["compile_seconds"] = max(r.get("compile_seconds", 0.0) for r in rows)
            if all(r.get("peak_allocated_gib") for r in rows):
                fit["peak_gib"] = least_squares([(r.get("batch_size", 1), r["peak_allocated_gib"]) for r in rows])
            fits.append(fit)
    return fits


def unet_checkpointing_effect(record: dict[str, Any], source: str) -> dict[str, Any]:
    """What turning UNet (+ ControlNet) checkpointing off changed in one machine's compiled step, each
    setting alone in a fresh process (issue-29 record, ``unet_checkpointing_b1``).

    The activations checkpointing would recompute are kept instead, for every denoising step that
    carries a graph of the view being backpropagated: ``extra_peak_gib_per_sample_and_step`` is the
    peak difference over batch size and graph-carrying DDIM steps. ``seconds_factor`` is the step time
    off over on (measured at batch 1 only).
    """
    section = record["unet_checkpointing_b1"]
    on, off, setting = section["same_machine_on"], section["same_machine_off"], section["setting"]
    assert on["batch_size"] == off["batch_size"] and on["view_checkpointing"] and off["view_checkpointing"]
    assert setting["truncation"] == "all"  # every DDIM step carries a graph
    steps = setting["ddim_steps"]
    return {
        "extra_peak_gib_per_sample_and_step": (off["peak_allocated_gib"] - on["peak_allocated_gib"]) / (off["batch_size"] * steps),
        "seconds_factor": off["seconds"] / on["seconds"],
        "batch_size": off["batch_size"],
        "steps": steps,
        "views": off["paint_views"],
        "resolution": setting["diffusion_resolution"],
        "device": setting["device"],
        "source": f"{source}: unet_checkpointing_b1, {off['source']} and {on['source']}",
    }


def main(paths: list[str]) -> None:
    fits: list[dict[str, Any]] = []
    model: dict[str, Any] = {"model": "texkit.planning step model"}
    for path in paths:
        record = json.loads(Path(path).read_text())
        if record.get("benchmark") == "throughput_issue29":
            model["unet_checkpointing_off"] = unet_checkpointing_effect(record, Path(path).name)
        else:
            fits += fit_record(record, Path(path).name)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({**model, "fits": fits}, indent=1) + "\n")
    print(f"wrote {OUT} ({len(fits)} fits" + (", UNet checkpointing off effect" if "unet_checkpointing_off" in model else "") + ")")


if __name__ == "__main__":
    main(sys.argv[1:])
