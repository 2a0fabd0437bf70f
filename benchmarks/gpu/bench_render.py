"""Renders per second of cow.obj through the ``torch`` and ``nvdiffrast`` renderers; prints JSON.

6 views per batch (the reference reward path), 512 and 1024 px, forward only and
forward+backward (gradients to the texture and the camera angles).

    python benchmarks/gpu/bench_render.py [--mesh ../shared/assets/cow.obj] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import texkit
from texkit import Cameras, Mesh


def bench(renderer, mesh, texture, resolution: int, backward: bool, repeats: int) -> float:
    """Views rendered per second (mean over ``repeats`` batches of 6 after one warm-up)."""
    device = mesh.device
    elapsed = 0.0
    for i in range(repeats + 1):
        tex = texture.detach().requires_grad_(backward)
        cams = Cameras.preset("tilted_short", device=device)
        if backward:
            cams.elevation.requires_grad_(True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out = renderer.render(mesh, tex, cams, resolution)
            if backward:
                out.rgb.mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            elapsed += time.perf_counter() - start
    return 6 * repeats / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default=str(Path(__file__).resolve().parents[3] / "shared" / "assets" / "cow.obj"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--renderers", default="torch,nvdiffrast")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mesh = Mesh.load(args.mesh).to(device)
    texture = torch.rand(1024, 1024, 3, device=device)
    results = []
    for name in args.renderers.split(","):
        try:
            renderer = texkit.get_registry().make_renderer(name)
        except texkit.TexkitError as err:
            results.append({"renderer": name, "error": str(err)})
            continue
        for resolution in (512, 1024):
            for backward in (False, True):
                rate = bench(renderer, mesh, texture, resolution, backward, args.repeats)
                results.append({"renderer": name, "resolution": resolution, "backward": backward, "views_per_second": round(rate, 1)})
    print(
        json.dumps(
            {
                "mesh": Path(args.mesh).name,
                "faces": mesh.num_faces,
                "views_per_batch": 6,
                "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "torch": torch.__version__,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
