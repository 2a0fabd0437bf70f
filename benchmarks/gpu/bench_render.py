"""Renders per second of cow.obj through the ``torch`` and ``nvdiffrast`` renderers; writes JSON.

6 views per batch (the ``tilted_short`` reward path), 512 and 1024 px, a 1024 px texture, forward
only and forward+backward (gradients to the texture and to both camera angles). Each number is the
median over ``--repeats`` timed batches after ``--warmup`` untimed ones, with CUDA synchronised
around every batch.

    python benchmarks/gpu/bench_render.py [--out benchmarks/results/render_h100.json]
        [--mesh ../shared/assets/cow.obj] [--repeats 20] [--warmup 3] [--renderers torch,nvdiffrast]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

import torch

import texkit
from texkit import Cameras, Mesh

VIEWS_PER_BATCH = 6
RESOLUTIONS = (512, 1024)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batches(renderer, mesh: Mesh, texture: torch.Tensor, resolution: int, backward: bool, repeats: int, warmup: int) -> list[float]:
    """Seconds per batch of 6 views, for ``repeats`` batches after ``warmup`` untimed ones."""
    device = mesh.device
    seconds = []
    for i in range(warmup + repeats):
        tex = texture.detach().requires_grad_(backward)
        cams = Cameras.preset("tilted_short", device=device)
        if backward:
            cams.elevation.requires_grad_(True)
            cams.azimuth.requires_grad_(True)
        _sync(device)
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out = renderer.render(mesh, tex, cams, resolution)
            if backward:
                out.rgb.mean().backward()
        _sync(device)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def _environment(device: torch.device) -> dict:
    env = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }
    for dist in ("diffrp-nvdiffrast", "texkit-torch-render", "texkit-nvdiffrast"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = None
    return env


def run(mesh_path: str, renderers: list[str], repeats: int, warmup: int) -> dict:
    """All measurements as one JSON-ready dict."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mesh = Mesh.load(mesh_path).to(device)
    texture = torch.rand(1024, 1024, 3, device=device, generator=torch.Generator(device=device).manual_seed(0))
    results = []
    for name in renderers:
        try:
            renderer = texkit.get_registry().make_renderer(name)
        except texkit.TexkitError as err:
            results.append({"renderer": name, "error": str(err)})
            continue
        for resolution in RESOLUTIONS:
            for backward in (False, True):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                seconds = time_batches(renderer, mesh, texture, resolution, backward, repeats, warmup)
                median = statistics.median(seconds)
                row = {
                    "renderer": name,
                    "resolution": resolution,
                    "backward": backward,
                    "views_per_second": round(VIEWS_PER_BATCH / median, 1),
                    "ms_per_batch_median": round(1000 * median, 3),
                    "ms_per_batch_min": round(1000 * min(seconds), 3),
                    "ms_per_batch_max": round(1000 * max(seconds), 3),
                }
                if device.type == "cuda":
                    row["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                results.append(row)
    return {
        "benchmark": "render",
        "mesh": Path(mesh_path).name,
        "faces": mesh.num_faces,
        "views_per_batch": VIEWS_PER_BATCH,
        "texture_size": 1024,
        "repeats": repeats,
        "warmup": warmup,
        **_environment(device),
        "results": results,
        # The full fine-tuning step (generate + render + reward + backward) is measured by
        # benchmarks/gpu/bench_training.py once the trainer exists; see benchmarks/gpu/README.md.
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_mesh = Path(__file__).resolve().parents[3] / "shared" / "assets" / "cow.obj"
    parser.add_argument("--mesh", default=str(default_mesh))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--renderers", default="torch,nvdiffrast")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    report = run(args.mesh, args.renderers.split(","), args.repeats, args.warmup)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
