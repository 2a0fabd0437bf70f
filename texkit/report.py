"""Run outputs: config and versions record, painted textures, view grids, GLB, reward curves, report.html."""

from __future__ import annotations

import html
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from texkit.cameras import Cameras
from texkit.config import RunConfig
from texkit.imageio import image_grid, write_image
from texkit.io import atomic_write_text
from texkit.registry import get_registry

__all__ = ["write_run_record", "paint_outputs", "plot_curves", "write_report", "EVAL_SEED"]

EVAL_SEED = 1234  # fixed seed of the before/after textures


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_record(run_dir: Path, config: RunConfig) -> None:
    """``config.json`` (the validated config) and ``versions.json`` (python, torch, texkit, plugins, git commit)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", config.model_dump_json(indent=2) + "\n")
    versions: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "git_commit": _git_commit()}
    for dist in ("texkit", "diffusers", "transformers", "peft"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    versions["plugins"] = get_registry().versions()
    atomic_write_text(run_dir / "versions.json", json.dumps(versions, indent=2) + "\n")


def paint_outputs(session: Any, folder: Path, seed: int = EVAL_SEED) -> dict[str, Path]:
    """Paint the texture of the first prompt with a fixed seed and write texture.png, views.png, mesh.glb."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(session.angles["paint_elevation"])
    with torch.no_grad():
        texture = session.paint(session.prompts[0], [seed + k for k in range(n)])
        grid_cams = Cameras.orbit(session.config.output.grid_views, elevation=-20.0, device=session.device)
        render = session.renderer.render(session.mesh, texture, grid_cams, session.config.texture.render_size)
    views = render.rgb * render.alpha + (1.0 - render.alpha)
    paths = {"texture": folder / "texture.png", "views": folder / "views.png", "glb": folder / "mesh.glb"}
    write_image(paths["texture"], texture.image)
    write_image(paths["views"], image_grid(views, columns=min(4, len(views))))
    session.mesh.to("cpu").export(paths["glb"], texture.image.cpu())
    return paths


def plot_curves(metrics: list[dict[str, Any]], path: Path, size: tuple[int, int] = (720, 360)) -> None:
    """Draw every ``reward/*`` series against the step into a PNG (plain PIL, no plotting library)."""
    from PIL import Image, ImageDraw

    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    keys = sorted({k for m in metrics for k in m if k.startswith("reward/")})
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    left, right, top, bottom = 60, width - 20, 20, height - 40
    draw.rectangle((left, top, right, bottom), outline="black")
    steps = [m["step"] for m in metrics]
    if not steps:
        img.save(path)
        return
    x_lo, x_hi = min(steps), max(max(steps), min(steps) + 1)
    for i, key in enumerate(keys):
        series = [(m["step"], m[key]) for m in metrics if key in m]
        values = [v for _, v in series]
        lo, hi = min(values), max(values)
        span = hi - lo or 1.0
        pts = [(left + (s - x_lo) / (x_hi - x_lo) * (right - left), bottom - (v - lo) / span * (bottom - top)) for s, v in series]
        colour = colours[i % len(colours)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        draw.text((left + 5, top + 5 + 14 * i), f"{key}: {values[0]:.4g} -> {values[-1]:.4g} (each curve scaled to its range)", fill=colour)
    draw.text((left, bottom + 10), f"step {x_lo}", fill="black")
    draw.text((right - 60, bottom + 10), f"step {x_hi}", fill="black")
    img.save(path)


def write_report(trainer: Any, before_dir: Path | None = None) -> Path:
    """Write the final outputs and ``report.html`` linking all of them; returns the report path."""
    run = trainer.run_dir
    session = trainer.session
    after = paint_outputs(session, run / "after")
    session.generator.save_adapter(run / "adapter")
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line] if (run / "metrics.jsonl").exists() else []
    plot_curves(metrics, run / "reward_curves.png")
    rows = []
    if metrics:
        first, last = metrics[0], metrics[-1]
        for key in sorted(k for k in last if k.startswith("reward/")):
            rows.append(f"<tr><td>{html.escape(key)}</td><td>{first.get(key, float('nan')):.5f}</td><td>{last[key]:.5f}</td></tr>")
    before_html = ""
    if before_dir is not None and (before_dir / "views.png").exists():
        rel = before_dir.relative_to(run)
        before_html = f'<figure><img src="{rel}/views.png" alt="views before"><figcaption>before</figcaption></figure><figure><img src="{rel}/texture.png" alt="texture before" width="256"><figcaption>texture before</figcaption></figure>'
    config = html.escape((run / "config.json").read_text()) if (run / "config.json").exists() else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>texkit run: {html.escape(run.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} img{{max-width:100%;border:1px solid #ccc}}
figure{{display:inline-block;margin:0.5em;vertical-align:top}} td,th{{padding:2px 10px}}</style></head>
<body><h1>texkit run: {html.escape(run.name)}</h1>
<p>{len(metrics)} steps; mesh <code>{html.escape(session.config.mesh.path)}</code>; generator <code>{html.escape(session.config.generator.name)}</code>;
attention backend <code>{html.escape(str(getattr(session.generator, "attention_backend", "n/a")))}</code>.</p>
<h2>Rewards (first step, last step)</h2><table><tr><th>reward</th><th>first</th><th>last</th></tr>{''.join(rows)}</table>
<figure><img src="reward_curves.png" alt="reward curves"><figcaption>reward curves (metrics.jsonl)</figcaption></figure>
<h2>Before and after (seed {EVAL_SEED}, prompt "{html.escape(session.prompts[0])}")</h2>
{before_html}
<figure><img src="after/views.png" alt="views after"><figcaption>after</figcaption></figure>
<figure><img src="after/texture.png" alt="texture after" width="256"><figcaption>texture after</figcaption></figure>
<p>Files: <a href="after/mesh.glb">after/mesh.glb</a>, <a href="adapter/pytorch_lora_weights.safetensors">adapter</a>,
<a href="metrics.jsonl">metrics.jsonl</a>, <a href="config.json">config.json</a>, <a href="versions.json">versions.json</a>.</p>
<h2>Config</h2><pre>{config}</pre></body></html>
"""
    atomic_write_text(run / "report.html", page)
    _ = after
    return run / "report.html"
