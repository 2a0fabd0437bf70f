"""Fit texkit's step-cost model (texkit/planning.py) to measured training-step benchmarks.

    python benchmarks/fit_step_model.py benchmarks/results/training_h200.json benchmarks/results/training_cpu_tiny.json

Reads records of ``benchmarks/gpu/bench_training.py`` and writes ``texkit/data/step_model.json``:
per (model family, device kind, view checkpointing) a least-squares line in the batch size B of the
seconds per step and (on CUDA) of the peak allocated memory, over the rows measured with the
default settings (VAE checkpointing on, compile off, merged LoRA forward where measured, the record's main mesh).
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


def fit_record(record: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The fits of one benchmark record."""
    family = "tiny" if record["config"] == "tiny" else "sd15"
    device_kind = "cuda" if record.get("dense_fp16_peak_tflops") or "NVIDIA" in record["device"] else "cpu"
    fits = []
    # the generator's default LoRA forward (merged weights) when the record measured it; older records ran peft's
    merged = "on" if any(r.get("merge_lora") == "on" for r in record["results"]) else "off"
    for checkpointing in (True, False):
        rows = [
            r
            for r in record["results"]
            if "seconds" in r
            and r["view_checkpointing"] is checkpointing
            and r.get("vae_checkpointing", "on") == "on"
            and r.get("compile", "off") == "off"
            and r.get("merge_lora", "off") == merged
            and r.get("unet_checkpointing", "on") == "on"
            and r.get("mesh", record.get("mesh")) == record.get("mesh")
        ]
        if not rows:
            continue
        fit = {
            "family": family,
            "device_kind": device_kind,
            "device": record["device"],
            "view_checkpointing": checkpointing,
            "views": rows[0]["paint_views"],
            "steps": record["ddim_steps"],
            "seconds": least_squares([(r.get("batch_size", 1), r["seconds"]) for r in rows]),
            "measured": [
                {"batch_size": r.get("batch_size", 1), "seconds": r["seconds"], "peak_gib": r.get("peak_allocated_gib")} for r in rows
            ],
            "source": source,
        }
        if all(r.get("peak_allocated_gib") for r in rows):
            fit["peak_gib"] = least_squares([(r.get("batch_size", 1), r["peak_allocated_gib"]) for r in rows])
        fits.append(fit)
    return fits


def main(paths: list[str]) -> None:
    fits = [fit for path in paths for fit in fit_record(json.loads(Path(path).read_text()), Path(path).name)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"model": "texkit.planning step model", "fits": fits}, indent=1) + "\n")
    print(f"wrote {OUT} ({len(fits)} fits)")


if __name__ == "__main__":
    main(sys.argv[1:])
