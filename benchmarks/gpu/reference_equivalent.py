"""The reference implementation's training step, run by texkit, and its seconds per sample.

The reference (the method's original code) was timed outside this project, on the same GPUs, with
its own defaults: rabbit.obj, the 6 ``front_short`` painting views, 10 DDIM steps, CFG 7.5, 512 px
views, 1024 px texture, fp16, full backpropagation (truncation all), per-view + UNet + ControlNet +
VAE gradient checkpointing, batch 1, random full-size SD 1.5 + depth-aware inpainting ControlNet
weights: **26.5 s per step on an H100** (after a 35.5 s warm-up, 13.9 GiB) and **30.2 s on an H200**
(30.2-34.6 s over two sessions) — `REFERENCE_SECONDS`. This script runs texkit with the same
settings (`benchmarks/gpu/bench_training.py`'s step, learnable painting cameras, rewards
curvature_color + symmetry, nvdiffrast) and prints seconds per sample beside those figures:

    python benchmarks/gpu/reference_equivalent.py                       # eager and compiled, batch 1
    python benchmarks/gpu/reference_equivalent.py --batch-size 1,8 --compile on
    python benchmarks/gpu/reference_equivalent.py --write-config run.toml --model /tmp/sd15  # the same run for `texkit train`

The last form writes the run config instead (for ``texkit warmup`` / ``train`` / ``generate``), with
``compile = "auto"`` (the default) and the model folder saved by ``bench_scaling.py --prepare``.
Other arguments go to ``bench_training.py`` as they are (e.g. ``--profile-at on@1 --view-flops``).
The record (JSON) goes to stdout, the per-sample lines to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_training  # noqa: E402

#: The reference's seconds per batch-1 step, measured outside texkit (docs/performance.md).
REFERENCE_SECONDS = {"H100": 26.5, "H200": 30.2}

#: bench_training arguments that make its step the reference's.
REFERENCE_ARGS = ["--paths", "front_short", "--view-checkpointing", "on", "--vae-checkpointing", "on", "--unet-checkpointing", "on"]


def rabbit() -> str:
    """rabbit.obj of the shared assets (beside the repository, or the carried .assets)."""
    cow = Path(bench_training.default_mesh())
    if cow.name != "cow.obj":
        raise SystemExit("rabbit.obj not found: copy ../shared/assets to .assets (see benchmarks/gpu/README.md)")
    return str(cow.with_name("rabbit.obj"))


def reference_config(model: str, out: str, batch_size: int = 1, device: str = "cuda") -> dict[str, Any]:
    """The texkit run config of the reference's step (a dict `texkit.config.parse_config` reads)."""
    base = bench_training.base_config(model, str(Path(model) / "controlnet"), 512, 10, 1024, "auto", rabbit(), device, out)
    cfg = bench_training.run_config(base, "front_short", "tilted_short", "fp16", "nvdiffrast")
    cfg["generator"]["options"]["compile"] = "auto"
    cfg["training"].update({"batch_size": batch_size, "view_checkpointing": True, "unet_checkpointing": True})
    return cfg


def per_sample_lines(record: dict[str, Any]) -> list[str]:
    """One line per measured row: seconds per sample, and how that compares with the reference's."""
    device = record.get("device", "")
    reference = next((s for key, s in REFERENCE_SECONDS.items() if key in device), None)
    lines = []
    for row in record["results"]:
        if "seconds" not in row:
            lines.append(f"{row.get('compile', 'off')} B={row.get('batch_size', 1)}: {row.get('error', 'not measured')}")
            continue
        per_sample = row["seconds"] / row.get("batch_size", 1)
        layout = f", {row['memory_format']}" if "memory_format" in row else ""
        layout += ", UNet checkpointing off" if row.get("unet_checkpointing") == "off" else ""
        layout += ", C++ wrapper" if row.get("cpp_wrapper") == "on" else ""
        line = f"{'compiled' if row.get('compile', 'off') != 'off' else 'eager'} B={row.get('batch_size', 1)}{layout}: {per_sample:.2f} s per sample ({row['seconds']:.2f} s per step)"
        if reference:
            line += f"; reference {reference} s per sample on this GPU kind, measured outside texkit: {reference / per_sample:.2f}x"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-config", default=None, help="write the equivalent texkit run config (TOML) here and exit")
    parser.add_argument("--model", default=None, help="saved random full-size model folder (bench_scaling.py --prepare)")
    parser.add_argument("--out-dir", default="runs/reference-equivalent", help="output.dir of the written config")
    parser.add_argument("--batch-size", default="1")
    parser.add_argument("--compile", default="off,on")
    args, rest = parser.parse_known_args(argv)
    if args.write_config:
        from texkit.config import parse_config, to_toml

        if not args.model:
            raise SystemExit("--write-config needs --model FOLDER (python benchmarks/gpu/bench_scaling.py --prepare FOLDER)")
        cfg = parse_config(reference_config(args.model, args.out_dir, int(args.batch_size.split(",")[0])))
        Path(args.write_config).write_text(to_toml(cfg))
        return None
    bench_args = [*REFERENCE_ARGS, "--mesh", rabbit(), "--batch-size", args.batch_size, "--compile", args.compile, *rest]
    if args.model:
        bench_args += ["--model", args.model]
    record = bench_training.main(bench_args)  # prints the record (stdout)
    for line in per_sample_lines(record):
        print(line, file=sys.stderr)
    return record


if __name__ == "__main__":
    main()
