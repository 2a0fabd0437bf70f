"""Textures per minute of ``texkit generate --samples N``: the batched view loop without gradients, eager and compiled.

Builds the session of a run config (as ``texkit generate`` does), then for each batch size N and
each generator ``compile`` mode paints N textures in one batch (`texkit.session.Session.paint_samples`,
what ``texkit generate --samples N`` runs) once untimed (kernel selection, allocator growth; for
``compile = on`` the compilation of the no-gradient denoising call at batch 2N, measured as
``first_call_seconds``) and ``--repeats`` times timed (CUDA-synchronised wall clock).
Textures per minute = N / median seconds x 60. Writing the outputs (PNG, GLB, turntable GIF) is not
included; ``texkit generate`` adds that per sample.

    python benchmarks/gpu/bench_generate.py run.toml --samples 1,8,16 --compile off,on > generate_h100.json
    python benchmarks/gpu/bench_generate.py --tiny --samples 1,2 --compile off   # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tiny_config() -> dict[str, Any]:
    """A small config of the tiny generator on the CPU (smoke test)."""
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase"]},
        "generator": {"name": "tiny", "options": {"steps": 2}},
        "cameras": {"paint": {"elevation": [-20.0, -20.0], "azimuth": [0.0, 180.0]}},
        "texture": {"size": 64, "render_size": 64},
        "device": "cpu",
    }


def measure(session: Any, samples: int, repeats: int) -> dict[str, Any]:
    """One untimed and ``repeats`` timed ``paint_samples(samples)``: seconds, textures/min, peak memory."""
    device = session.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    session.paint_samples(samples)
    _sync(device)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.paint_samples(samples)
        _sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    row: dict[str, Any] = {"samples": samples, "first_call_seconds": first, "seconds": seconds, "all_seconds": times, "textures_per_minute": samples / seconds * 60}
    if device.type == "cuda":
        row["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=None, help="run config (TOML); e.g. from reference_equivalent.py --write-config")
    parser.add_argument("--tiny", action="store_true", help="the tiny generator on the CPU (smoke test)")
    parser.add_argument("--samples", default="8", help="batch sizes N, e.g. 1,8,16")
    parser.add_argument("--compile", default="off,on", help="generator compile modes to measure, in order")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row (median)")
    args = parser.parse_args(argv)
    from texkit.config import load_config, parse_config
    from texkit.session import Session
    from texkit.threads import apply_threads, model_parameters

    if args.tiny:
        config = parse_config(tiny_config())
    elif args.config:
        config = load_config(args.config)
    else:
        raise SystemExit("give a run config, or --tiny")
    began = time.perf_counter()
    session = Session.build(config, need_rewards=False)
    apply_threads(session.device, model_parameters(session.generator), max(config.texture.size, config.texture.render_size) ** 2, 1 if args.tiny else None)
    build_seconds = time.perf_counter() - began
    rows = []
    for mode in [m for m in args.compile.split(",") if m]:
        session.generator.set_compile(mode)
        for samples in [int(n) for n in args.samples.split(",") if n]:
            try:
                row = {"compile": mode, **measure(session, samples, args.repeats)}
            except torch.OutOfMemoryError as err:
                row = {"compile": mode, "samples": samples, "error": f"out of memory: {str(err).strip().splitlines()[0][:200]}"}
                torch.cuda.empty_cache()
            denoiser = getattr(session.generator, "denoiser", None)
            if denoiser is not None:
                row["compile_reason"] = denoiser.reason
                row["compile_seconds_so_far"] = denoiser.compile_seconds
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    describe = getattr(session.generator, "describe", None)
    record = {
        "benchmark": "generate_samples",
        "device": torch.cuda.get_device_name(session.device) if session.device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "generator": describe() if describe else {},
        "paint_views": len(session.angles["paint_elevation"]),
        "texture_size": config.texture.size,
        "build_seconds": build_seconds,
        "timing": f"Session.paint_samples(N) (what `texkit generate --samples N` paints), median of {args.repeats} after one untimed call; outputs not written",
        "results": rows,
    }
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
