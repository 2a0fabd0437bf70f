"""Camera-angle gradients of antialiased renders versus central finite differences, per renderer.

Usage (GPU machine, both renderers): ``python camera_gradient_fd_check.py [assets_dir] > out.json``.
For the cow and the ``tilted_short`` path it prints, for each renderer and each loss, the analytic
gradient with respect to the 12 camera angles, central differences with steps of 0.5 and 1 degree,
and the cosine similarity between them. Losses: ``rgb * random weights`` (the parity test's loss)
and ``alpha * smooth ramp`` (silhouette only, smoother finite differences).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import texkit
from texkit import Cameras, Mesh

ELEV = [0.0, -25, -25, -15, -25, -25]
AZIM = [0.0, 95, 135, 180, -135, -95]


def main() -> None:
    assets = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "assets"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = Mesh.load(assets / "cow.obj").to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    texture = torch.rand(256, 256, 3, device=device, generator=gen)
    weights = torch.rand(6, 256, 256, 3, device=device, generator=gen)
    ramp = torch.linspace(0, 1, 256, device=device)
    ramp = (ramp.view(1, 1, 256, 1) + 0.5 * ramp.view(1, 256, 1, 1)).expand(6, 256, 256, 1)
    names = ["torch", "torch_walk1"] + (["nvdiffrast"] if device == "cuda" else [])
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "results": []}
    for name in names:
        options = {"aa_walk_steps": 1} if name == "torch_walk1" else {}
        renderer = texkit.get_registry().make_renderer(name.split("_")[0], **options)
        for loss_name in ("rgb_random", "alpha_ramp"):

            def loss(angles: torch.Tensor, renderer=renderer, loss_name=loss_name) -> torch.Tensor:
                cams = Cameras(angles[6:], angles[:6], torch.full((6,), 2.5, device=device), torch.full((6,), 50.0, device=device))
                out = renderer.render(mesh, texture, cams, 256, antialias=True)
                return (out.rgb * weights).sum() if loss_name == "rgb_random" else (out.alpha * ramp).sum()

            angles = torch.tensor(ELEV + AZIM, device=device, requires_grad=True)
            (grad,) = torch.autograd.grad(loss(angles), angles)
            entry = {"renderer": name, "loss": loss_name, "grad": grad.tolist()}
            for h in (0.5, 1.0):
                fd = torch.zeros(12, device=device)
                with torch.no_grad():
                    for i in range(12):
                        step = torch.zeros(12, device=device)
                        step[i] = h
                        fd[i] = (loss(angles.detach() + step) - loss(angles.detach() - step)) / (2 * h)
                entry[f"fd_{h}"] = fd.tolist()
                entry[f"cos_fd_{h}"] = torch.nn.functional.cosine_similarity(grad, fd, dim=0).item()
            report["results"].append(entry)
            print(name, loss_name, {k: round(v, 4) for k, v in entry.items() if k.startswith("cos")}, file=sys.stderr)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
